"""OCI Distribution 1.1: manifests by tag and by digest, of every type, and their deletion."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.support.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Image,
    Registry,
    absolute,
    assert_error,
    descriptor,
    digest_of,
    image_index,
    image_manifest,
    random_bytes,
    raw_request,
)
from tests.support.server import WharfProcess


def assert_manifest(response: requests.Response, payload: bytes, media_type: str) -> None:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Docker-Content-Digest"] == digest_of(payload)
    assert response.headers["Content-Length"] == str(len(payload))
    if response.request.method == "HEAD":
        assert response.content == b""
    else:
        assert response.content == payload


def platform_index(
    reg: Registry, repo: str, media_type: str = OCI_INDEX, **fields: Any
) -> tuple[bytes, list[Image]]:
    """Two single-layer images by digest, and an index over them (not yet pushed)."""
    child_type = (
        DOCKER_MANIFEST
        if media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
        else OCI_MANIFEST
    )
    images = [reg.push_image(repo, media_type=child_type, seed=i) for i in range(2)]
    entries = [
        image.descriptor(platform={"architecture": arch, "os": "linux"})
        for image, arch in zip(images, ["amd64", "arm64"], strict=True)
    ]
    return image_index(entries, media_type=media_type, **fields), images


# Pull


def test_get_and_head_by_tag_and_by_digest(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    for reference in ("v1", image.digest):
        assert_manifest(reg.get_manifest(repo, reference), image.payload, OCI_MANIFEST)
        assert_manifest(
            reg.get_manifest(repo, reference, method="HEAD"), image.payload, OCI_MANIFEST
        )


def test_put_answers_201_with_location_and_digest(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    created = image.response
    assert created.status_code == 201
    assert created.headers["Docker-Content-Digest"] == image.digest
    location = absolute(reg.url, created)
    assert urlparse(location).path == f"/v2/{repo}/manifests/{image.digest}"
    assert_manifest(
        reg.http.get(location, headers={"Accept": OCI_MANIFEST}), image.payload, OCI_MANIFEST
    )


@pytest.mark.parametrize("reference", ["missing", "sha256:" + "1" * 64])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_missing_manifest_is_404(reg: Registry, repo: str, reference: str, method: str) -> None:
    reg.push_image(repo, "present")
    response = reg.get_manifest(repo, reference, method=method)
    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reference_that_cannot_be_a_tag_is_404(reg: Registry, repo: str, method: str) -> None:
    # The conformance suite asks for ".INVALID_MANIFEST_NAME" and expects 404.
    reg.push_image(repo, "present")
    response = reg.get_manifest(repo, ".INVALID_MANIFEST_NAME", method=method)
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_manifest_of_unknown_repository_is_404(reg: Registry) -> None:
    response = reg.get_manifest("never/pushed/here", "latest")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}


def test_manifest_bytes_are_kept_exactly(reg: Registry, repo: str) -> None:
    config = EMPTY_JSON
    reg.push_blob(repo, config)
    # Odd whitespace and key order: the digest is of these bytes, so they must survive.
    payload = (
        b'{ "schemaVersion" :2,\n\t"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"layers":[],   "config":{"size":2,"digest":"' + EMPTY_JSON_DIGEST.encode() + b'",'
        b'"mediaType":"application/vnd.oci.empty.v1+json"}}\n\n'
    )
    created = reg.put_manifest(repo, "odd", payload)
    assert created.status_code == 201
    assert created.headers["Docker-Content-Digest"] == digest_of(payload)
    assert_manifest(reg.get_manifest(repo, "odd"), payload, OCI_MANIFEST)


# Accept negotiation


@pytest.mark.parametrize(
    "accept",
    [
        OCI_MANIFEST,
        f"{OCI_INDEX}, {OCI_MANIFEST}",
        f"{DOCKER_MANIFEST};q=0.5, {OCI_MANIFEST};q=0.9",
        "*/*",
        "application/json",
        "",
    ],
    ids=["exact", "list", "q-values", "any", "generic-json", "none"],
)
def test_accept_that_allows_the_stored_type(reg: Registry, repo: str, accept: str) -> None:
    image = reg.push_image(repo, "v1")
    for method in ("GET", "HEAD"):
        response = reg.http.request(
            method, reg.v2(f"{repo}/manifests/v1"), headers={"Accept": accept} if accept else {}
        )
        assert_manifest(response, image.payload, OCI_MANIFEST)


def test_accept_in_several_header_lines(wharf: WharfProcess, reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    response = raw_request(
        wharf.host,
        "GET",
        f"/v2/{repo}/manifests/v1",
        {"Accept": OCI_INDEX, "accept": OCI_MANIFEST},
    )
    assert response.status == 200
    assert response.headers["content-type"] == OCI_MANIFEST
    assert response.body == image.payload


def test_accept_that_excludes_the_stored_type_is_404(reg: Registry, repo: str) -> None:
    reg.push_image(repo, "v1")
    response = reg.get_manifest(repo, "v1", accept=[DOCKER_MANIFEST, DOCKER_LIST])
    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_docker_manifest_served_to_a_docker_client(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1", media_type=DOCKER_MANIFEST)
    assert_manifest(
        reg.get_manifest(repo, "v1", accept=DOCKER_MANIFEST), image.payload, DOCKER_MANIFEST
    )
    assert_error(reg.get_manifest(repo, "v1", accept=OCI_MANIFEST), 404, "MANIFEST_UNKNOWN")


# Push of every manifest type


@pytest.mark.parametrize("by", ["tag", "digest"])
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_push_image_manifest(reg: Registry, repo: str, media_type: str, by: str) -> None:
    image = reg.push_image(repo, "v1" if by == "tag" else None, media_type=media_type)
    assert image.response.headers["Docker-Content-Digest"] == image.digest
    assert_manifest(reg.get_manifest(repo, image.digest), image.payload, media_type)
    if by == "tag":
        assert_manifest(reg.get_manifest(repo, "v1"), image.payload, media_type)
    else:
        assert reg.http.get(reg.v2(f"{repo}/tags/list")).json().get("tags") in (None, [])


@pytest.mark.parametrize("by", ["tag", "digest"])
@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_push_index(reg: Registry, repo: str, media_type: str, by: str) -> None:
    payload, images = platform_index(reg, repo, media_type)
    digest = digest_of(payload)
    created = reg.put_manifest(repo, "multi" if by == "tag" else digest, payload, media_type)
    assert created.status_code == 201, created.content
    assert created.headers["Docker-Content-Digest"] == digest
    assert urlparse(absolute(reg.url, created)).path == f"/v2/{repo}/manifests/{digest}"
    for reference in (digest, "multi") if by == "tag" else (digest,):
        assert_manifest(reg.get_manifest(repo, reference), payload, media_type)
    for image in images:
        assert_manifest(reg.get_manifest(repo, image.digest), image.payload, image.media_type)


def test_manifest_without_media_type_field_takes_the_content_type(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    config = descriptor(OCI_EMPTY, EMPTY_JSON)
    payload = image_manifest(config, [], media_type=None)
    assert reg.put_manifest(repo, "bare", payload, OCI_MANIFEST).status_code == 201
    assert_manifest(reg.get_manifest(repo, "bare"), payload, OCI_MANIFEST)


def test_content_type_with_parameters_is_accepted(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    payload = image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [])
    created = reg.put_manifest(repo, "v1", payload, f"{OCI_MANIFEST}; charset=utf-8")
    assert created.status_code == 201
    assert_manifest(reg.get_manifest(repo, "v1"), payload, OCI_MANIFEST)


def test_same_manifest_under_several_tags(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "test0")
    for i in range(1, 4):
        created = reg.put_manifest(repo, f"test{i}", image.payload)
        assert created.status_code == 201
        assert created.headers["Docker-Content-Digest"] == image.digest
        assert absolute(reg.url, created).endswith(f"/manifests/{image.digest}")
    for i in range(4):
        assert_manifest(reg.get_manifest(repo, f"test{i}"), image.payload, OCI_MANIFEST)


def test_pushing_the_same_manifest_again_is_idempotent(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    for reference in ("v1", image.digest):
        again = reg.put_manifest(repo, reference, image.payload)
        assert again.status_code == 201
        assert again.headers["Docker-Content-Digest"] == image.digest
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["v1"]


@pytest.mark.parametrize("kind", ["image", "index"])
def test_sha512_manifests_by_digest(reg: Registry, repo: str, kind: str) -> None:
    images = [reg.push_image(repo, algorithm="sha512", seed=i) for i in range(2)]
    for image in images:
        assert image.digest.startswith("sha512:")
        response = reg.get_manifest(repo, image.digest)
        assert response.status_code == 200
        assert response.content == image.payload
        assert response.headers["Docker-Content-Digest"] == image.digest
    if kind == "index":
        payload = image_index([image.descriptor() for image in images])
        digest = digest_of(payload, "sha512")
        created = reg.put_manifest(repo, digest, payload, OCI_INDEX)
        assert created.status_code == 201, created.content
        assert created.headers["Docker-Content-Digest"] == digest
        response = reg.get_manifest(repo, digest)
        assert response.content == payload
        assert response.headers["Docker-Content-Digest"] == digest


def test_image_without_layers(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "nolayers", layers=0)
    assert json.loads(image.payload)["layers"] == []
    assert_manifest(reg.get_manifest(repo, "nolayers"), image.payload, OCI_MANIFEST)


def test_artifact_manifest(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    layer = random_bytes(300, seed=40)
    reg.push_blob(repo, layer)
    payload = image_manifest(
        descriptor(OCI_EMPTY, EMPTY_JSON),
        [descriptor("application/vnd.example.thing", layer)],
        artifactType="application/vnd.example.thing",
    )
    assert reg.put_manifest(repo, "artifact", payload).status_code == 201
    assert_manifest(reg.get_manifest(repo, "artifact"), payload, OCI_MANIFEST)


def test_artifact_whose_only_layer_is_the_empty_blob(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    payload = image_manifest(
        descriptor(OCI_EMPTY, EMPTY_JSON),
        [descriptor(OCI_EMPTY, EMPTY_JSON)],
        artifactType="application/vnd.example.thing",
    )
    assert reg.put_manifest(repo, "artifact", payload).status_code == 201


def test_large_manifest_below_4_mib(reg: Registry, repo: str) -> None:
    annotations = {f"large-annotation-{i}": "A" * 10_000 for i in range(390)}
    image = reg.push_image(repo, "large", annotations=annotations)
    assert 3_900_000 < len(image.payload) < 4 * 1024 * 1024
    assert_manifest(reg.get_manifest(repo, "large"), image.payload, OCI_MANIFEST)


def test_index_of_indexes(reg: Registry, repo: str) -> None:
    children = []
    for _ in range(2):
        payload, _images = platform_index(reg, repo)
        digest = digest_of(payload)
        assert reg.put_manifest(repo, digest, payload, OCI_INDEX).status_code == 201
        children.append({"mediaType": OCI_INDEX, "digest": digest, "size": len(payload)})
    top = image_index(children)
    assert reg.put_manifest(repo, "index-of-index", top, OCI_INDEX).status_code == 201
    assert_manifest(reg.get_manifest(repo, "index-of-index"), top, OCI_INDEX)


def test_empty_index(reg: Registry, repo: str) -> None:
    payload = image_index([])
    assert reg.put_manifest(repo, "empty", payload, OCI_INDEX).status_code == 201
    assert_manifest(reg.get_manifest(repo, "empty"), payload, OCI_INDEX)


def test_artifact_index(reg: Registry, repo: str) -> None:
    payload, _images = platform_index(reg, repo, artifactType="application/vnd.example.set")
    assert reg.put_manifest(repo, "set", payload, OCI_INDEX).status_code == 201
    assert_manifest(reg.get_manifest(repo, "set"), payload, OCI_INDEX)


def test_unknown_fields_are_kept(reg: Registry, repo: str) -> None:
    images = [reg.push_image(repo, seed=i, customField={"x": [1, 2]}) for i in range(2)]
    payload = image_index(
        [
            image.descriptor(platform={"architecture": "amd64", "os": "linux"}, vendorThing=True)
            for image in images
        ],
        somethingNew="yes",
    )
    assert reg.put_manifest(repo, "custom", payload, OCI_INDEX).status_code == 201
    assert_manifest(reg.get_manifest(repo, "custom"), payload, OCI_INDEX)


def test_descriptor_with_data_field(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    config = descriptor(OCI_EMPTY, EMPTY_JSON, data="e30=")
    layer = random_bytes(64, seed=41)
    reg.push_blob(repo, layer)
    payload = image_manifest(config, [descriptor(OCI_LAYER, layer, data="")])
    assert reg.put_manifest(repo, "data", payload).status_code == 201
    assert_manifest(reg.get_manifest(repo, "data"), payload, OCI_MANIFEST)


def test_non_distributable_layers_need_not_be_pushed(reg: Registry, repo: str) -> None:
    config_bytes = b'{"architecture":"amd64","os":"linux"}'
    reg.push_blob(repo, config_bytes)
    foreign = random_bytes(256, seed=42)
    layers = [
        descriptor(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            foreign,
            urls=[f"https://store.example.com/blobs/{digest_of(foreign)}"],
        )
    ]
    payload = image_manifest(descriptor(OCI_CONFIG, config_bytes), layers)
    assert reg.put_manifest(repo, "foreign", payload).status_code == 201
    assert_manifest(reg.get_manifest(repo, "foreign"), payload, OCI_MANIFEST)


# Missing references


def test_image_with_a_missing_layer_is_manifest_blob_unknown(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, EMPTY_JSON)
    missing = random_bytes(100, seed=43)
    payload = image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [descriptor(OCI_LAYER, missing)])
    error = assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_BLOB_UNKNOWN")
    assert error.get("detail", {}).get("digest") == digest_of(missing)
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.get_manifest(repo, digest_of(payload)), 404, "MANIFEST_UNKNOWN")


def test_image_with_a_missing_config_is_manifest_blob_unknown(reg: Registry, repo: str) -> None:
    layer = random_bytes(100, seed=44)
    reg.push_blob(repo, layer)
    config = descriptor(OCI_CONFIG, b'{"never":"pushed"}')
    payload = image_manifest(config, [descriptor(OCI_LAYER, layer)])
    assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_BLOB_UNKNOWN")


def test_blob_of_another_repository_does_not_count(reg: Registry, repo: str) -> None:
    elsewhere = f"{repo}-elsewhere"
    reg.push_blob(elsewhere, EMPTY_JSON)
    payload = image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [])
    assert_error(reg.put_manifest(repo, "v1", payload), 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_with_a_missing_manifest_is_manifest_blob_unknown(reg: Registry, repo: str) -> None:
    present = reg.push_image(repo, seed=1)
    absent = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"no such manifest"), "size": 16}
    payload = image_index([present.descriptor(), absent])
    for reference in ("multi", digest_of(payload)):
        response = reg.put_manifest(repo, reference, payload, OCI_INDEX)
        error = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
        assert error.get("detail", {}).get("digest") == absent["digest"]
    assert_error(reg.get_manifest(repo, "multi"), 404, "MANIFEST_UNKNOWN")
    assert_error(reg.get_manifest(repo, digest_of(payload)), 404, "MANIFEST_UNKNOWN")


def test_index_naming_a_blob_instead_of_a_manifest(reg: Registry, repo: str) -> None:
    blob = random_bytes(100, seed=45)
    reg.push_blob(repo, blob)
    payload = image_index([{"mediaType": OCI_MANIFEST, "digest": digest_of(blob), "size": 100}])
    assert_error(reg.put_manifest(repo, "multi", payload, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")


# Subject


@pytest.mark.parametrize("kind", ["image", "index"])
@pytest.mark.parametrize("subject_pushed", [True, False], ids=["subject", "missing-subject"])
def test_subject_is_answered_with_oci_subject(
    reg: Registry, repo: str, kind: str, subject_pushed: bool
) -> None:
    if subject_pushed:
        subject = reg.push_image(repo, "base").descriptor()
    else:
        subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"missing content"), "size": 123}
    if kind == "image":
        reg.push_blob(repo, EMPTY_JSON)
        payload = image_manifest(
            descriptor(OCI_EMPTY, EMPTY_JSON),
            [descriptor(OCI_EMPTY, EMPTY_JSON)],
            artifactType="application/vnd.example.sig",
            subject=subject,
        )
        media_type = OCI_MANIFEST
    else:
        payload, _images = platform_index(reg, repo, subject=subject)
        media_type = OCI_INDEX
    for reference in (digest_of(payload), "tagged-artifact"):
        created = reg.put_manifest(repo, reference, payload, media_type)
        assert created.status_code == 201, created.content
        assert created.headers["OCI-Subject"] == subject["digest"]
    assert_manifest(reg.get_manifest(repo, "tagged-artifact"), payload, media_type)


def test_no_oci_subject_without_subject(reg: Registry, repo: str) -> None:
    assert "OCI-Subject" not in reg.push_image(repo, "v1").response.headers


# Delete


def test_delete_by_digest_removes_the_manifest_and_its_tags(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    reg.put_manifest(repo, "v2", image.payload)
    keep = reg.push_image(repo, "keep", seed=99)
    deleted = reg.http.delete(reg.v2(f"{repo}/manifests/{image.digest}"))
    assert deleted.status_code == 202
    for reference in (image.digest, "v1", "v2"):
        assert reg.get_manifest(repo, reference, method="HEAD").status_code == 404
        assert_error(reg.get_manifest(repo, reference), 404, "MANIFEST_UNKNOWN")
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["keep"]
    assert_manifest(reg.get_manifest(repo, "keep"), keep.payload, OCI_MANIFEST)
    again = reg.http.delete(reg.v2(f"{repo}/manifests/{image.digest}"))
    assert_error(again, 404, "MANIFEST_UNKNOWN")


def test_delete_by_tag_removes_only_the_tag(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    reg.put_manifest(repo, "v2", image.payload)
    deleted = reg.http.delete(reg.v2(f"{repo}/manifests/v1"))
    assert deleted.status_code == 202
    assert reg.get_manifest(repo, "v1", method="HEAD").status_code == 404
    assert_error(reg.get_manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    assert_manifest(reg.get_manifest(repo, image.digest), image.payload, OCI_MANIFEST)
    assert_manifest(reg.get_manifest(repo, "v2"), image.payload, OCI_MANIFEST)
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["v2"]
    assert_error(reg.http.delete(reg.v2(f"{repo}/manifests/v1")), 404, "MANIFEST_UNKNOWN")


def test_delete_of_unknown_manifest_is_404(reg: Registry, repo: str) -> None:
    reg.push_image(repo, "v1")
    for reference in ("nope", digest_of(b"nope"), ".INVALID_MANIFEST_NAME"):
        assert_error(
            reg.http.delete(reg.v2(f"{repo}/manifests/{reference}")), 404, "MANIFEST_UNKNOWN"
        )


def test_deleted_manifest_can_be_pushed_again(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    assert reg.http.delete(reg.v2(f"{repo}/manifests/{image.digest}")).status_code == 202
    assert reg.put_manifest(repo, "v1", image.payload).status_code == 201
    assert_manifest(reg.get_manifest(repo, "v1"), image.payload, OCI_MANIFEST)


def test_manifest_of_one_repository_is_not_in_another(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    other = f"{repo}-other"
    reg.push_image(other, "v1", seed=7)
    assert_error(reg.get_manifest(other, image.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(
        reg.http.delete(reg.v2(f"{other}/manifests/{image.digest}")), 404, "MANIFEST_UNKNOWN"
    )
    assert reg.get_manifest(repo, image.digest).status_code == 200
