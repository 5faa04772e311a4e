"""skopeo copies, inspects and deletes images in Wharf: between repositories (by
cross-repository mount), whole multi-architecture indexes, and through OCI layouts and dirs."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.clients import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    ENV,
    LABELS,
    NO_TLS,
    OCI_INDEX,
    OCI_MANIFEST,
    Clients,
    Images,
    RegistryHTTP,
    Storage,
    requests_made,
    sha256,
)
from tests.support.server import WharfProcess

pytest_plugins = ("tests.support.client_fixtures",)
pytestmark = pytest.mark.clients

UNCOMPRESSED_LAYER = "application/vnd.oci.image.layer.v1.tar"


def layer_files(blob: bytes) -> dict[str, bytes]:
    """The regular files of a layer tarball, gzipped or not, as absolute path -> content."""
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for member in tar:
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files["/" + member.name.removeprefix("./").lstrip("/")] = extracted.read()
    return files


def test_copy_between_repositories_mounts_the_blobs(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    source, destination = f"{repo}/source", f"{repo}/copy"
    digest = clients.push(images.storage, images.app.reference, f"{wharf.host}/{source}:v1")
    manifest = registry_http.manifest(source, digest).json()
    layers = [layer["digest"] for layer in manifest["layers"]]
    assert all(registry_http.blob_status(destination, layer) == 404 for layer in layers)

    copied = clients.copy(
        f"docker://{wharf.host}/{source}:v1",
        f"docker://{wharf.host}/{destination}:v1",
        "--preserve-digests",
        debug=True,
    )

    # Every layer was linked with POST .../blobs/uploads/?mount=...&from=..., none uploaded.
    log = copied.stderr
    sent = requests_made(log)
    mounts = {}
    for method, url in sent:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if method == "POST" and "mount" in query:
            assert parts.path == f"/v2/{destination}/blobs/uploads/", url
            mounts[query["mount"][0]] = query["from"][0]
    assert set(mounts) == set(layers), log
    for layer, mounted_from in mounts.items():
        assert registry_http.blob_status(mounted_from, layer) == 200
    uploaded = {
        parse_qs(urlsplit(url).query)["digest"][0]
        for method, url in sent
        if method == "PUT" and "/blobs/uploads/" in url
    }
    assert uploaded.isdisjoint(layers), uploaded
    assert log.count("... mount OK") == len(layers), log
    assert "started an upload instead of mounting" not in log

    # The destination serves the same manifest and every blob, byte for byte.
    response = registry_http.manifest(destination, "v1")
    assert response.headers["Docker-Content-Digest"] == digest
    for layer in layers:
        assert sha256(registry_http.blob(destination, layer)) == layer
    assert clients.pull(clean_storage, f"{wharf.host}/{destination}:v1") == images.app.image_id
    assert clients.read_files(clean_storage, images.app.image_id, ["/app/hello.txt"]) == {
        "/app/hello.txt": images.app.files["/app/hello.txt"]
    }


@pytest.mark.parametrize(
    ("list_format", "media_type", "child_type"),
    [
        pytest.param("oci", OCI_INDEX, OCI_MANIFEST, id="oci-index"),
        pytest.param("v2s2", DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, id="docker-manifest-list"),
    ],
)
def test_copy_all_of_a_multi_architecture_index(
    clients: Clients,
    images: Images,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    list_format: str,
    media_type: str,
    child_type: str,
) -> None:
    source, destination = f"{repo}/multi", f"{repo}/mirror"
    clients.buildah(
        images.storage,
        "manifest",
        "push",
        NO_TLS,
        "--all",
        "--format",
        list_format,
        images.index,
        f"docker://{wharf.host}/{source}:1.0",
    )

    clients.copy(
        f"docker://{wharf.host}/{source}:1.0",
        f"docker://{wharf.host}/{destination}:1.0",
        "--all",
        "--preserve-digests",
    )

    raw = clients.raw_manifest(f"{wharf.host}/{destination}:1.0")
    assert raw == clients.raw_manifest(f"{wharf.host}/{source}:1.0")
    index = json.loads(raw)
    assert index["mediaType"] == media_type
    assert {child["platform"]["architecture"] for child in index["manifests"]} == {"amd64", "arm64"}
    for child in index["manifests"]:
        child_raw = clients.raw_manifest(f"{wharf.host}/{destination}@{child['digest']}")
        assert sha256(child_raw) == child["digest"]
        manifest = json.loads(child_raw)
        assert manifest["mediaType"] == child_type
        for blob in [manifest["config"], *manifest["layers"]]:
            assert registry_http.blob_status(destination, blob["digest"]) == 200
        config = clients.skopeo(
            "inspect", NO_TLS, "--config", f"docker://{wharf.host}/{destination}@{child['digest']}"
        ).json()
        assert config["architecture"] == child["platform"]["architecture"]

    # Without --raw skopeo resolves the index to a platform.
    amd64 = clients.inspect(f"{wharf.host}/{destination}:1.0", "--override-arch", "amd64")
    arm64 = clients.inspect(
        f"{wharf.host}/{destination}:1.0", "--override-arch", "arm64", "--override-variant", "v8"
    )
    assert (amd64["Architecture"], arm64["Architecture"]) == ("amd64", "arm64")
    assert amd64["Digest"] == arm64["Digest"] == sha256(raw)
    assert len(amd64["Layers"]) == len(arm64["Layers"]) == 3
    assert amd64["Layers"][:2] == arm64["Layers"][:2]  # the shared base
    assert amd64["Layers"][2] != arm64["Layers"][2]


def test_inspect_reports_tags_digest_and_config(
    clients: Clients, images: Images, wharf: WharfProcess, repo: str
) -> None:
    reference = f"{wharf.host}/{repo}"
    digest = clients.push(images.storage, images.app.reference, f"{reference}:v1")
    for tag in ("v2", "latest"):
        assert clients.push(images.storage, images.app.reference, f"{reference}:{tag}") == digest

    inspected = clients.inspect(f"{reference}:v2")
    assert inspected["Name"] == reference
    assert inspected["Digest"] == digest
    assert sorted(inspected["RepoTags"]) == ["latest", "v1", "v2"]
    assert inspected["Architecture"] == "amd64"
    assert inspected["Os"] == "linux"
    assert len(inspected["Layers"]) == 3
    assert LABELS.items() <= inspected["Labels"].items()
    assert {f"{key}={value}" for key, value in ENV.items()} <= set(inspected["Env"])

    raw = clients.raw_manifest(f"{reference}:latest")
    assert sha256(raw) == digest
    config = clients.skopeo("inspect", NO_TLS, "--config", "--raw", f"docker://{reference}:v1")
    assert sha256(config.stdout.encode()) == json.loads(raw)["config"]["digest"]
    tags = clients.skopeo("list-tags", NO_TLS, f"docker://{reference}").json()
    assert tags == {"Repository": reference, "Tags": ["latest", "v1", "v2"]}


def test_delete_removes_the_manifest_and_its_tags(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    doomed, kept = f"{repo}/doomed", f"{repo}/kept"
    digest = clients.push(images.storage, images.app.reference, f"{wharf.host}/{doomed}:v1")
    clients.push(images.storage, images.app.reference, f"{wharf.host}/{doomed}:v2")
    other = clients.push(images.storage, images.base.reference, f"{wharf.host}/{doomed}:base")
    clients.copy(
        f"docker://{wharf.host}/{doomed}:v1",
        f"docker://{wharf.host}/{kept}:v1",
        "--preserve-digests",
    )

    clients.skopeo("delete", NO_TLS, f"docker://{wharf.host}/{doomed}:v1")

    for reference in (digest, "v1", "v2"):
        response = registry_http.manifest(doomed, reference)
        assert response.status_code == 404, (reference, response.text)
        assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert registry_http.tags(doomed).json()["tags"] == ["base"]
    gone = clients.skopeo("inspect", NO_TLS, f"docker://{wharf.host}/{doomed}:v2", check=False)
    assert not gone.ok
    assert "manifest unknown" in gone.stderr
    # What else the repository holds, and the copy in another repository, are untouched.
    assert registry_http.manifest(doomed, "base").headers["Docker-Content-Digest"] == other
    assert registry_http.manifest(kept, "v1").headers["Docker-Content-Digest"] == digest
    assert clients.pull(clean_storage, f"{wharf.host}/{kept}:v1") == images.app.image_id

    # Deleting by digest works the same, and a deleted manifest can be pushed again.
    clients.skopeo("delete", NO_TLS, f"docker://{wharf.host}/{kept}@{digest}")
    assert registry_http.manifest(kept, digest).status_code == 404
    assert registry_http.manifest(kept, "v1").status_code == 404
    again = clients.push(images.storage, images.app.reference, f"{wharf.host}/{doomed}:v1")
    assert again == digest
    assert registry_http.manifest(doomed, "v1").status_code == 200


def test_oci_layout_and_dir_round_trips(
    clients: Clients,
    images: Images,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    tmp_path: Path,
) -> None:
    source = f"docker://{wharf.host}/{repo}/source:v1"
    digest = clients.push(images.storage, images.app.reference, source.removeprefix("docker://"))
    raw = clients.raw_manifest(f"{wharf.host}/{repo}/source:v1")
    layout, directory = tmp_path / "layout", tmp_path / "dir"

    clients.copy(source, f"oci:{layout}:v1", "--preserve-digests")
    clients.copy(source, f"dir:{directory}", "--preserve-digests")

    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    assert (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes() == raw
    assert (directory / "manifest.json").read_bytes() == raw
    files: dict[str, bytes] = {}
    for layer in json.loads(raw)["layers"]:
        blob = (directory / layer["digest"].removeprefix("sha256:")).read_bytes()
        assert sha256(blob) == layer["digest"]
        files |= layer_files(blob)
    assert files == images.app.files

    # And back into the registry, unchanged, under new names.
    clients.copy(
        f"oci:{layout}:v1", f"docker://{wharf.host}/{repo}/from-oci:v1", "--preserve-digests"
    )
    clients.copy(
        f"dir:{directory}", f"docker://{wharf.host}/{repo}/from-dir:v1", "--preserve-digests"
    )
    for name in ("from-oci", "from-dir"):
        response = registry_http.manifest(f"{repo}/{name}", "v1")
        assert response.status_code == 200, response.text
        assert response.content == raw


def test_copy_from_containers_storage_keeps_uncompressed_layers(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    """With --preserve-digests skopeo pushes the layers as stored: plain tarballs, whose digests
    are the config's diff ids."""
    local = images.storage.reference(images.app.reference)
    local_raw = clients.skopeo("inspect", "--raw", local).stdout.encode()

    clients.copy(local, f"docker://{wharf.host}/{repo}:v1", "--preserve-digests")

    response = registry_http.manifest(repo, "v1")
    assert response.content == local_raw
    manifest = response.json()
    assert {layer["mediaType"] for layer in manifest["layers"]} == {UNCOMPRESSED_LAYER}
    config = json.loads(registry_http.blob(repo, manifest["config"]["digest"]))
    assert [layer["digest"] for layer in manifest["layers"]] == config["rootfs"]["diff_ids"]
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        files |= layer_files(registry_http.blob(repo, layer["digest"]))
    assert files == images.app.files
    assert clients.pull(clean_storage, f"{wharf.host}/{repo}:v1") == images.app.image_id


