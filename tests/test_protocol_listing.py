"""OCI Distribution 1.1: tags list, catalog and referrers, with pagination."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.support.oci import (
    EMPTY_JSON,
    ERROR_CODES,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    Registry,
    assert_error,
    catalog,
    descriptor,
    digest_of,
    image_index,
    image_manifest,
    next_link,
    random_bytes,
    walk,
)
from tests.support.server import WharfProcess

# Tags


def tag_all(reg: Registry, repo: str, tags: list[str]) -> Image:
    image = reg.push_image(repo, tags[0])
    for tag in tags[1:]:
        assert reg.put_manifest(repo, tag, image.payload).status_code == 201
    return image


TAGS = ["test3", "test0", "latest", "V1", "v1.0", "v1_0", "test2", "test1", "a", "Z9"]


def test_tags_list_is_complete_and_in_lexical_order(reg: Registry, repo: str) -> None:
    tag_all(reg, repo, TAGS)
    response = reg.http.get(reg.v2(f"{repo}/tags/list"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"name": repo, "tags": sorted(TAGS)}
    assert "Link" not in response.headers


def test_tags_list_limited_by_n_with_link_to_the_rest(reg: Registry, repo: str) -> None:
    tag_all(reg, repo, TAGS)
    response = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"n": 4})
    assert response.status_code == 200
    assert response.json()["tags"] == sorted(TAGS)[:4]
    link = next_link(response)
    assert link is not None
    assert urlparse(link).path == f"/v2/{repo}/tags/list"
    assert parse_qs(urlparse(link).query) == {"n": ["4"], "last": [sorted(TAGS)[3]]}
    pages = walk(reg, reg.v2(f"{repo}/tags/list?n=4"), "tags")
    assert [len(page) for page in pages] == [4, 4, 2]
    assert [tag for page in pages for tag in page] == sorted(TAGS)


def test_tags_list_with_last_starts_after_it(reg: Registry, repo: str) -> None:
    tag_all(reg, repo, TAGS)
    ordered = sorted(TAGS)
    half = len(ordered) // 2
    last = ordered[half - 1]
    response = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"last": last})
    assert response.json()["tags"] == ordered[half:]
    paged = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"n": "2", "last": last})
    assert paged.json()["tags"] == ordered[half : half + 2]
    # `last` need not be a tag that exists: it is a position in the order.
    between = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"last": "test0a"})
    assert between.json()["tags"] == [t for t in ordered if t > "test0a"]
    beyond = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"last": "zzz"})
    assert beyond.status_code == 200
    assert beyond.json()["tags"] == []


def test_tags_list_with_n_at_or_over_the_count_has_no_link(reg: Registry, repo: str) -> None:
    tag_all(reg, repo, TAGS)
    for n in (len(TAGS), len(TAGS) + 5):
        response = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"n": n})
        assert response.json()["tags"] == sorted(TAGS)
        assert "Link" not in response.headers


def test_tags_list_with_n_zero_is_empty_and_ends(reg: Registry, repo: str) -> None:
    tag_all(reg, repo, TAGS)
    response = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"n": 0})
    assert response.status_code == 200
    assert response.json()["tags"] == []
    assert "Link" not in response.headers


@pytest.mark.parametrize(
    "n",
    ["abc", "-1", "1.5", "99999999999999999999999", "9" * 5000, "\u0661"],
    ids=lambda n: n[:25],
)
def test_tags_list_with_a_bad_n_is_an_error(reg: Registry, repo: str, n: str) -> None:
    tag_all(reg, repo, ["v1"])
    response = reg.http.get(reg.v2(f"{repo}/tags/list"), params={"n": n})
    if response.status_code == 200:  # a huge n is merely "all of them"
        assert response.json()["tags"] == ["v1"]
        return
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] in ERROR_CODES


@pytest.mark.parametrize("n", ["1001", "9" * 5000])
def test_catalog_refuses_pages_over_1000_as_distribution(reg: Registry, n: str) -> None:
    response = reg.http.get(f"{reg.url}/v2/_catalog", params={"n": n})
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


def test_an_upload_opened_adds_nothing_to_the_catalog(fresh_wharf: WharfProcess) -> None:
    reg = Registry(fresh_wharf.url)
    opened = reg.http.post(f"{reg.url}/v2/only/opened/blobs/uploads/")
    assert opened.status_code == 202, opened.text
    assert "only/opened" not in reg.http.get(f"{reg.url}/v2/_catalog").json()["repositories"]
    reg.push_blob("only/opened", b"now it holds something")
    assert "only/opened" in reg.http.get(f"{reg.url}/v2/_catalog").json()["repositories"]


def test_catalog_pages_by_100_when_n_is_absent(fresh_wharf: WharfProcess) -> None:
    reg = Registry(fresh_wharf.url)
    names = sorted(f"many/r{i:03}" for i in range(105))
    for name in names:
        reg.push_blob(name, b"x")
    first = reg.http.get(f"{reg.url}/v2/_catalog")
    assert first.status_code == 200, first.content
    assert first.json()["repositories"] == names[:100]
    assert 'rel="next"' in first.headers["Link"]
    whole = reg.http.get(f"{reg.url}/v2/_catalog", params={"n": 1000})
    assert whole.json()["repositories"] == names and "Link" not in whole.headers


def test_tags_list_of_unknown_repository_is_name_unknown(reg: Registry) -> None:
    name = f"never/pushed/{uuid.uuid4().hex[:8]}"
    assert_error(reg.http.get(reg.v2(f"{name}/tags/list")), 404, "NAME_UNKNOWN")


def test_tags_list_reflects_deletions(reg: Registry, repo: str) -> None:
    image = tag_all(reg, repo, ["a", "b", "c"])
    other = reg.push_image(repo, "d", seed=3)
    assert reg.http.delete(reg.v2(f"{repo}/manifests/b")).status_code == 202
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["a", "c", "d"]
    assert reg.http.delete(reg.v2(f"{repo}/manifests/{image.digest}")).status_code == 202
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["d"]
    assert reg.http.delete(reg.v2(f"{repo}/manifests/{other.digest}")).status_code == 202
    response = reg.http.get(reg.v2(f"{repo}/tags/list"))
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.json()["tags"] in ([], None)


def test_tags_list_of_nested_name(reg: Registry) -> None:
    name = f"a/b/c/{uuid.uuid4().hex[:8]}"
    tag_all(reg, name, ["one", "two"])
    assert reg.http.get(reg.v2(f"{name}/tags/list")).json() == {
        "name": name,
        "tags": ["one", "two"],
    }


def test_tags_list_long_tag(reg: Registry, repo: str) -> None:
    long_tag = "t" * 128
    tag_all(reg, repo, [long_tag])
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == [long_tag]


# Catalog


def test_catalog_lists_every_repository_in_order_with_pages(fresh_wharf: WharfProcess) -> None:
    reg = Registry(fresh_wharf.url)
    empty = reg.http.get(f"{reg.url}/v2/_catalog")
    assert empty.status_code == 200
    assert empty.json() == {"repositories": []}
    names = ["zeta", "alpha", "alpha/beta", "alpha/beta/gamma", "m-1", "m.2", "m_3", "b"]
    for index, name in enumerate(names):
        reg.push_image(name, "v1", seed=index, layers=0)
    response = reg.http.get(f"{reg.url}/v2/_catalog")
    assert response.json() == {"repositories": sorted(names)}
    assert "Link" not in response.headers
    paged = reg.http.get(f"{reg.url}/v2/_catalog", params={"n": 3})
    assert paged.json()["repositories"] == sorted(names)[:3]
    link = next_link(paged)
    assert link is not None and urlparse(link).path == "/v2/_catalog"
    pages = walk(reg, f"{reg.url}/v2/_catalog?n=3", "repositories")
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [name for page in pages for name in page] == sorted(names)
    after = reg.http.get(f"{reg.url}/v2/_catalog", params={"last": "alpha/beta/gamma", "n": "2"})
    assert after.json()["repositories"] == sorted(names)[3:5]
    none = reg.http.get(f"{reg.url}/v2/_catalog", params={"n": 0})
    assert none.json()["repositories"] == []
    assert "Link" not in none.headers


def test_failed_pushes_leave_no_repository_behind(reg: Registry, repo: str) -> None:
    # A monolithic upload whose digest does not match.
    bad = reg.http.post(
        reg.v2(f"{repo}/monolithic/blobs/uploads/"),
        params={"digest": digest_of(b"other")},
        data=b"some bytes",
    )
    assert_error(bad, 400, "DIGEST_INVALID")
    # A manifest that is not JSON, and one whose blobs are missing.
    assert_error(reg.put_manifest(f"{repo}/invalid", "v1", b"{nope"), 400, "MANIFEST_INVALID")
    missing = image_manifest(descriptor(OCI_EMPTY, EMPTY_JSON), [])
    assert_error(reg.put_manifest(f"{repo}/blobs", "v1", missing), 400, "MANIFEST_BLOB_UNKNOWN")
    listed = catalog(reg)
    assert not [name for name in listed if name.startswith(repo)], listed
    for name in ("monolithic", "invalid", "blobs"):
        assert_error(reg.http.get(reg.v2(f"{repo}/{name}/tags/list")), 404, "NAME_UNKNOWN")


# Referrers


def push_artifact(
    reg: Registry,
    repo: str,
    subject: dict[str, Any],
    *,
    artifact_type: str | None = None,
    config_type: str = OCI_EMPTY,
    annotations: dict[str, str] | None = None,
    tag: str | None = None,
) -> Image:
    """An artifact manifest naming `subject`, with one small layer of its own."""
    config = EMPTY_JSON if config_type == OCI_EMPTY else random_bytes(40)
    reg.push_blob(repo, config)
    layer = random_bytes(50)
    reg.push_blob(repo, layer)
    payload = image_manifest(
        descriptor(config_type, config),
        [descriptor(artifact_type or "application/octet-stream", layer)],
        artifactType=artifact_type,
        subject=subject,
        annotations=annotations,
    )
    digest = digest_of(payload)
    created = reg.put_manifest(repo, tag or digest, payload)
    assert created.status_code == 201, created.content
    assert created.headers["OCI-Subject"] == subject["digest"]
    return Image(payload, digest, OCI_MANIFEST, {}, created)


def referrers(reg: Registry, repo: str, digest: str, **params: str) -> requests.Response:
    response = reg.http.get(reg.v2(f"{repo}/referrers/{digest}"), params=params)
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"] == OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    return response


def entries(response: requests.Response) -> dict[str, dict[str, Any]]:
    return {entry["digest"]: entry for entry in response.json()["manifests"]}


TYPE_A = "application/vnd.nhl.peanut.butter.bagel"
TYPE_B = "application/vnd.nba.strawberry.jam.croissant"
TYPE_INDEX = "application/vnd.food.stand"
KEY = "org.opencontainers.conformance.test"


def test_referrers_of_a_subject(reg: Registry, repo: str) -> None:
    """The conformance suite's scenario: referrers pushed before and after their subject."""
    subject_image_payload = None
    # The subject's digest is known before it is pushed: push it last among some referrers.
    subject = reg.push_image(f"{repo}-staging", seed=5)  # computes config and layers elsewhere
    for digest, data in subject.blobs.items():
        assert reg.push_blob(repo, data) == digest
    subject_image_payload = subject.payload
    subject_descriptor = subject.descriptor()
    a_config = push_artifact(
        reg, repo, subject_descriptor, config_type=TYPE_A, annotations={KEY: "test config a"}
    )
    a_layer = push_artifact(
        reg, repo, subject_descriptor, artifact_type=TYPE_A, annotations={KEY: "test layer a"}
    )
    index_payload = image_index(
        [
            {"mediaType": OCI_MANIFEST, "digest": a_config.digest, "size": len(a_config.payload)},
            {"mediaType": OCI_MANIFEST, "digest": a_layer.digest, "size": len(a_layer.payload)},
        ],
        artifactType=TYPE_INDEX,
        subject=subject_descriptor,
        annotations={KEY: "test index"},
    )
    created = reg.put_manifest(repo, digest_of(index_payload), index_payload, OCI_INDEX)
    assert created.status_code == 201
    assert created.headers["OCI-Subject"] == subject.digest
    # Now the subject itself, then two more referrers.
    assert reg.put_manifest(repo, "tagtest0", subject_image_payload).status_code == 201
    b_config = push_artifact(
        reg, repo, subject_descriptor, config_type=TYPE_B, annotations={KEY: "test config b"}
    )
    b_layer = push_artifact(
        reg,
        repo,
        subject_descriptor,
        artifact_type=TYPE_B,
        annotations={KEY: "test layer b"},
        tag="tagged-artifact",
    )
    expected = {
        a_config.digest: (OCI_MANIFEST, len(a_config.payload), TYPE_A, "test config a"),
        a_layer.digest: (OCI_MANIFEST, len(a_layer.payload), TYPE_A, "test layer a"),
        digest_of(index_payload): (OCI_INDEX, len(index_payload), TYPE_INDEX, "test index"),
        b_config.digest: (OCI_MANIFEST, len(b_config.payload), TYPE_B, "test config b"),
        b_layer.digest: (OCI_MANIFEST, len(b_layer.payload), TYPE_B, "test layer b"),
    }
    found = entries(referrers(reg, repo, subject.digest))
    assert set(found) == set(expected)
    for digest, (media_type, size, artifact_type, note) in expected.items():
        entry = found[digest]
        assert entry["mediaType"] == media_type
        assert entry["size"] == size
        assert entry["artifactType"] == artifact_type
        assert entry["annotations"] == {KEY: note}

    filtered = referrers(reg, repo, subject.digest, artifactType=TYPE_A)
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert set(entries(filtered)) == {a_config.digest, a_layer.digest}
    by_index_type = referrers(reg, repo, subject.digest, artifactType=TYPE_INDEX)
    assert set(entries(by_index_type)) == {digest_of(index_payload)}
    nothing = referrers(reg, repo, subject.digest, artifactType="application/vnd.none")
    assert nothing.headers["OCI-Filters-Applied"] == "artifactType"
    assert nothing.json()["manifests"] == []


