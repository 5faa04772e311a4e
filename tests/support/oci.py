"""Small builders and checks for the protocol tests: blobs, manifests, uploads, raw HTTP."""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCTET = "application/octet-stream"

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

ERROR_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "UNAVAILABLE",  # distribution's, with 503: the storage backend is away
    "PAGINATION_NUMBER_INVALID",  # distribution's: a catalog page over 1000
}


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def random_bytes(size: int, seed: int | None = None) -> bytes:
    return random.Random(seed).randbytes(size)


def absolute(base: str, response: requests.Response) -> str:
    """The Location of `response`, resolved against the URL it answered, as a client must."""
    location = response.headers.get("Location")
    assert location, f"no Location in {response.status_code} answer: {response.headers}"
    return urljoin(response.url, location)


def with_query(url: str, **params: str) -> str:
    """Add query parameters to a URL that may already have some (Location is opaque)."""
    request = requests.Request("GET", url, params=params).prepare()
    assert request.url is not None
    return request.url


def errors_of(response: requests.Response) -> list[dict[str, Any]]:
    assert response.headers.get("Content-Type", "").startswith("application/json"), (
        response.status_code,
        response.headers,
        response.content[:300],
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("errors"), list), body
    for error in body["errors"]:
        assert error["code"] in ERROR_CODES, error
        assert isinstance(error.get("message", ""), str), error
    return list(body["errors"])


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """`response` is the spec's error envelope with `code` first, under `status`."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.content[:500]!r}"
    )
    if response.request.method == "HEAD":
        assert response.content == b""
        return {}
    errors = errors_of(response)
    assert errors and errors[0]["code"] == code, errors
    return errors[0]


@dataclass
class Registry:
    """A registry URL plus a requests session, with the common protocol steps."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path}"

    # Blobs

    def start_upload(self, repo: str) -> requests.Response:
        response = self.http.post(self.v2(f"{repo}/blobs/uploads/"))
        assert response.status_code == 202, (response.status_code, response.content)
        return response

    def push_blob(self, repo: str, data: bytes, algorithm: str = "sha256") -> str:
        """POST a session, then PUT the whole blob to the Location given."""
        digest = digest_of(data, algorithm)
        session = self.start_upload(repo)
        response = self.http.put(
            with_query(absolute(self.url, session), digest=digest),
            data=data,
            headers={"Content-Type": OCTET},
        )
        assert response.status_code == 201, (response.status_code, response.content)
        return digest

    def blob(self, repo: str, digest: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.v2(f"{repo}/blobs/{digest}"), **kwargs)

    def head_blob(self, repo: str, digest: str) -> requests.Response:
        return self.http.head(self.v2(f"{repo}/blobs/{digest}"))

    # Manifests

    def put_manifest(
        self, repo: str, reference: str, payload: bytes, media_type: str | None = OCI_MANIFEST
    ) -> requests.Response:
        headers = {"Content-Type": media_type} if media_type else {}
        return self.http.put(
            self.v2(f"{repo}/manifests/{reference}"), data=payload, headers=headers
        )

    def get_manifest(
        self, repo: str, reference: str, accept: str | list[str] | None = None, method: str = "GET"
    ) -> requests.Response:
        if accept is None:
            accept = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
        if isinstance(accept, list):
            accept = ", ".join(accept)
        return self.http.request(
            method, self.v2(f"{repo}/manifests/{reference}"), headers={"Accept": accept}
        )

    def push_image(
        self,
        repo: str,
        tag: str | None = None,
        *,
        layers: int = 1,
        media_type: str = OCI_MANIFEST,
        seed: int | None = None,
        algorithm: str = "sha256",
        **manifest_fields: Any,
    ) -> Image:
        """Push config and layers, then the manifest (by tag, else by digest)."""
        rng = random.Random(seed)
        docker = media_type == DOCKER_MANIFEST
        config_bytes = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []},
                "author": rng.randbytes(8).hex(),
            }
        ).encode()
        config = descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config_bytes, algorithm)
        self.push_blob(repo, config_bytes, algorithm)
        layer_descriptors = []
        blobs = {config["digest"]: config_bytes}
        for _ in range(layers):
            data = rng.randbytes(rng.randint(100, 3000))
            self.push_blob(repo, data, algorithm)
            layer = descriptor(DOCKER_LAYER if docker else OCI_LAYER, data, algorithm)
            layer_descriptors.append(layer)
            blobs[layer["digest"]] = data
        payload = image_manifest(
            config, layer_descriptors, media_type=media_type, **manifest_fields
        )
        digest = digest_of(payload, algorithm)
        response = self.put_manifest(repo, tag or digest, payload, media_type)
        assert response.status_code == 201, (response.status_code, response.content)
        return Image(payload, digest, media_type, blobs, response)


@dataclass
class Image:
    payload: bytes
    digest: str
    media_type: str
    blobs: dict[str, bytes]
    response: requests.Response

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.payload),
            **extra,
        }


def descriptor(
    media_type: str, content: bytes, algorithm: str = "sha256", /, **extra: Any
) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": digest_of(content, algorithm),
        "size": len(content),
        **extra,
    }


def image_manifest(
    config: dict[str, Any],
    layers: list[dict[str, Any]],
    *,
    media_type: str | None = OCI_MANIFEST,
    **fields: Any,
) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    document["config"] = config
    document["layers"] = layers
    document.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(document, indent=2).encode()


