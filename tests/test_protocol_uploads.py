"""OCI Distribution 1.1: blob uploads, monolithic, streamed, chunked, mounted and cancelled.

Every step follows the Location of the step before it exactly as the registry gave it.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlparse

import pytest
import requests

from tests.support.oci import (
    OCTET,
    Registry,
    absolute,
    assert_error,
    chunks_of,
    digest_of,
    finish,
    patch,
    random_bytes,
    upload_in_mode,
    with_query,
)


def assert_blob_served(reg: Registry, created: requests.Response, data: bytes) -> None:
    """A 201 names the blob in Location and Docker-Content-Digest, and both serve `data`."""
    assert created.status_code == 201, (created.status_code, created.content)
    digest = digest_of(data, created.headers["Docker-Content-Digest"].split(":")[0])
    assert created.headers["Docker-Content-Digest"] == digest
    response = reg.http.get(absolute(reg.url, created))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest


# Sessions


def test_post_opens_a_session(reg: Registry, repo: str) -> None:
    response = reg.http.post(reg.v2(f"{repo}/blobs/uploads/"))
    assert response.status_code == 202
    location = absolute(reg.url, response)
    assert urlparse(location).path.startswith(f"/v2/{repo}/blobs/uploads/")
    assert urlparse(location).netloc == urlparse(reg.url).netloc
    assert response.headers["Range"] == "0-0"
    assert response.headers.get("Content-Length", "0") == "0"


def test_each_post_opens_a_new_session(reg: Registry, repo: str) -> None:
    first = absolute(reg.url, reg.start_upload(repo))
    second = absolute(reg.url, reg.start_upload(repo))
    assert first != second


def test_get_on_a_session_reports_progress(reg: Registry, repo: str) -> None:
    url = absolute(reg.url, reg.start_upload(repo))
    status = reg.http.get(url)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"
    assert status.content == b""
    url = absolute(reg.url, status)
    accepted = patch(reg, url, b"x" * 100, start=0)
    assert accepted.status_code == 202
    status = reg.http.get(absolute(reg.url, accepted))
    assert status.status_code == 204
    assert status.headers["Range"] == "0-99"
    assert urlparse(absolute(reg.url, status)).path.startswith(f"/v2/{repo}/blobs/uploads/")


# Monolithic


def test_post_with_digest_uploads_the_whole_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(3000, seed=10)
    digest = digest_of(data)
    response = reg.http.post(
        with_query(reg.v2(f"{repo}/blobs/uploads/"), digest=digest),
        data=data,
        headers={"Content-Type": OCTET},
    )
    assert_blob_served(reg, response, data)
    assert urlparse(absolute(reg.url, response)).path == f"/v2/{repo}/blobs/{digest}"


def test_post_then_put_with_the_whole_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(3000, seed=11)
    url = absolute(reg.url, reg.start_upload(repo))
    assert_blob_served(reg, finish(reg, url, digest_of(data), data), data)


def test_session_is_gone_after_the_put(reg: Registry, repo: str) -> None:
    data = random_bytes(100, seed=12)
    url = absolute(reg.url, reg.start_upload(repo))
    assert finish(reg, url, digest_of(data), data).status_code == 201
    assert_error(reg.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(finish(reg, url, digest_of(data), data), 404, "BLOB_UPLOAD_UNKNOWN")


def test_pushing_a_blob_twice_succeeds_both_times(reg: Registry, repo: str) -> None:
    data = random_bytes(500, seed=13)
    first = reg.push_blob(repo, data)
    second = reg.push_blob(repo, data)
    assert first == second
    assert reg.blob(repo, first).content == data


# Streamed


def test_streamed_patch_then_put_without_body(reg: Registry, repo: str) -> None:
    data = random_bytes(5000, seed=14)
    url = absolute(reg.url, reg.start_upload(repo))
    accepted = patch(reg, url, data)
    assert accepted.status_code == 202
    assert accepted.headers["Range"] == f"0-{len(data) - 1}"
    url = absolute(reg.url, accepted)
    created = reg.http.put(
        with_query(url, digest=digest_of(data)),
        headers={"Content-Length": "0", "Content-Type": OCTET},
    )
    assert_blob_served(reg, created, data)


def test_several_streamed_patches_append(reg: Registry, repo: str) -> None:
    parts = [random_bytes(700, seed=15 + i) for i in range(3)]
    url = absolute(reg.url, reg.start_upload(repo))
    total = 0
    for part in parts:
        accepted = patch(reg, url, part)
        total += len(part)
        assert accepted.status_code == 202
        assert accepted.headers["Range"] == f"0-{total - 1}"
        url = absolute(reg.url, accepted)
    data = b"".join(parts)
    assert_blob_served(reg, finish(reg, url, digest_of(data)), data)


def test_streamed_patch_of_a_large_blob(reg: Registry, repo: str) -> None:
    # Larger than the store's write batches (4 MiB) and its writeback step (8 MiB).
    data = random_bytes(9 * 1024 * 1024 + 17, seed=18)
    url = absolute(reg.url, reg.start_upload(repo))
    accepted = patch(reg, url, data)
    assert accepted.status_code == 202
    assert_blob_served(reg, finish(reg, absolute(reg.url, accepted), digest_of(data)), data)


# Chunked


def test_chunked_upload_then_put_without_body(reg: Registry, repo: str) -> None:
    data = random_bytes(3 * 1024 - 5, seed=19)
    url = absolute(reg.url, reg.start_upload(repo))
    for start, chunk in chunks_of(data, 3):
        accepted = patch(reg, url, chunk, start=start)
        assert accepted.status_code == 202, accepted.content
        assert accepted.headers["Range"] == f"0-{start + len(chunk) - 1}"
        url = absolute(reg.url, accepted)
    assert_blob_served(reg, finish(reg, url, digest_of(data)), data)


def test_chunked_upload_with_the_last_chunk_in_the_put(reg: Registry, repo: str) -> None:
    data = random_bytes(3 * 1024 - 5, seed=20)
    pieces = chunks_of(data, 3)
    url = absolute(reg.url, reg.start_upload(repo))
    for start, chunk in pieces[:-1]:
        accepted = patch(reg, url, chunk, start=start)
        assert accepted.status_code == 202
        url = absolute(reg.url, accepted)
    start, chunk = pieces[-1]
    created = finish(
        reg, url, digest_of(data), chunk, **{"Content-Range": f"{start}-{start + len(chunk) - 1}"}
    )
    assert_blob_served(reg, created, data)


def test_out_of_order_first_chunk_is_416_and_the_session_survives(reg: Registry, repo: str) -> None:
    data = random_bytes(2048, seed=21)
    url = absolute(reg.url, reg.start_upload(repo))
    rejected = patch(reg, url, data[1024:], start=1024)
    assert rejected.status_code == 416
    assert rejected.headers["Range"] == "0-0"
    status = reg.http.get(url)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-0"
    url = absolute(reg.url, status)
    for start, chunk in ((0, data[:1024]), (1024, data[1024:])):
        accepted = patch(reg, url, chunk, start=start)
        assert accepted.status_code == 202
        url = absolute(reg.url, accepted)
    assert_blob_served(reg, finish(reg, url, digest_of(data)), data)


def test_retrying_an_accepted_chunk_is_416(reg: Registry, repo: str) -> None:
    data = random_bytes(43, seed=22)
    first, second = data[:22], data[22:]
    session = absolute(reg.url, reg.start_upload(repo))
    accepted = patch(reg, session, first, start=0)
    assert accepted.status_code == 202
    assert accepted.headers["Range"] == "0-21"
    retried = patch(reg, session, first, start=0)
    assert retried.status_code == 416
    assert retried.headers["Range"] == "0-21"
    status = reg.http.get(session)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-21"
    accepted = patch(reg, absolute(reg.url, status), second, start=22)
    assert accepted.status_code == 202
    assert_blob_served(reg, finish(reg, absolute(reg.url, accepted), digest_of(data)), data)


@pytest.mark.parametrize("start", [5, 1, 0], ids=["overlap", "overlap-by-all-but-one", "restart"])
def test_overlapping_chunk_is_416_and_changes_nothing(reg: Registry, repo: str, start: int) -> None:
    data = random_bytes(20, seed=23)
    url = absolute(reg.url, reg.start_upload(repo))
    url = absolute(reg.url, patch(reg, url, data[:10], start=0))
    assert patch(reg, url, data[start:], start=start).status_code == 416
    accepted = patch(reg, url, data[10:], start=10)
    assert accepted.status_code == 202
    assert_blob_served(reg, finish(reg, absolute(reg.url, accepted), digest_of(data)), data)


def test_chunk_that_leaves_a_gap_is_416(reg: Registry, repo: str) -> None:
    data = random_bytes(30, seed=24)
    url = absolute(reg.url, reg.start_upload(repo))
    url = absolute(reg.url, patch(reg, url, data[:10], start=0))
    gap = patch(reg, url, data[11:], start=11)
    assert gap.status_code == 416
    assert gap.headers["Range"] == "0-9"
    accepted = patch(reg, url, data[10:], start=10)
    assert_blob_served(reg, finish(reg, absolute(reg.url, accepted), digest_of(data)), data)


def test_final_put_with_an_out_of_order_chunk_is_416(reg: Registry, repo: str) -> None:
    data = random_bytes(30, seed=25)
    url = absolute(reg.url, reg.start_upload(repo))
    url = absolute(reg.url, patch(reg, url, data[:10], start=0))
    rejected = finish(reg, url, digest_of(data), data[12:], **{"Content-Range": "12-29"})
    assert rejected.status_code == 416
    assert reg.head_blob(repo, digest_of(data)).status_code == 404
    created = finish(reg, url, digest_of(data), data[10:], **{"Content-Range": "10-29"})
    assert_blob_served(reg, created, data)


def test_chunks_may_mix_streamed_and_ranged(reg: Registry, repo: str) -> None:
    data = random_bytes(3000, seed=26)
    url = absolute(reg.url, reg.start_upload(repo))
    url = absolute(reg.url, patch(reg, url, data[:1000]))
    url = absolute(reg.url, patch(reg, url, data[1000:2000], start=1000))
    url = absolute(reg.url, patch(reg, url, data[2000:]))
    assert_blob_served(reg, finish(reg, url, digest_of(data)), data)


# Digest algorithms


MODES = ["post-only", "post-put", "stream", "chunked", "chunked-put-chunk"]


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("mode", MODES)
def test_every_upload_mode_with_every_algorithm(
    reg: Registry, repo: str, mode: str, algorithm: str
) -> None:
    data = random_bytes(3 * 1024 - 5, seed=hash((mode, algorithm)) & 0xFFFF)
    digest = digest_of(data, algorithm)
    created = upload_in_mode(reg, repo, mode, data, digest)
    assert_blob_served(reg, created, data)
    head = reg.head_blob(repo, digest)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))


# Cancel


def test_delete_cancels_a_session(reg: Registry, repo: str) -> None:
    data = random_bytes(100, seed=27)
    url = absolute(reg.url, reg.start_upload(repo))
    url = absolute(reg.url, patch(reg, url, data))
    cancelled = reg.http.delete(url)
    assert cancelled.status_code == 204
    assert_error(reg.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(reg, url, data), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(finish(reg, url, digest_of(data)), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(reg.http.delete(url), 404, "BLOB_UPLOAD_UNKNOWN")
    assert reg.head_blob(repo, digest_of(data)).status_code == 404


def test_session_belongs_to_its_repository(reg: Registry, repo: str) -> None:
    url = absolute(reg.url, reg.start_upload(repo))
    session = urlparse(url).path.rsplit("/", 1)[1]
    other = f"{repo}-other"
    reg.start_upload(other)
    elsewhere = reg.v2(f"{other}/blobs/uploads/{session}")
    assert_error(reg.http.get(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(patch(reg, elsewhere, b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(reg.http.delete(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")
    assert reg.http.get(url).status_code == 204


# Cross-repository mount


def mount(reg: Registry, repo: str, digest: str, source: str | None) -> requests.Response:
    params = {"mount": digest} if source is None else {"mount": digest, "from": source}
    return reg.http.post(with_query(reg.v2(f"{repo}/blobs/uploads/"), **params))


def test_mount_from_a_repository_that_has_the_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(600, seed=28)
    source = f"{repo}/source"
    digest = reg.push_blob(source, data)
    target = f"{repo}/target"
    created = mount(reg, target, digest, source)
    assert created.status_code == 201
    assert urlparse(absolute(reg.url, created)).path == f"/v2/{target}/blobs/{digest}"
    assert_blob_served(reg, created, data)
    assert reg.blob(source, digest).content == data


def test_mount_of_a_sha512_blob(reg: Registry, repo: str) -> None:
    data = random_bytes(600, seed=29)
    source = f"{repo}/source"
    digest = reg.push_blob(source, data, algorithm="sha512")
    created = mount(reg, f"{repo}/target", digest, source)
    assert_blob_served(reg, created, data)


def test_mount_of_a_blob_the_source_lacks_opens_a_session(reg: Registry, repo: str) -> None:
    source = f"{repo}/source"
    reg.push_blob(source, b"something else")
    data = random_bytes(600, seed=30)
    digest = digest_of(data)
    target = f"{repo}/target"
    fallback = mount(reg, target, digest, source)
    assert fallback.status_code == 202
    url = absolute(reg.url, fallback)
    assert urlparse(url).path.startswith(f"/v2/{target}/blobs/uploads/")
    assert reg.head_blob(target, digest).status_code == 404
    assert_blob_served(reg, finish(reg, url, digest, data), data)


@pytest.mark.parametrize(
    "source", [None, "never/pushed/anything", "Invalid_Name", "../escape"], ids=str
)
def test_mount_that_cannot_mount_opens_a_fresh_session(
    reg: Registry, repo: str, source: str | None
) -> None:
    data = random_bytes(600, seed=31)
    digest = reg.push_blob(f"{repo}/holder", data)  # the blob exists, just not in `source`
    target = f"{repo}/target"
    fallback = mount(reg, target, digest, source)
    assert fallback.status_code == 202
    url = absolute(reg.url, fallback)
    assert urlparse(url).path.startswith(f"/v2/{target}/blobs/uploads/")
    assert reg.head_blob(target, digest).status_code == 404
    assert reg.http.get(url).status_code == 204


def test_mount_with_a_malformed_digest_falls_back_to_a_session(reg: Registry, repo: str) -> None:
    source = f"{repo}/source"
    reg.push_blob(source, b"abc")
    fallback = mount(reg, f"{repo}/target", "sha256:not-a-digest", source)
    assert fallback.status_code == 202
    assert reg.http.get(absolute(reg.url, fallback)).status_code == 204


# Location headers


def test_every_location_is_usable_as_given(reg: Registry, repo: str) -> None:
    """Relative or absolute, each Location resolves to this registry and works."""
    data = random_bytes(2000, seed=32)
    started = reg.start_upload(repo)
    seen = [started.headers["Location"]]
    url = absolute(reg.url, started)
    accepted = patch(reg, url, data[:1000], start=0)
    seen.append(accepted.headers["Location"])
    status = reg.http.get(absolute(reg.url, accepted))
    seen.append(status.headers["Location"])
    accepted = patch(reg, absolute(reg.url, status), data[1000:], start=1000)
    seen.append(accepted.headers["Location"])
    created = finish(reg, absolute(reg.url, accepted), digest_of(data))
    seen.append(created.headers["Location"])
    assert_blob_served(reg, created, data)
    for location in seen:
        assert location.startswith(("/v2/", reg.url + "/v2/")), location
        assert not re.search(r"\s", location)


def test_session_id_is_not_guessable_from_another(reg: Registry, repo: str) -> None:
    first = urlparse(absolute(reg.url, reg.start_upload(repo))).path.rsplit("/", 1)[1]
    second = urlparse(absolute(reg.url, reg.start_upload(repo))).path.rsplit("/", 1)[1]
    assert uuid.UUID(first) != uuid.UUID(second)