def test_referrers_of_a_subject_that_was_never_pushed(reg: Registry, repo: str) -> None:
    subject: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(b"missing content"),
        "size": 123,
    }
    artifact = push_artifact(reg, repo, subject, artifact_type=TYPE_B)
    found = entries(referrers(reg, repo, subject["digest"]))
    assert set(found) == {artifact.digest}
    assert found[artifact.digest]["artifactType"] == TYPE_B


def test_referrers_without_any(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "v1")
    response = referrers(reg, repo, image.digest)
    assert response.json()["manifests"] == []
    assert "OCI-Filters-Applied" not in response.headers
    assert referrers(reg, repo, digest_of(b"hello world")).json()["manifests"] == []


def test_referrers_in_an_unknown_repository(reg: Registry) -> None:
    # The conformance suite asks before it has pushed anything, and wants an empty index.
    name = f"never/pushed/{uuid.uuid4().hex[:8]}"
    assert referrers(reg, name, digest_of(b"x")).json()["manifests"] == []


def test_referrers_with_an_invalid_digest(reg: Registry, repo: str) -> None:
    reg.push_image(repo, "v1")
    for bad in ("sha256:totallywrong", "latest", "md5:" + "0" * 32):
        assert_error(reg.http.get(reg.v2(f"{repo}/referrers/{bad}")), 400, "DIGEST_INVALID")


