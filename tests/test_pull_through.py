"""Pull-through: an imported tag pulled from Wharf fetches what Wharf does not hold from the
registry it was imported from, and keeps it.

Real parts: Debian's docker-registry as the upstream (with and without htpasswd), an
integrated Wharf (TLS, cluster logins, image streams), the real podman and skopeo. Faults come
from an HTTP proxy in front of the upstream that can refuse, answer 404 or 429, alter bytes or
cut a blob in the middle; tags are imported through it, so their pull specs name it. Every test
pushes an image of its own bytes upstream: blobs are shared by digest across repositories, and
one test's mirror must not serve another's pull."""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import http.client
import io
import json
import os
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.clients import NO_TLS, Clients, Storage
from tests.support.cluster import Cluster, bearer, integrated_cluster, registry_session
from tests.support.oci import Registry, assert_error
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import free_port, running_wharf, wait_until
from tests.support.upstream import Upstream, running_upstream

pytestmark = pytest.mark.clients

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
ACCEPT = f"{OCI_MANIFEST}, application/vnd.oci.image.index.v1+json"
DOCKERCONFIGJSON = "kubernetes.io/dockerconfigjson"
UPSTREAM_USER = ("puller", "s3cret-pull")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Images, built as OCI layouts by hand (no build tool: a second, not a minute)


