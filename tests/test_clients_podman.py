"""podman pushes images built with buildah to Wharf, and pulls them back into empty storage."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.clients import (
    DOCKER_MANIFEST,
    ENV,
    LABELS,
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


@pytest.mark.parametrize(
    ("built", "push_args", "media_type"),
    [
        pytest.param("app", (), OCI_MANIFEST, id="oci"),
        pytest.param("app_docker", (), DOCKER_MANIFEST, id="docker"),
        pytest.param("app", ("--format", "v2s2"), DOCKER_MANIFEST, id="oci-pushed-as-v2s2"),
        pytest.param("app_docker", ("--format", "oci"), OCI_MANIFEST, id="docker-pushed-as-oci"),
    ],
)
def test_push_and_pull_round_trip(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    built: str,
    push_args: tuple[str, ...],
    media_type: str,
) -> None:
    image = getattr(images, built)
    reference = f"{wharf.host}/{repo}:v1"

    digest = clients.push(images.storage, image.reference, reference, *push_args)

    response = registry_http.manifest(repo, "v1")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Docker-Content-Digest"] == digest
    assert sha256(response.content) == digest
    manifest = response.json()
    assert len(manifest["layers"]) == len(image.layer_files) == 3
    for descriptor in [manifest["config"], *manifest["layers"]]:
        assert registry_http.blob_status(repo, descriptor["digest"]) == 200

    image_id = clients.pull(clean_storage, reference)
    assert image_id == manifest["config"]["digest"].removeprefix("sha256:")
    if not push_args:  # pushed as it was built: the very same config, so the same image id
        assert image_id == image.image_id
    pulled = clients.image_inspect(clean_storage, reference)
    assert pulled["Digest"] == digest
    assert f"{wharf.host}/{repo}@{digest}" in pulled["RepoDigests"]
    assert pulled["Architecture"] == "amd64"
    assert pulled["Os"] == "linux"
    assert {f"{key}={value}" for key, value in ENV.items()} <= set(pulled["Config"]["Env"])
    assert LABELS.items() <= pulled["Labels"].items()
    assert len(pulled["RootFS"]["Layers"]) == 3
    assert clients.read_files(clean_storage, reference, list(image.files)) == image.files


def test_pull_by_digest_after_the_tag_moved(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    tag = f"{wharf.host}/{repo}:latest"
    first = clients.push(images.storage, images.app.reference, tag)
    second = clients.push(images.storage, images.arm.reference, tag)
    assert first != second
    assert registry_http.manifest(repo, "latest").headers["Docker-Content-Digest"] == second

    # The tag now names the arm64 image; the amd64 one is still there by digest.
    old_id = clients.pull(clean_storage, f"{wharf.host}/{repo}@{first}")
    assert old_id == images.app.image_id
    new_id = clients.pull(clean_storage, tag, "--arch", "arm64")
    assert new_id == images.arm.image_id
    assert clients.read_files(clean_storage, new_id, ["/app/arch", "/app/hello.txt"]) == {
        "/app/arch": b"arm64\n"
    }


def test_second_push_uploads_nothing(
    clients: Clients,
    images: Images,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    """Pushing what the repository already holds: podman finds every blob there (HEAD 200)
    and only puts the manifest under the new tag."""
    digest = clients.push(images.storage, images.app.reference, f"{wharf.host}/{repo}:one")
    again = clients.podman(
        images.storage,
        "--log-level=debug",
        "push",
        "--tls-verify=false",
        images.app.reference,
        f"{wharf.host}/{repo}:two",
    )

    sent = requests_made(again.stderr)
    assert sent, again.stderr
    uploads = [(method, url) for method, url in sent if "/blobs/uploads/" in url]
    assert uploads == []
    assert ("PUT", f"{wharf.url}/v2/{repo}/manifests/two") in sent
    assert registry_http.manifest(repo, "two").headers["Docker-Content-Digest"] == digest
    assert registry_http.tags(repo).json() == {"name": repo, "tags": ["one", "two"]}


@pytest.mark.parametrize(
    "path", ["a/b/c", "deeply/nested/name/with/many/components", "my-app.v2/sub_dir/x__y"]
)
def test_nested_repository_names(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    path: str,
) -> None:
    name = f"{repo}/{path}"
    reference = f"{wharf.host}/{name}:1.0"
    digest = clients.push(images.storage, images.app.reference, reference)

    assert registry_http.tags(name).json() == {"name": name, "tags": ["1.0"]}
    # The parent "directories" are no repositories of their own.
    assert registry_http.manifest(name.rsplit("/", 1)[0], "1.0").status_code == 404
    tags = clients.skopeo("list-tags", "--tls-verify=false", f"docker://{wharf.host}/{name}")
    assert tags.json()["Tags"] == ["1.0"]
    assert clients.pull(clean_storage, reference) == images.app.image_id
    assert clients.image_inspect(clean_storage, reference)["Digest"] == digest


def test_catalog_lists_the_pushed_repositories(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    fresh_wharf: WharfProcess,
    http: requests.Session,
) -> None:
    names = ["a/b/c", "a/b", "z", "library/app"]
    for name in names:
        clients.push(images.storage, images.base.reference, f"{fresh_wharf.host}/{name}:v1")
    catalog = http.get(f"{fresh_wharf.url}/v2/_catalog", timeout=30)
    assert catalog.json() == {"repositories": sorted(names)}
    for name in names:
        assert clients.pull(clean_storage, f"{fresh_wharf.host}/{name}:v1") == (
            images.base.image_id
        )


def test_push_zstd_compressed_layers(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    # Layers of their own: podman would otherwise reuse the gzip copies other tests pushed.
    files = {"/zstd/owner.txt": repo.encode(), "/zstd/zeros.bin": bytes(256 * 1024)}
    image = clients.build(images.storage, repo.replace("/", "-"), [files], base=images.base)
    reference = f"{wharf.host}/{repo}:zstd"

    clients.push(images.storage, image.reference, reference, "--compression-format", "zstd")

    manifest = registry_http.manifest(repo, "zstd").json()
    own_layer = manifest["layers"][-1]
    assert own_layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    blob = registry_http.blob(repo, own_layer["digest"])
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # the zstd frame magic
    assert len(blob) == own_layer["size"]
    assert clients.pull(clean_storage, reference) == image.image_id
    assert clients.read_files(clean_storage, reference, list(image.files)) == image.files


def test_search_and_list_tags(
    clients: Clients, images: Images, wharf: WharfProcess, repo: str
) -> None:
    """`podman search` reads the catalog, `--list-tags` the tags of one repository."""
    for name, tag in (("app", "v1"), ("app", "v2"), ("tool", "1.0")):
        clients.push(images.storage, images.base.reference, f"{wharf.host}/{repo}/{name}:{tag}")

    term = repo.rsplit("/", 1)[-1]  # unique to this test
    found = clients.podman(
        images.storage, "search", "--tls-verify=false", "--format", "json", f"{wharf.host}/{term}"
    ).json()
    assert sorted(entry["Name"] for entry in found) == [
        f"{wharf.host}/{repo}/app",
        f"{wharf.host}/{repo}/tool",
    ]
    tags = clients.podman(
        images.storage,
        "search",
        "--tls-verify=false",
        "--list-tags",
        "--format",
        "json",
        f"{wharf.host}/{repo}/app",
    ).json()
    assert tags == [{"Name": f"{wharf.host}/{repo}/app", "Tags": ["v1", "v2"]}]


def test_parallel_pushes_of_the_same_new_layers(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    """Four podmans upload the same blobs, none of which the registry has yet, at once."""
    layers = [{f"/parallel/{number}.bin": os.urandom(1 << 20)} for number in range(2)]
    image = clients.build(images.storage, repo.replace("/", "-"), layers)
    names = [f"{repo}/p{number}" for number in range(4)]

    def push(name: str) -> str:
        return clients.push(images.storage, image.reference, f"{wharf.host}/{name}:v1")

    with ThreadPoolExecutor(len(names)) as pool:
        digests = list(pool.map(push, names))

    for name, digest in zip(names, digests, strict=True):
        response = registry_http.manifest(name, "v1")
        assert response.status_code == 200, response.text
        assert response.headers["Docker-Content-Digest"] == digest
        manifest = response.json()
        for blob in [manifest["config"], *manifest["layers"]]:
            assert sha256(registry_http.blob(name, blob["digest"])) == blob["digest"]
    assert clients.pull(clean_storage, f"{wharf.host}/{names[-1]}:v1") == image.image_id
    assert clients.read_files(clean_storage, image.image_id, list(image.files)) == image.files


def test_push_by_digest_leaves_no_tag(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    digest = clients.push(images.storage, images.app.reference, f"{wharf.host}/{repo}/tagged:v1")

    clients.copy(
        f"docker://{wharf.host}/{repo}/tagged:v1",
        f"docker://{wharf.host}/{repo}/untagged@{digest}",
        "--preserve-digests",
    )

    assert registry_http.tags(f"{repo}/untagged").json()["tags"] == []
    assert registry_http.manifest(f"{repo}/untagged", digest).status_code == 200
    pulled = clients.pull(clean_storage, f"{wharf.host}/{repo}/untagged@{digest}")
    assert pulled == images.app.image_id


def test_tags_at_the_edges_of_the_grammar(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
) -> None:
    tags = ["A", "_leading_underscore", "Release_1.0-rc.1", "x" * 128]
    for tag in tags:
        clients.push(images.storage, images.base.reference, f"{wharf.host}/{repo}:{tag}")

    listed = clients.skopeo("list-tags", "--tls-verify=false", f"docker://{wharf.host}/{repo}")
    assert listed.json()["Tags"] == sorted(tags)
    assert registry_http.tags(repo).json()["tags"] == sorted(tags)
    longest = f"{wharf.host}/{repo}:{'x' * 128}"
    assert clients.pull(clean_storage, longest) == images.base.image_id
