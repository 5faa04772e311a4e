"""OCI Distribution 1.1: the base endpoint and blob HEAD, GET (with Range) and DELETE."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.support.oci import (
    EMPTY_JSON,
    EMPTY_JSON_DIGEST,
    Registry,
    assert_error,
    digest_of,
    random_bytes,
)


def test_base_endpoint_answers_200_with_api_version(reg: Registry) -> None:
    response = reg.http.get(f"{reg.url}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.json() == {}


def test_error_answers_carry_the_api_version_too(reg: Registry, repo: str) -> None:
    response = reg.blob(repo, digest_of(b"nothing here"))
    assert_error(response, 404, "BLOB_UNKNOWN")
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_head_of_missing_blob_is_404_without_body(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, b"something else")  # the repository exists, the blob does not
    response = reg.head_blob(repo, digest_of(b"hello world"))
    assert response.status_code == 404
    assert response.content == b""


def test_get_of_missing_blob_is_blob_unknown(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, b"something else")
    assert_error(reg.blob(repo, digest_of(b"hello world")), 404, "BLOB_UNKNOWN")


def test_get_of_blob_in_unknown_repository_is_404(reg: Registry) -> None:
    name = f"never/pushed/{uuid.uuid4().hex[:8]}"
    response = reg.blob(name, digest_of(b"x"))
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] in {"BLOB_UNKNOWN", "NAME_UNKNOWN"}


def test_head_of_existing_blob_has_length_digest_type_and_etag(reg: Registry, repo: str) -> None:
    data = random_bytes(1500, seed=1)
    digest = reg.push_blob(repo, data)
    response = reg.head_blob(repo, digest)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert digest in response.headers["ETag"]


def test_get_of_existing_blob_returns_the_bytes(reg: Registry, repo: str) -> None:
    data = random_bytes(70_000, seed=2)
    digest = reg.push_blob(repo, data)
    response = reg.blob(repo, digest)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert digest in response.headers["ETag"]


def test_conditional_get_with_the_etag_is_not_modified(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, random_bytes(300, seed=3))
    etag = reg.blob(repo, digest).headers["ETag"]
    response = reg.blob(repo, digest, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["ETag"] == etag


def test_if_match_with_the_etag_serves_the_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(300, seed=4)
    digest = reg.push_blob(repo, data)
    etag = reg.head_blob(repo, digest).headers["ETag"]
    response = reg.blob(repo, digest, headers={"If-Match": etag})
    assert response.status_code == 200
    assert response.content == data
    stale = reg.blob(repo, digest, headers={"If-Match": '"sha256:' + "0" * 64 + '"'})
    assert stale.status_code == 412


BLOB_2048 = random_bytes(2048, seed=5)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, 2047),
        ("bytes=-500", 1548, 2047),
        ("bytes=2000-5000", 2000, 2047),  # an end past the blob is cut to the blob
        ("bytes=0-0", 0, 0),
    ],
)
def test_range_request_answers_206_with_the_slice(
    reg: Registry, repo: str, header: str, start: int, end: int
) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"Range": header})
    assert response.status_code == 206
    assert response.content == BLOB_2048[start : end + 1]
    assert response.headers["Content-Length"] == str(end - start + 1)
    assert response.headers["Content-Range"] in {
        f"bytes {start}-{end}/2048",
        f"bytes {start}-{end}/*",
    }
    assert response.headers["Docker-Content-Digest"] == digest


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("Bytes=1-1", 1, 1),  # range units are case-insensitive
        ("bytes=0-99999999999999999999999", 0, 2047),  # past int64: still just "to the end"
        ("bytes=-99999999999999999999999", 0, 2047),
        ("bytes=0000000000000000000000001-2", 1, 2),
    ],
)
def test_range_with_odd_but_valid_numbers_answers_the_slice(
    reg: Registry, repo: str, header: str, start: int, end: int
) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"Range": header})
    assert response.status_code == 206, response.content[:300]
    assert response.content == BLOB_2048[start : end + 1]
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/2048"


UNSATISFIABLE = [
    "bytes=500-0",  # last before first: an invalid range, refused rather than ignored
    "bytes=5000-10000",
    "bytes=2048-",
    "bytes=999999-",
    "bytes=-0",  # a suffix of nothing
    "bytes=99999999999999999999-",
    "bytes=" + "9" * 5000 + "-",  # longer than int() converts
]


@pytest.mark.parametrize("header", UNSATISFIABLE, ids=lambda header: header[:30])
def test_unsatisfiable_range_is_416(reg: Registry, repo: str, header: str) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"Range": header})
    assert_error(response, 416, "SIZE_INVALID")
    assert response.headers["Content-Range"] == "bytes */2048"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize(
    "header",
    [
        "items=0-1",  # another unit
        "bytes=0-1,3-4",  # several ranges: a multipart answer nobody here needs
        "bytes=0-1, 3-4",
        "bytes=x-y",
        "bytes=-",
        "bytes=",
        "bytes 0-1",
        "bytes=1-2-3",
        "bytes=0x10-",
        "bytes=+1-2",
        "=0-1",
        "bytes=\u0661-\u0662".encode().decode("unicode_escape").encode().decode("latin-1"),
    ],
    ids=lambda header: header[:20],
)
def test_range_that_is_not_one_byte_range_is_ignored(reg: Registry, repo: str, header: str) -> None:
    """RFC 9110: a server may ignore Range; an unknown unit, a set of ranges or a malformed
    one is ignored, and the whole blob served."""
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"Range": header})
    assert response.status_code == 200, response.content[:300]
    assert response.content == BLOB_2048
    assert "Content-Range" not in response.headers


def test_range_on_head_is_ignored(reg: Registry, repo: str) -> None:
    """GET is the only method RFC 9110 defines ranges for; a HEAD answers as a plain GET."""
    digest = reg.push_blob(repo, BLOB_2048)
    for header in ("bytes=0-9", "bytes=999999-"):
        response = reg.http.head(reg.v2(f"{repo}/blobs/{digest}"), headers={"Range": header})
        assert response.status_code == 200
        assert response.headers["Content-Length"] == "2048"
        assert response.content == b""


def test_if_range_applies_the_range_only_for_the_blob_s_own_etag(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    etag = reg.head_blob(repo, digest).headers["ETag"]
    assert etag == f'"{digest}"'
    same = reg.blob(repo, digest, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206
    assert same.content == BLOB_2048[:10]
    for other in ('"sha256:' + "0" * 64 + '"', f"W/{etag}", "Sat, 01 Jan 2000 00:00:00 GMT"):
        whole = reg.blob(repo, digest, headers={"Range": "bytes=0-9", "If-Range": other})
        assert whole.status_code == 200, other
        assert whole.content == BLOB_2048


def test_failed_if_match_is_412_with_the_error_body(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"If-Match": '"sha256:' + "0" * 64 + '"'})
    assert_error(response, 412, "BLOB_UNKNOWN")
    assert reg.blob(repo, digest, headers={"If-Match": "*"}).content == BLOB_2048


def test_ranges_of_an_empty_blob(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, b"")
    response = reg.blob(repo, digest, headers={"Range": "bytes=0-"})
    assert_error(response, 416, "SIZE_INVALID")
    assert response.headers["Content-Range"] == "bytes */0"
    # A suffix of an empty blob is the whole of it, which no Content-Range can name.
    whole = reg.blob(repo, digest, headers={"Range": "bytes=-5"})
    assert whole.status_code == 200
    assert whole.content == b""


def test_unknown_expectation_is_417_with_the_error_body(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, BLOB_2048)
    response = reg.blob(repo, digest, headers={"Expect": "the-unexpected"})
    assert_error(response, 417, "UNSUPPORTED")
    continued = reg.http.put(
        reg.v2(f"{repo}/manifests/v1"), data=b"{}", headers={"Expect": "100-continue"}
    )
    assert_error(continued, 400, "MANIFEST_INVALID")
    # Paths no endpoint takes, /v2 itself among them (the fuzz found it answered bare).
    for path in ("/v2", "/v2/nothing/here", f"/v2/{repo}/blobs/", "/extensions/v2/x"):
        unknown = reg.http.get(f"{reg.url}{path}", headers={"Expect": "the-unexpected"})
        assert_error(unknown, 417, "UNSUPPORTED")
    signatures = f"{reg.url}/extensions/v2/{repo}/signatures/{digest}"
    assert_error(reg.http.put(signatures, headers={"Expect": "the-unexpected"}), 417, "UNSUPPORTED")
    assert_error(reg.http.put(signatures), 405, "UNSUPPORTED")


def test_v2_without_its_slash_is_404_with_the_error_body(reg: Registry) -> None:
    assert_error(reg.http.get(f"{reg.url}/v2"), 404, "NAME_UNKNOWN")


def test_blob_is_served_only_by_repositories_it_is_linked_to(reg: Registry, repo: str) -> None:
    data = random_bytes(256, seed=6)
    digest = reg.push_blob(repo, data)
    other = f"{repo}-other"
    reg.push_blob(other, b"unrelated")
    assert_error(reg.blob(other, digest), 404, "BLOB_UNKNOWN")
    assert reg.head_blob(other, digest).status_code == 404


def test_delete_blob_then_it_is_gone(reg: Registry, repo: str) -> None:
    data = random_bytes(512, seed=7)
    digest = reg.push_blob(repo, data)
    response = reg.http.delete(reg.v2(f"{repo}/blobs/{digest}"))
    assert response.status_code == 202
    assert reg.head_blob(repo, digest).status_code == 404
    assert_error(reg.blob(repo, digest), 404, "BLOB_UNKNOWN")
    again = reg.http.delete(reg.v2(f"{repo}/blobs/{digest}"))
    assert_error(again, 404, "BLOB_UNKNOWN")


def test_delete_blob_in_one_repository_leaves_the_others(reg: Registry, repo: str) -> None:
    data = random_bytes(512, seed=8)
    digest = reg.push_blob(repo, data)
    other = f"{repo}/second"
    reg.push_blob(other, data)
    assert reg.http.delete(reg.v2(f"{repo}/blobs/{digest}")).status_code == 202
    response = reg.blob(other, digest)
    assert response.status_code == 200
    assert response.content == data


def test_delete_of_unknown_blob_is_blob_unknown(reg: Registry, repo: str) -> None:
    reg.push_blob(repo, b"present")
    assert_error(
        reg.http.delete(reg.v2(f"{repo}/blobs/{digest_of(b'absent')}")), 404, "BLOB_UNKNOWN"
    )


def test_sha512_blob_round_trip(reg: Registry, repo: str) -> None:
    data = random_bytes(4000, seed=9)
    digest = reg.push_blob(repo, data, algorithm="sha512")
    assert digest.startswith("sha512:") and len(digest) == 7 + 128
    head = reg.head_blob(repo, digest)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Length"] == str(len(data))
    response = reg.blob(repo, digest)
    assert response.content == data
    # The same bytes under their sha256 name were never pushed.
    assert reg.head_blob(repo, digest_of(data)).status_code == 404


def test_empty_blob_round_trip(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, b"")
    assert digest == digest_of(b"")
    head = reg.head_blob(repo, digest)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "0"
    response = reg.blob(repo, digest)
    assert response.status_code == 200
    assert response.content == b""


def test_empty_json_blob_has_the_well_known_digest(reg: Registry, repo: str) -> None:
    assert reg.push_blob(repo, EMPTY_JSON) == EMPTY_JSON_DIGEST
    response = reg.blob(repo, EMPTY_JSON_DIGEST)
    assert response.status_code == 200
    assert response.content == EMPTY_JSON


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_nested_repository_names(reg: Registry, depth: int) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = "/".join([f"n{i}" for i in range(depth - 1)] + [f"leaf-{suffix}"])
    data = random_bytes(100, seed=depth)
    digest = reg.push_blob(name, data)
    assert reg.blob(name, digest).content == data
    # A prefix of the name is another repository, which does not have the blob.
    if depth > 1:
        parent = name.rsplit("/", 1)[0]
        assert reg.head_blob(parent, digest).status_code == 404


# Blobs of a megabyte and more are sent from worker threads (wharf.registry.sendfile).
LARGE_BLOB = random_bytes(6 * 1024 * 1024 + 123, seed=11)


def test_large_blob_is_served_whole(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, LARGE_BLOB)
    head = reg.head_blob(repo, digest)
    assert head.headers["Content-Length"] == str(len(LARGE_BLOB))
    # On the same connection: a HEAD that sent a body would garble this answer.
    response = reg.blob(repo, digest)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(LARGE_BLOB))
    assert digest_of(response.content) == digest


@pytest.mark.parametrize(
    ("start", "end"),
    [(1, 3 * 1024 * 1024), (2 * 1024 * 1024 + 7, len(LARGE_BLOB) - 1), (0, 1024 * 1024 - 1)],
)
def test_large_blob_ranges_answer_the_slice(reg: Registry, repo: str, start: int, end: int) -> None:
    digest = reg.push_blob(repo, LARGE_BLOB)
    response = reg.blob(repo, digest, headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    assert response.content == LARGE_BLOB[start : end + 1]


def test_client_leaving_mid_download_harms_no_other(reg: Registry, repo: str) -> None:
    digest = reg.push_blob(repo, LARGE_BLOB)
    # Several clients read the start of the blob and hang up; the blob stays servable, and
    # so does everything else, whole.
    for _ in range(4):
        with requests.get(reg.v2(f"{repo}/blobs/{digest}"), stream=True, timeout=30) as partial:
            assert partial.status_code == 200
            assert len(partial.raw.read(64 * 1024)) == 64 * 1024
    response = reg.blob(repo, digest)
    assert response.status_code == 200
    assert response.content == LARGE_BLOB
    assert reg.http.get(reg.v2("")).status_code == 200
