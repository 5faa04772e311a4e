"""buildah pushes images and multi-architecture manifest lists to Wharf and pulls them back."""

from __future__ import annotations

import json

import pytest

from tests.support.clients import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    NO_TLS,
    OCI_INDEX,
    OCI_MANIFEST,
    Clients,
    Images,
    RegistryHTTP,
    Storage,
    sha256,
)
from tests.support.server import WharfProcess

pytest_plugins = ("tests.support.client_fixtures",)
pytestmark = pytest.mark.clients


@pytest.mark.parametrize(
    ("push_format", "media_type"),
    [
        pytest.param("oci", OCI_MANIFEST, id="oci"),
        pytest.param("docker", DOCKER_MANIFEST, id="docker"),
    ],
)
def test_buildah_push_and_pull(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    push_format: str,
    media_type: str,
) -> None:
    digestfile = clients.home / f"{repo.replace('/', '-')}.digest"
    clients.buildah(
        images.storage,
        "push",
        NO_TLS,
        "--format",
        push_format,
        "--digestfile",
        str(digestfile),
        images.app.reference,
        f"docker://{wharf.host}/{repo}:v1",
    )
    digest = digestfile.read_text().strip()

    response = registry_http.manifest(repo, digest)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == media_type
    assert sha256(response.content) == digest
    manifest = response.json()
    assert len(manifest["layers"]) == 3

    pulled = clients.buildah(
        clean_storage, "pull", NO_TLS, "--quiet", f"docker://{wharf.host}/{repo}:v1"
    ).last_line()
    assert pulled == manifest["config"]["digest"].removeprefix("sha256:")
    if push_format == "oci":
        assert pulled == images.app.image_id
    assert clients.read_files(clean_storage, pulled, list(images.app.files)) == images.app.files


@pytest.mark.parametrize(
    ("list_format", "media_type", "child_type"),
    [
        pytest.param("oci", OCI_INDEX, OCI_MANIFEST, id="oci-index"),
        pytest.param("v2s2", DOCKER_MANIFEST_LIST, DOCKER_MANIFEST, id="docker-manifest-list"),
    ],
)
def test_manifest_list_push_all(
    clients: Clients,
    images: Images,
    wharf: WharfProcess,
    registry_http: RegistryHTTP,
    repo: str,
    list_format: str,
    media_type: str,
    child_type: str,
) -> None:
    digestfile = clients.home / f"{repo.replace('/', '-')}.digest"
    clients.buildah(
        images.storage,
        "manifest",
        "push",
        NO_TLS,
        "--all",
        "--format",
        list_format,
        "--digestfile",
        str(digestfile),
        images.index,
        f"docker://{wharf.host}/{repo}:multi",
    )
    digest = digestfile.read_text().strip()

    response = registry_http.manifest(repo, "multi")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Docker-Content-Digest"] == digest == sha256(response.content)
    index = response.json()
    platforms = {
        (child["platform"]["architecture"], child["platform"].get("variant"))
        for child in index["manifests"]
    }
    assert platforms == {("amd64", None), ("arm64", "v8")}
    for child in index["manifests"]:
        assert child["mediaType"] == child_type
        served = registry_http.manifest(repo, child["digest"])
        assert served.status_code == 200, served.text
        assert sha256(served.content) == child["digest"]
        assert len(served.content) == child["size"]
        manifest = served.json()
        config = json.loads(registry_http.blob(repo, manifest["config"]["digest"]))
        assert config["architecture"] == child["platform"]["architecture"]
        for layer in manifest["layers"]:
            assert registry_http.blob_status(repo, layer["digest"]) == 200


@pytest.mark.parametrize(("architecture", "built"), [("amd64", "app"), ("arm64", "arm")])
def test_pull_each_platform_of_a_manifest_list(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    wharf: WharfProcess,
    repo: str,
    architecture: str,
    built: str,
) -> None:
    reference = f"{wharf.host}/{repo}:multi"
    clients.buildah(
        images.storage, "manifest", "push", NO_TLS, "--all", images.index, f"docker://{reference}"
    )
    image = getattr(images, built)

    image_id = clients.pull(clean_storage, reference, "--arch", architecture)

    pulled = clients.image_inspect(clean_storage, image_id)
    assert pulled["Architecture"] == architecture
    assert clients.read_files(clean_storage, image_id, list(image.files)) == image.files
    # The list's own digest is what the tag names; podman records it with the image.
    listed = sha256(clients.raw_manifest(reference))
    assert f"{wharf.host}/{repo}@{listed}" in pulled["RepoDigests"]