def image_index(
    manifests: list[dict[str, Any]], *, media_type: str | None = OCI_INDEX, **fields: Any
) -> bytes:
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type is not None:
        document["mediaType"] = media_type
    document["manifests"] = manifests
    document.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(document, indent=2).encode()


# Uploads, step by step


def patch(
    reg: Registry, url: str, data: bytes, start: int | None = None, **headers: str
) -> requests.Response:
    sent = {"Content-Type": OCTET, **headers}
    if start is not None:
        sent["Content-Range"] = f"{start}-{start + len(data) - 1}"
    return reg.http.patch(url, data=data, headers=sent)


def finish(
    reg: Registry, url: str, digest: str, data: bytes = b"", **headers: str
) -> requests.Response:
    sent = {"Content-Type": OCTET, **headers}
    return reg.http.put(with_query(url, digest=digest), data=data, headers=sent)


def chunks_of(data: bytes, count: int) -> list[tuple[int, bytes]]:
    size = len(data) // count + 1
    return [(start, data[start : start + size]) for start in range(0, len(data), size)]


def upload_in_mode(
    reg: Registry, repo: str, mode: str, data: bytes, digest: str
) -> requests.Response:
    """Upload `data` as `digest` the way `mode` says; return the final answer."""
    if mode == "post-only":
        return reg.http.post(
            with_query(reg.v2(f"{repo}/blobs/uploads/"), digest=digest),
            data=data,
            headers={"Content-Type": OCTET},
        )
    url = absolute(reg.url, reg.start_upload(repo))
    if mode == "post-put":
        return finish(reg, url, digest, data)
    if mode == "stream":
        return finish(reg, absolute(reg.url, patch(reg, url, data)), digest)
    pieces = chunks_of(data, 3)
    last = pieces.pop() if mode == "chunked-put-chunk" else None
    for start, chunk in pieces:
        accepted = patch(reg, url, chunk, start=start)
        assert accepted.status_code == 202, accepted.content
        url = absolute(reg.url, accepted)
    if last is None:
        return finish(reg, url, digest)
    start, chunk = last
    return finish(reg, url, digest, chunk, **{"Content-Range": f"{start}-{start + len(chunk) - 1}"})


# Pagination


def next_link(response: requests.Response) -> str | None:
    """The rel="next" target of the Link header, resolved against the request URL."""
    header = response.headers.get("Link")
    if header is None:
        return None
    match = re.fullmatch(r'\s*<([^>]+)>\s*;\s*rel="?next"?\s*', header)
    assert match, f"malformed Link header {header!r}"
    return urljoin(response.url, str(match[1]))


def walk(reg: Registry, url: str, key: str) -> list[list[str]]:
    """Follow Link headers from `url`; return every page's list."""
    pages = []
    seen = set()
    current: str | None = url
    while current is not None:
        assert current not in seen, f"Link loops back to {current}"
        seen.add(current)
        response = reg.http.get(current)
        assert response.status_code == 200, response.content
        pages.append(response.json()[key])
        current = next_link(response)
        assert len(pages) < 100
    return pages


def catalog(reg: Registry) -> list[str]:
    return [
        name for page in walk(reg, f"{reg.url}/v2/_catalog?n=100", "repositories") for name in page
    ]


# Raw HTTP, for what requests will not send: lying lengths, broken bodies, odd paths.


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket) -> RawResponse:
    """Read one HTTP/1.1 response with a Content-Length (or none, to EOF) from `sock`."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before the headers: {buffer!r}")
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    if length is not None:
        while len(body) < int(length):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = body[: int(length)]
    return RawResponse(status, headers, body)


def raw_request(
    host: str,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    half_close: bool = False,
    close: bool = True,
    timeout: float = 15,
) -> RawResponse:
    """Send exactly these bytes as one request and read the (first) answer."""
    hostname, _, port = host.rpartition(":")
    with socket.create_connection((hostname, int(port)), timeout=timeout) as sock:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
        if close:
            lines.append("Connection: close")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def send_and_abandon(
    host: str,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    reset: bool = True,
) -> None:
    """Send a request whose body stops short of its Content-Length, then drop the connection
    without reading: with a reset (RST) by default, else with a clean close (FIN)."""
    hostname, _, port = host.rpartition(":")
    sock = socket.create_connection((hostname, int(port)), timeout=15)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    finally:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def open_request(
    host: str, method: str, target: str, headers: dict[str, str], body: bytes
) -> socket.socket:
    """Start a request and leave it open: the caller sends the rest of the body, or not."""
    hostname, _, port = host.rpartition(":")
    sock = socket.create_connection((hostname, int(port)), timeout=30)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return sock


def push_blob_slowly(reg: Registry, repo: str, data: bytes, pause: float) -> requests.Response:
    """POST a session, then PUT the whole blob from a client that stops for `pause` seconds
    half way (a slow link): the upload has no session of its own while it is written."""
    digest = digest_of(data)
    session = reg.start_upload(repo)

    def body() -> Iterator[bytes]:
        yield data[: len(data) // 2]
        time.sleep(pause)  # the client's own pace, not a wait for the server
        yield data[len(data) // 2 :]

    return reg.http.put(
        with_query(absolute(reg.url, session), digest=digest),
        data=body(),
        headers={"Content-Type": OCTET},
    )