def test_copy_converts_oci_to_docker(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    source = f"{wharf.host}/{repo}/oci:v1"
    clients.push(images.storage, images.app.reference, source)

    clients.copy(
        f"docker://{source}", f"docker://{wharf.host}/{repo}/docker:v1", "--format", "v2s2"
    )

    response = registry_http.manifest(f"{repo}/docker", "v1")
    assert response.headers["Content-Type"] == DOCKER_MANIFEST
    image_id = clients.pull(clean_storage, f"{wharf.host}/{repo}/docker:v1")
    assert image_id == response.json()["config"]["digest"].removeprefix("sha256:")
    assert clients.read_files(clean_storage, image_id, list(images.app.files)) == images.app.files


def test_sync_copies_every_tag(
    clients: Clients,
    images: Images,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    digests = {
        "v1": clients.push(images.storage, images.base.reference, f"{wharf.host}/{repo}/app:v1"),
        "v2": clients.push(images.storage, images.app.reference, f"{wharf.host}/{repo}/app:v2"),
    }

    clients.skopeo(
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--preserve-digests",
        f"{wharf.host}/{repo}/app",
        f"{wharf.host}/{repo}/mirror",
    )

    mirrored = f"{repo}/mirror/app"
    assert registry_http.tags(mirrored).json() == {"name": mirrored, "tags": ["v1", "v2"]}
    for tag, digest in digests.items():
        assert registry_http.manifest(mirrored, tag).headers["Docker-Content-Digest"] == digest


def test_delete_an_index_keeps_its_children(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    reference = f"{wharf.host}/{repo}:multi"
    clients.buildah(
        images.storage, "manifest", "push", NO_TLS, "--all", images.index, f"docker://{reference}"
    )
    index = json.loads(clients.raw_manifest(reference))
    children = [child["digest"] for child in index["manifests"]]

    clients.skopeo("delete", NO_TLS, f"docker://{reference}")

    assert registry_http.manifest(repo, "multi").status_code == 404
    for child in children:
        assert registry_http.manifest(repo, child).status_code == 200
    (arm64,) = [
        child["digest"]
        for child in index["manifests"]
        if child["platform"]["architecture"] == "arm64"
    ]
    pulled = clients.pull(clean_storage, f"{wharf.host}/{repo}@{arm64}", "--arch", "arm64")
    assert pulled == images.arm.image_id