def test_plain_image_with_subject_reports_its_config_type(reg: Registry, repo: str) -> None:
    subject = reg.push_image(repo, "base")
    image = reg.push_image(repo, seed=8, subject=subject.descriptor())
    assert image.response.headers["OCI-Subject"] == subject.digest
    entry = entries(referrers(reg, repo, subject.digest))[image.digest]
    assert entry["artifactType"] == "application/vnd.oci.image.config.v1+json"
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["size"] == len(image.payload)


def test_index_without_artifact_type_has_none_in_referrers(reg: Registry, repo: str) -> None:
    subject = reg.push_image(repo, "base")
    child = reg.push_image(repo, seed=9)
    payload = image_index([child.descriptor()], subject=subject.descriptor())
    assert reg.put_manifest(repo, digest_of(payload), payload, OCI_INDEX).status_code == 201
    entry = entries(referrers(reg, repo, subject.digest))[digest_of(payload)]
    assert entry["mediaType"] == OCI_INDEX
    assert "artifactType" not in entry or entry["artifactType"] in ("", None)


def test_deleted_referrer_is_no_longer_listed(reg: Registry, repo: str) -> None:
    subject = reg.push_image(repo, "base")
    keep = push_artifact(reg, repo, subject.descriptor(), artifact_type=TYPE_A)
    gone = push_artifact(reg, repo, subject.descriptor(), artifact_type=TYPE_B)
    assert reg.http.delete(reg.v2(f"{repo}/manifests/{gone.digest}")).status_code == 202
    assert set(entries(referrers(reg, repo, subject.digest))) == {keep.digest}


def test_referrers_are_per_repository(reg: Registry, repo: str) -> None:
    subject = reg.push_image(repo, "base")
    artifact = push_artifact(reg, repo, subject.descriptor(), artifact_type=TYPE_A)
    other = f"{repo}-other"
    for data in subject.blobs.values():
        reg.push_blob(other, data)
    assert reg.put_manifest(other, "base", subject.payload).status_code == 201
    assert referrers(reg, other, subject.digest).json()["manifests"] == []
    assert set(entries(referrers(reg, repo, subject.digest))) == {artifact.digest}


def test_referrers_of_a_sha512_subject(reg: Registry, repo: str) -> None:
    subject = reg.push_image(repo, algorithm="sha512")
    artifact = push_artifact(reg, repo, subject.descriptor(), artifact_type=TYPE_A)
    assert set(entries(referrers(reg, repo, subject.digest))) == {artifact.digest}