@dataclass
class Image:
    """An image of bytes no other test has: its manifest and blobs by digest, and files."""

    layout: Path
    manifest: bytes
    blobs: dict[str, bytes] = field(repr=False)
    files: dict[str, bytes] = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.manifest)
        return document

    @property
    def config(self) -> str:
        return str(self.document["config"]["digest"])

    @property
    def layers(self) -> list[str]:
        return [layer["digest"] for layer in self.document["layers"]]

    @property
    def big_layer(self) -> str:
        """The digest of its largest blob: big enough to be cut in the middle."""
        return max(self.blobs, key=lambda digest: len(self.blobs[digest]))


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(gzipped tar, tar) of `files`, made the same every time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def build_image(directory: Path, size: int = 3 * 1024 * 1024) -> Image:
    """Two layers: a small text file, and `size` (3 MiB) random bytes (incompressible)."""
    marker = uuid.uuid4().hex
    layer_files = [
        {"/etc/pull-through.txt": f"pulled through {marker}\n".encode()},
        {"/data/random.bin": os.urandom(size)},
    ]
    blobs: dict[str, bytes] = {}
    descriptors, diff_ids = [], []
    for files in layer_files:
        compressed, tar_bytes = _layer(files)
        blobs[sha256(compressed)] = compressed
        descriptors.append(
            {"mediaType": OCI_LAYER, "digest": sha256(compressed), "size": len(compressed)}
        )
        diff_ids.append(sha256(tar_bytes))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [f"MARKER={marker}"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    blobs[sha256(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": descriptors,
        }
    ).encode()
    layout = directory / f"layout-{marker}"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    for digest, data in {**blobs, sha256(manifest): manifest}.items():
        (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "v1"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    files = {path: content for layer in layer_files for path, content in layer.items()}
    return Image(layout, manifest, blobs, files)


# The upstream, behind a proxy that misbehaves on demand


class FaultyProxy:
    """HTTP in front of the upstream registry. Modes: `forward`; `429`, `404`: that answer to
    every manifest and blob request; `corrupt`: manifests and blobs with one byte changed;
    `cut`: a blob's headers and half its bytes, then the connection closes. `stop()` refuses
    connections (unreachable); `start()` takes them again on the same port."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.mode = "forward"
        self.requests: list[tuple[str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_HEAD(self) -> None:
                proxy.handle(self)

        connections = self._connections

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, Any]:
                found = super().get_request()
                connections.add(found[0])
                return found

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Close the listener and every connection open (a client's pooled ones too)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._connections.clear()

    def blob_gets(self, digest: str) -> int:
        return sum(1 for m, p in self.requests if m == "GET" and p.endswith(f"/blobs/{digest}"))

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        self.requests.append((request.command, request.path))
        content = "/blobs/sha256:" in request.path or "/manifests/" in request.path
        if content and self.mode in ("404", "429"):
            code = {"404": "MANIFEST_UNKNOWN", "429": "TOOMANYREQUESTS"}[self.mode]
            body = json.dumps({"errors": [{"code": code, "message": "fault"}]}).encode()
            request.send_response(int(self.mode))
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
            return
        upstream = http.client.HTTPConnection(self.target, timeout=60)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        upstream.request(request.command, request.path, headers=headers)
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        if content and request.command == "GET" and response.status == 200:
            if self.mode == "corrupt":
                body = bytes([body[0] ^ 0xFF]) + body[1:]
            elif self.mode == "cut" and "/blobs/" in request.path:
                request.send_response(200)
                request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                request.wfile.write(body[: len(body) // 2])
                request.wfile.flush()
                request.connection.shutdown(socket.SHUT_RDWR)
                request.close_connection = True
                return
        request.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(key, value)
        length = response.getheader("Content-Length") if request.command == "HEAD" else None
        request.send_header("Content-Length", length or str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


# The world: one Wharf, one upstream behind the proxy, one with htpasswd


@dataclass
class World:
    cluster: Cluster
    project: str
    upstream: Upstream
    proxy: FaultyProxy
    guarded: Upstream  # htpasswd
    clients: Clients
    workdir: Path

    @property
    def host(self) -> str:
        return self.cluster.wharf.host

    def registry(self) -> requests.Session:
        return registry_session(self.cluster.wharf, bearer(self.cluster.admin_token))

    def push_upstream(self, image: Image, upstream: Upstream, name: str) -> None:
        """Put `image` in the upstream as `name`:v1, with skopeo."""
        args = [
            "copy",
            "--dest-tls-verify=false",
            f"oci:{image.layout}:v1",
            f"docker://{upstream.host}/{name}:v1",
        ]
        if upstream is self.guarded:
            args[1:1] = ["--dest-creds", ":".join(UPSTREAM_USER)]
        self.clients.skopeo(*args)

    def import_tag(
        self, stream: str, source: str, policy: str = "Local", mode: str = "Legacy"
    ) -> dict[str, Any]:
        """Import `source` as `stream`:v1 (insecure: the upstream speaks plain HTTP)."""
        response = self.cluster.admin.post(
            f"/apis/image.openshift.io/v1/namespaces/{self.project}/imagestreamimports",
            json={
                "apiVersion": "image.openshift.io/v1",
                "kind": "ImageStreamImport",
                "metadata": {"name": stream},
                "spec": {
                    "import": True,
                    "images": [
                        {
                            "from": {"kind": "DockerImage", "name": source},
                            "to": {"name": "v1"},
                            "importPolicy": {"insecure": True, "importMode": mode},
                            "referencePolicy": {"type": policy},
                        }
                    ],
                },
            },
        )
        assert response.status_code == 201, response.text
        status = response.json()["status"]["images"][0]
        assert status["status"]["status"] == "Success", status
        return dict(response.json())

    def imported(self, image: Image, upstream: Upstream | None = None) -> str:
        """`image` pushed upstream and imported (through the proxy, unless `upstream` is
        given) into a stream of its own: the repository."""
        name = f"library/img-{uuid.uuid4().hex[:8]}"
        self.push_upstream(image, upstream or self.upstream, name)
        stream = f"s-{uuid.uuid4().hex[:8]}"
        self.import_tag(stream, f"{(upstream or self.proxy).host}/{name}:v1")
        return f"{self.project}/{stream}"

    def blob(self, repository: str, digest: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        with self.registry() as session:
            return session.get(f"{self.cluster.wharf.url}/v2/{repository}/blobs/{digest}", **kwargs)

    def manifest(self, repository: str, reference: str) -> requests.Response:
        with self.registry() as session:
            return session.get(
                f"{self.cluster.wharf.url}/v2/{repository}/manifests/{reference}",
                headers={"Accept": ACCEPT},
                timeout=60,
            )

    def query(self, statement: str) -> list[str]:
        """Rows of `statement` on Wharf's database, each as psql -A prints it."""
        wharf = self.cluster.wharf
        if wharf.database_name is None:
            import sqlite3

            with sqlite3.connect(wharf.data_dir / "wharf.db") as conn:
                return ["|".join(map(str, row)) for row in conn.execute(statement)]
        from tests.support.postgres import shared_cluster

        return shared_cluster().sql(statement, wharf.database_name).splitlines()

    def holds(self, digest: str) -> bool:
        """Whether Wharf's storage has a file of the blob."""
        algorithm, _, encoded = digest.partition(":")
        path = self.cluster.wharf.data_dir / "blobs" / algorithm / encoded[:2] / encoded
        return path.exists()

    def linked(self, repository: str, digest: str) -> bool:
        """Whether the blob is stored and linked to the repository."""
        rows = self.query(
            "SELECT count(*) FROM repository_blobs JOIN repositories ON id = repository_id"
            f" WHERE name = '{repository}' AND digest = '{digest}'"
        )
        return rows == ["1"] and self.holds(digest)

    def uploads_in_progress(self) -> list[str]:
        return [p.name for p in (self.cluster.wharf.data_dir / "uploads").iterdir()]

    def podman_pull(self, storage: Storage, repository: str) -> str:
        return self.clients.pull(storage, f"{self.host}/{repository}:v1")

    def metrics(self) -> str:
        with self.registry() as session:
            response = session.get(f"{self.cluster.wharf.url}/extensions/v2/metrics", timeout=30)
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("pull-through")
    clients = Clients(base / "clients")
    try:
        with (
            integrated_cluster(base / "wharf") as cluster,
            running_upstream(base / "upstream") as upstream,
            running_upstream(base / "guarded", credentials=UPSTREAM_USER) as guarded,
        ):
            proxy = FaultyProxy(upstream.host)
            proxy.start()
            try:
                project = cluster.new_project(cluster.admin)
                world = World(cluster, project, upstream, proxy, guarded, clients, base)
                login = clients.podman(
                    clients.storage(),
                    "login",
                    NO_TLS,
                    "-u",
                    "kubeadmin",
                    "-p",
                    cluster.admin_token,
                    world.host,
                )
                assert login.ok, login
                yield world
                # Every fault was answered as the protocol says: nothing failed inside.
                log = cluster.wharf.log()
                assert "Traceback" not in log and "request failed" not in log, log[-5000:]
            finally:
                proxy.stop()
    finally:
        clients.close()


@pytest.fixture
def proxy(world: World) -> Iterator[FaultyProxy]:
    """The proxy, forwarding again (and listening) after the test, whatever it did."""
    yield world.proxy
    world.proxy.mode = "forward"
    if not world.proxy.running:
        world.proxy.start()


def assert_nothing_kept(world: World, digest: str) -> None:
    """No trace of a blob whose mirror failed: no row, no link, no file, no upload left
    (the abort runs just after the client's connection is cut: waited for, bounded)."""
    wait_until(lambda: not world.uploads_in_progress(), timeout=15)
    assert world.query(f"SELECT count(*) FROM blobs WHERE digest = '{digest}'") == ["0"]
    assert world.query(f"SELECT count(*) FROM repository_blobs WHERE digest = '{digest}'") == ["0"]
    assert not world.holds(digest)


def read_cut(response: requests.Response) -> bytes:
    """What arrives of a body whose connection may be cut."""
    received = b""
    try:
        for chunk in response.iter_content(65536):
            received += chunk
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        pass
    return received


# The headline: pulled once through, then with the upstream gone


def test_podman_pulls_through_and_again_with_the_upstream_stopped(world: World) -> None:
    image = build_image(world.workdir)
    name = f"library/headline-{uuid.uuid4().hex[:8]}"
    world.push_upstream(image, world.upstream, name)
    stream = f"headline-{uuid.uuid4().hex[:6]}"
    world.import_tag(stream, f"{world.upstream.host}/{name}:v1")
    repository = f"{world.project}/{stream}"
    # The import kept the manifest, not the layers.
    assert not any(world.holds(digest) for digest in image.blobs)

    first = world.clients.storage()
    image_id = world.podman_pull(first, repository)
    assert image_id == image.config.removeprefix("sha256:")
    assert world.clients.read_files(first, image_id, list(image.files)) == image.files
    # Every blob came through and is Wharf's own now.
    assert all(world.holds(digest) for digest in image.blobs)

    world.upstream.stop()
    try:
        second = world.clients.storage()
        assert world.podman_pull(second, repository) == image_id
        inspected = world.clients.image_inspect(second, image_id)
        assert inspected["Digest"] == image.digest
        assert world.clients.read_files(second, image_id, list(image.files)) == image.files
        # skopeo, byte for byte: every blob as it was upstream.
        target = world.workdir / f"copy-{stream}"
        world.clients.copy(f"docker://{world.host}/{repository}:v1", f"dir:{target}")
        assert (target / "manifest.json").read_bytes() == image.manifest
        for digest, data in image.blobs.items():
            assert (target / digest.removeprefix("sha256:")).read_bytes() == data
    finally:
        world.upstream.start()


# Credentials from the project's dockerconfigjson secret


def put_secret(world: World, name: str, host: str, user: str, password: str) -> None:
    """Create or replace a kubernetes.io/dockerconfigjson secret for `host`."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": DOCKERCONFIGJSON,
        "data": {".dockerconfigjson": base64.b64encode(config).decode()},
    }
    path = f"/api/v1/namespaces/{world.project}/secrets"
    response = world.cluster.admin.put(f"{path}/{name}", json=body)
    if response.status_code == 404:
        response = world.cluster.admin.post(path, json=body)
    assert response.status_code in (200, 201), response.text


def test_credentials_come_from_the_projects_secret(world: World) -> None:
    secret = f"upstream-{uuid.uuid4().hex[:6]}"
    put_secret(world, secret, world.guarded.host, *UPSTREAM_USER)
    image = build_image(world.workdir)
    repository = world.imported(image, world.guarded)
    layer = image.big_layer

    # A wrong password: the upstream says 401, the client is told the blob is unknown.
    put_secret(world, secret, world.guarded.host, UPSTREAM_USER[0], "wrong")
    refused = world.blob(repository, layer)
    body = assert_error(refused, 404, "BLOB_UNKNOWN")
    assert "Unauthorized" in body["message"], body
    assert UPSTREAM_USER[1] not in refused.text and "wrong" not in refused.text
    # No secret at all: the same.
    deleted = world.cluster.admin.delete(f"/api/v1/namespaces/{world.project}/secrets/{secret}")
    assert deleted.status_code == 200, deleted.text
    assert_error(world.blob(repository, layer), 404, "BLOB_UNKNOWN")
    assert_nothing_kept(world, layer)
    assert (
        f'imageregistry_pullthrough_repository_errors_total{{code="UNAUTHORIZED",'
        f'operation="BlobStore.Open",registry="{world.guarded.host}"}}'
    ) in world.metrics()

    # The right one again: skopeo copies the image through, byte for byte.
    put_secret(world, secret, world.guarded.host, *UPSTREAM_USER)
    target = world.workdir / f"copy-{uuid.uuid4().hex[:6]}"
    world.clients.copy(f"docker://{world.host}/{repository}:v1", f"dir:{target}")
    assert (target / "manifest.json").read_bytes() == image.manifest
    for digest, data in image.blobs.items():
        assert (target / digest.removeprefix("sha256:")).read_bytes() == data
        assert world.holds(digest)


# Faults: the client gets the registry's error, nothing half-fetched shows, and once the
# upstream is well again the pull works


def assert_pulls_after(world: World, repository: str, image: Image) -> None:
    response = world.blob(repository, image.big_layer)
    assert response.status_code == 200, response.text
    assert response.content == image.blobs[image.big_layer]
    assert response.headers["Docker-Content-Digest"] == image.big_layer


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        pytest.param("404", 404, "BLOB_UNKNOWN", id="not-found"),
        pytest.param("429", 429, "TOOMANYREQUESTS", id="too-many-requests"),
    ],
)
def test_an_upstream_refusal_is_the_registry_error(
    world: World, proxy: FaultyProxy, mode: str, status: int, code: str
) -> None:
    image = build_image(world.workdir)
    repository = world.imported(image)
    proxy.mode = mode
    for method in ("GET", "HEAD"):
        with world.registry() as session:
            response = session.request(
                method,
                f"{world.cluster.wharf.url}/v2/{repository}/blobs/{image.big_layer}",
                timeout=60,
            )
        assert response.status_code == status, response.text
        if method == "GET":
            assert_error(response, status, code)
    if mode == "429":
        assert response.headers["Retry-After"].isdigit()
    assert_nothing_kept(world, image.big_layer)
    assert (
        f'imageregistry_pullthrough_repository_errors_total{{code="{code}",'
        f'operation="BlobStore.Open",registry="{proxy.host}"}}'
    ) in world.metrics()

    proxy.mode = "forward"
    assert_pulls_after(world, repository, image)


def test_an_unreachable_upstream_is_unavailable_for_now(world: World, proxy: FaultyProxy) -> None:
    image = build_image(world.workdir)
    repository = world.imported(image)
    proxy.stop()
    response = world.blob(repository, image.big_layer)
    assert_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"].isdigit()
    assert proxy.host in response.json()["errors"][0]["message"]
    assert_nothing_kept(world, image.big_layer)

    proxy.start()
    assert_pulls_after(world, repository, image)


@pytest.mark.parametrize("mode", ["corrupt", "cut"])
def test_a_blob_broken_on_the_way_is_never_kept(
    world: World, proxy: FaultyProxy, mode: str
) -> None:
    """Bytes that do not match their digest, or an upstream that dies in the middle of a
    blob: the status was sent, so the connection is cut short; no part of it is kept."""
    image = build_image(world.workdir)
    repository = world.imported(image)
    layer = image.big_layer
    proxy.mode = mode
    with world.registry() as session:
        response = session.get(
            f"{world.cluster.wharf.url}/v2/{repository}/blobs/{layer}", stream=True, timeout=60
        )
        assert response.status_code == 200
        received = read_cut(response)
    assert len(received) < len(image.blobs[layer])
    assert_nothing_kept(world, layer)
    health = requests.get(
        f"{world.cluster.wharf.url}/healthz", verify=str(world.cluster.wharf.ca_file), timeout=10
    )
    assert health.status_code == 200

    proxy.mode = "forward"
    assert_pulls_after(world, repository, image)
    assert world.holds(layer)


def test_concurrent_pulls_fetch_a_blob_once(world: World, proxy: FaultyProxy) -> None:
    image = build_image(world.workdir)
    repository = world.imported(image)
    layer = image.big_layer
    # Only for a caller who may pull: a refused one sets nothing in motion.
    with registry_session(world.cluster.wharf, bearer("anonymous")) as anonymous:
        refused = anonymous.get(f"{world.cluster.wharf.url}/v2/{repository}/blobs/{layer}")
    assert_error(refused, 401, "UNAUTHORIZED")
    assert proxy.blob_gets(layer) == 0
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda _: world.blob(repository, layer).content, range(4)))
    assert bodies == [image.blobs[layer]] * 4
    assert proxy.blob_gets(layer) == 1
    assert 'imageregistry_pullthrough_blobstore_cache_requests_total{type="Miss"}' in (
        world.metrics()
    )


def test_a_head_or_a_range_of_a_blob_not_held_yet(world: World, proxy: FaultyProxy) -> None:
    """A HEAD is answered once the upstream has the blob, whose fetch goes on; a range is
    served once the whole blob is kept."""
    image = build_image(world.workdir)
    repository = world.imported(image)
    layer = image.big_layer
    with world.registry() as session:
        head = session.head(f"{world.cluster.wharf.url}/v2/{repository}/blobs/{layer}")
    assert head.status_code == 200, head.text
    assert head.headers["Content-Length"] == str(len(image.blobs[layer]))
    assert head.headers["Docker-Content-Digest"] == layer
    wait_until(lambda: world.linked(repository, layer), timeout=30)

    other = image.layers[0]
    ranged = world.blob(repository, other, headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206, ranged.text
    assert ranged.content == image.blobs[other][10:20]
    assert world.holds(other)


def start_reading(
    world: World, session: requests.Session, repository: str, layer: str
) -> requests.Response:
    """A streamed GET of the blob whose first 64 KiB are read, the rest left in the socket."""
    response = session.get(
        f"{world.cluster.wharf.url}/v2/{repository}/blobs/{layer}", stream=True, timeout=60
    )
    assert response.status_code == 200
    assert len(response.raw.read(65536)) == 65536
    return response


def test_a_client_that_goes_away_leaves_the_blob_kept(world: World, proxy: FaultyProxy) -> None:
    image = build_image(world.workdir)
    repository = world.imported(image)
    layer = image.big_layer
    with world.registry() as session:
        response = start_reading(world, session, repository, layer)
        response.close()  # gone, most of the blob unread
    wait_until(lambda: world.linked(repository, layer), timeout=30)
    proxy.stop()
    assert_pulls_after(world, repository, image)
    assert proxy.blob_gets(layer) == 1


def test_a_stalled_client_does_not_hold_the_mirror(world: World, proxy: FaultyProxy) -> None:
    """The request that asked first stops reading (its connection open): after a few seconds
    the mirror goes on without it, the blob is kept and served to the others, and the stalled
    request's connection is cut rather than left waiting for bytes that never come."""
    image = build_image(world.workdir, size=48 * 1024 * 1024)  # more than socket buffers hold
    repository = world.imported(image)
    layer = image.big_layer
    with world.registry() as session:
        stalled = start_reading(world, session, repository, layer)
        # Another pull of it is served once the mirror is done, not after the stalled one.
        began = time.monotonic()
        other = world.blob(repository, layer, timeout=45)
        assert other.content == image.blobs[layer]
        assert time.monotonic() - began < 40
        assert world.linked(repository, layer)
        # The stalled request, read again, ends short and at once.
        began = time.monotonic()
        received = read_cut(stalled)
        assert time.monotonic() - began < 30
        assert 65536 + len(received) < len(image.blobs[layer])
        stalled.close()
    assert proxy.blob_gets(layer) == 1


def drop_manifest(world: World, digest: str) -> None:
    """Forget a manifest the import stored, as if it never had (an index child it left)."""
    for statement in (
        f"DELETE FROM repository_manifests WHERE digest = '{digest}'",
        f"DELETE FROM manifest_blobs WHERE manifest_digest = '{digest}'",
        f"DELETE FROM manifests WHERE digest = '{digest}'",
    ):
        world.cluster.wharf.sql(statement)


def test_a_manifest_the_registry_lacks_is_fetched_verified_and_kept(
    world: World, proxy: FaultyProxy
) -> None:
    image = build_image(world.workdir)
    repository = world.imported(image)
    drop_manifest(world, image.digest)

    proxy.mode = "corrupt"
    assert_error(world.manifest(repository, "v1"), 404, "MANIFEST_UNKNOWN")
    proxy.mode = "404"
    assert_error(world.manifest(repository, image.digest), 404, "MANIFEST_UNKNOWN")
    proxy.stop()
    unreachable = world.manifest(repository, "v1")
    assert_error(unreachable, 503, "UNAVAILABLE")
    assert world.query(f"SELECT count(*) FROM manifests WHERE digest = '{image.digest}'") == ["0"]
    proxy.start()
    proxy.mode = "forward"

    fetched = world.manifest(repository, "v1")
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == image.manifest
    assert fetched.headers["Docker-Content-Digest"] == image.digest
    proxy.stop()
    # Kept: served with the upstream gone, by tag and by digest, and its blobs pull through
    # once the upstream is back.
    assert world.manifest(repository, "v1").content == image.manifest
    assert world.manifest(repository, image.digest).content == image.manifest
    proxy.start()
    assert_pulls_after(world, repository, image)


def test_an_index_child_left_upstream_is_fetched_when_asked_for(world: World) -> None:
    """An index imported whole: the children the import kept pull their blobs through as any
    image; a child it did not keep is fetched when asked for by digest (it is the index's),
    and so are the blobs it names."""
    name = f"library/index-{uuid.uuid4().hex[:8]}"
    index = world.upstream.push_index(name, "v1")
    stream = f"s-{uuid.uuid4().hex[:8]}"
    world.import_tag(stream, f"{world.proxy.host}/{name}:v1", mode="PreserveOriginal")
    repository = f"{world.project}/{stream}"
    # The import kept the children: their blobs pull through as any image's.
    kept = index.children[1]
    assert world.manifest(repository, kept.digest).content == kept.payload
    for digest, data in kept.blobs.items():
        assert world.blob(repository, digest).content == data
    child = index.children[0]
    drop_manifest(world, child.digest)
    assert world.manifest(repository, "v1").content == index.payload

    fetched = world.manifest(repository, child.digest)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == child.payload
    for digest, data in child.blobs.items():
        assert world.blob(repository, digest).content == data
    # Not in the stream at all: unknown, and nothing is asked of the upstream for it.
    stranger = sha256(b"no such manifest")
    assert_error(world.manifest(repository, stranger), 404, "MANIFEST_UNKNOWN")
    assert not any(stranger in path for _, path in world.proxy.requests)


def test_what_another_repository_holds_is_not_linked_by_digest(
    world: World, proxy: FaultyProxy
) -> None:
    """Another project pushed an image privately; this one imports an index naming that
    image's manifest as a child. Wharf holds the manifest and its blobs, but for the other
    repository: they are served here only once this repository's upstream has them, never
    on their digest alone."""
    name = f"library/steal-{uuid.uuid4().hex[:8]}"
    index = world.upstream.push_index(name, "v1")
    child = index.children[0]
    private = f"{world.cluster.new_project(world.cluster.admin)}/private"
    with world.registry() as session:
        wharf = Registry(world.cluster.wharf.url, session)
        for data in child.blobs.values():
            wharf.push_blob(private, data)
        pushed = wharf.put_manifest(private, "v1", child.payload, child.media_type)
        assert pushed.status_code == 201, pushed.text
    stream = f"s-{uuid.uuid4().hex[:8]}"
    world.import_tag(stream, f"{proxy.host}/{name}:v1", mode="PreserveOriginal")
    repository = f"{world.project}/{stream}"
    # This repository's upstream no longer has the child, nor its blobs.
    upstream = world.upstream.http()
    world.upstream.delete_manifest(name, child.digest)
    for digest in child.blobs:
        deleted = upstream.http.delete(upstream.v2(f"{name}/blobs/{digest}"))
        assert deleted.status_code == 202, deleted.text

    # The child kept here names the other repository's blobs: unknown here.
    for digest in child.blobs:
        assert_error(world.blob(repository, digest), 404, "BLOB_UNKNOWN")
        assert not world.linked(repository, digest)
    # The child not linked here (as if the import had left it upstream): the upstream is
    # asked, says it has none, and the other repository's copy is not served.
    world.cluster.wharf.sql(
        f"DELETE FROM repository_manifests WHERE digest = '{child.digest}' AND repository_id"
        f" = (SELECT id FROM repositories WHERE name = '{repository}')"
    )
    assert_error(world.manifest(repository, child.digest), 404, "MANIFEST_UNKNOWN")
    assert ("GET", f"/v2/{name}/manifests/{child.digest}") in proxy.requests
    assert world.query(
        "SELECT count(*) FROM repository_manifests JOIN repositories ON id = repository_id"
        f" WHERE name = '{repository}' AND digest = '{child.digest}'"
    ) == ["0"]

    # Once the upstream has them again, the manifest is fetched from it, and the blobs held
    # are linked, not fetched.
    for data in child.blobs.values():
        upstream.push_blob(name, data)
    restored = upstream.put_manifest(name, child.digest, child.payload, child.media_type)
    assert restored.status_code == 201, restored.text
    assert world.manifest(repository, child.digest).content == child.payload
    for digest, data in child.blobs.items():
        before = proxy.blob_gets(digest)  # the import read the config
        assert world.blob(repository, digest).content == data
        assert proxy.blob_gets(digest) == before
        assert world.linked(repository, digest)


# referencePolicy: where consumers are told to pull from


def test_reference_policy_local_points_consumers_at_wharf(world: World) -> None:
    image = build_image(world.workdir)
    name = f"library/policy-{uuid.uuid4().hex[:8]}"
    world.push_upstream(image, world.upstream, name)
    source = f"{world.upstream.host}/{name}@{image.digest}"
    api = world.cluster.admin
    base = f"/apis/image.openshift.io/v1/namespaces/{world.project}"
    for policy in ("Local", "Source"):
        stream = f"policy-{policy.lower()}-{uuid.uuid4().hex[:6]}"
        world.import_tag(stream, f"{world.upstream.host}/{name}:v1", policy)
        found = api.get(f"{base}/imagestreams/{stream}").json()
        internal = found["status"]["dockerImageRepository"]
        # The history records where the image came from, whatever the policy.
        items = found["status"]["tags"][0]["items"]
        assert items[0]["dockerImageReference"] == source, items
        assert items[0]["image"] == image.digest
        tag = api.get(f"{base}/imagestreamtags/{stream}:v1").json()
        assert tag["tag"]["referencePolicy"] == {"type": policy}, tag
        expected = f"{internal}@{image.digest}" if policy == "Local" else source
        assert tag["image"]["dockerImageReference"] == expected, tag
    # Either way, pulling from Wharf goes through.
    assert (
        world.blob(f"{world.project}/{stream}", image.big_layer).content
        == (image.blobs[image.big_layer])
    )


def test_a_blob_already_held_is_linked_not_fetched(world: World, proxy: FaultyProxy) -> None:
    """The same image imported into two streams: the second pull finds the bytes the first
    one fetched (a cache hit) and only asks its upstream whether it has them (a HEAD)."""
    image = build_image(world.workdir)
    first = world.imported(image)
    second = f"{world.project}/s-{uuid.uuid4().hex[:8]}"
    source = next(p for m, p in reversed(proxy.requests) if "/manifests/" in p)
    name = source.removeprefix("/v2/").split("/manifests/")[0]
    world.import_tag(second.split("/")[1], f"{proxy.host}/{name}:v1")
    assert_pulls_after(world, first, image)
    before = proxy.blob_gets(image.big_layer)
    assert_pulls_after(world, second, image)
    assert proxy.blob_gets(image.big_layer) == before == 1
    assert ("HEAD", f"/v2/{name}/blobs/{image.big_layer}") in proxy.requests
    assert 'imageregistry_pullthrough_blobstore_cache_requests_total{type="Hit"}' in (
        world.metrics()
    )


# Storage on S3: the same upload path, nothing half-kept in the bucket


@pytest.mark.s3
def test_pull_through_into_s3(
    world: World, proxy: FaultyProxy, moto: MotoServer, tmp_path: Path
) -> None:
    image = build_image(world.workdir)
    name = f"library/s3-{uuid.uuid4().hex[:8]}"
    world.push_upstream(image, world.upstream, name)
    layer = image.big_layer
    encoded = layer.removeprefix("sha256:")
    bucket = moto.new_bucket()
    with running_wharf(tmp_path / "data", *s3_args(moto, bucket), integrated=True) as wharf:
        cluster = Cluster(wharf, tmp_path)
        elsewhere = replace(world, cluster=cluster, project=cluster.new_project(cluster.admin))
        elsewhere.import_tag("app", f"{proxy.host}/{name}:v1")
        url = f"{wharf.url}/v2/{elsewhere.project}/app/blobs/{layer}"
        with registry_session(wharf, bearer(cluster.admin_token)) as session:
            proxy.mode = "cut"
            cut = session.get(url, stream=True, timeout=60)
            assert cut.status_code == 200
            assert len(read_cut(cut)) < len(image.blobs[layer])
            wait_until(lambda: not moto.multipart_uploads(bucket), timeout=15)
            assert not [key for key in moto.keys(bucket) if key.endswith(encoded)]

            proxy.mode = "forward"
            assert session.get(url, timeout=60).content == image.blobs[layer]
            assert [key for key in moto.keys(bucket) if key.endswith(encoded)]
            proxy.stop()
            # Wharf's own now: a redirect into the bucket, followed.
            kept = session.get(url, timeout=60)
            assert kept.content == image.blobs[layer]
            assert kept.history and kept.history[0].status_code == 307


# Where pull-through looks: OpenShift's order


def test_sources_are_newest_first_never_the_registry_itself_secure_before_insecure() -> None:
    from wharf.registry.pullthrough_records import SourceEvent
    from wharf.registry.pullthrough_sources import INSECURE_REPOSITORY, Source, candidates

    digest = "sha256:" + "a" * 64
    events = [
        SourceEvent("plain", f"plain.example:5000/team/app@{digest}"),
        SourceEvent("v2", f"quay.example/team/app@{digest}"),
        SourceEvent("self", f"wharf.example:443/other/app@{digest}"),
        SourceEvent("v1", f"quay.example/team/app@{digest}"),  # the same repository again
        SourceEvent("hub", f"busybox@{digest}"),
        SourceEvent("junk", "not a pull spec"),
    ]
    stream = {"spec": {"tags": [{"name": "plain", "importPolicy": {"insecure": True}}]}}
    assert candidates(events, stream, {"wharf.example:443"}) == [
        Source("quay.example", "team/app", insecure=False),
        Source("docker.io", "library/busybox", insecure=False),
        Source("plain.example:5000", "team/app", insecure=True),
    ]
    annotated = {"metadata": {"annotations": {INSECURE_REPOSITORY: "true"}}}
    assert all(source.insecure for source in candidates(events, annotated, ()))
