"""Wharf with its blobs in S3 (a real moto server): presigned redirects, streamed reads, HEAD
from the database, multipart uploads across requests and processes, and nothing left behind in
the bucket by finished, cancelled or expired uploads."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from tests.support.cluster import Cluster, bearer, registry_session
from tests.support.oci import (
    OCTET,
    Registry,
    absolute,
    assert_error,
    digest_of,
    push_blob_slowly,
    random_bytes,
    with_query,
)
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import WharfProcess, running_wharf, wait_until

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(moto: MotoServer) -> str:
    return moto.new_bucket()


@pytest.fixture(scope="module")
def on_s3(
    moto: MotoServer, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WharfProcess, WharfProcess]]:
    """Two Wharf processes sharing one database and one bucket (5 MiB parts), redirects on."""
    data = tmp_path_factory.mktemp("s3pair") / "data"
    args = s3_args(moto, bucket, "--s3-chunk-size", "5")
    with running_wharf(data, *args) as first, running_wharf(data, *args) as second:
        yield first, second


def on(server: WharfProcess, url: str) -> str:
    parsed = urlparse(url)
    return f"{server.url}{parsed.path}" + (f"?{parsed.query}" if parsed.query else "")


def upload_keys(moto: MotoServer, bucket: str) -> list[str]:
    return moto.keys(bucket, "uploads/")


def blob_key(digest: str) -> str:
    algorithm, encoded = digest.split(":")
    return f"blobs/{algorithm}/{encoded[:2]}/{encoded}"


# Reads


def test_a_blob_get_redirects_to_a_presigned_url(
    on_s3: tuple[WharfProcess, WharfProcess], moto: MotoServer, repo: str
) -> None:
    reg = Registry(on_s3[0].url)
    data = random_bytes(300_000, seed=1)
    digest = reg.push_blob(repo, data)
    answer = reg.blob(repo, digest, allow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["Docker-Content-Digest"] == digest
    location = answer.headers["Location"]
    assert location.startswith(f"{moto.url}/")
    assert "X-Amz-Expires=1200" in location  # 20 minutes
    assert requests.get(location, timeout=10).content == data
    # A client follows it with its Range: S3 answers the range.
    ranged = reg.blob(repo, digest, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.content == data[100:200]


def test_head_answers_from_the_database(
    on_s3: tuple[WharfProcess, WharfProcess], repo: str
) -> None:
    reg = Registry(on_s3[0].url)
    data = random_bytes(5000, seed=2)
    digest = reg.push_blob(repo, data)
    head = reg.head_blob(repo, digest)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    assert_error(reg.head_blob(repo, digest_of(b"missing")), 404, "BLOB_UNKNOWN")


def test_head_needs_no_s3_round_trip(tmp_path: Path, moto: MotoServer) -> None:
    """With S3 gone away (the process stopped, not answering), HEAD of a known blob still
    answers from the database."""
    bucket = moto.new_bucket()
    with running_wharf(tmp_path / "data", *s3_args(moto, bucket)) as server:
        reg = Registry(server.url)
        data = random_bytes(2000, seed=3)
        digest = reg.push_blob("frozen/repo", data)
        assert moto.process is not None
        os.kill(moto.process.pid, signal.SIGSTOP)
        try:
            head = reg.http.head(reg.v2(f"frozen/repo/blobs/{digest}"), timeout=5)
        finally:
            os.kill(moto.process.pid, signal.SIGCONT)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))


def test_manifests_are_served_by_the_registry(
    on_s3: tuple[WharfProcess, WharfProcess], repo: str
) -> None:
    reg = Registry(on_s3[0].url)
    image = reg.push_image(repo, "v1")
    answer = reg.http.get(reg.v2(f"{repo}/manifests/v1"), allow_redirects=False)
    assert answer.status_code == 200
    assert answer.content == image.payload


def test_disabled_redirects_stream_blobs_and_ranges(tmp_path: Path, moto: MotoServer) -> None:
    bucket = moto.new_bucket()
    args = s3_args(moto, bucket, "--s3-disable-redirect")
    with running_wharf(tmp_path / "data", *args) as server:
        reg = Registry(server.url)
        data = random_bytes(6 * MiB + 3, seed=4)
        digest = reg.push_blob("streamed/repo", data)
        whole = reg.blob("streamed/repo", digest, allow_redirects=False)
        assert whole.status_code == 200
        assert whole.content == data
        ranged = reg.blob(
            "streamed/repo", digest, headers={"Range": "bytes=5000000-"}, allow_redirects=False
        )
        assert ranged.status_code == 206
        assert ranged.headers["Content-Range"] == f"bytes 5000000-{len(data) - 1}/{len(data)}"
        assert ranged.content == data[5_000_000:]


# Uploads


def test_chunks_of_one_mebibyte_alternate_between_processes(
    on_s3: tuple[WharfProcess, WharfProcess], moto: MotoServer, bucket: str, repo: str
) -> None:
    """1 MiB chunks against 5 MiB parts, each request to the other process (which has no hash
    of the bytes so far), and a last chunk of a few bytes."""
    data = random_bytes(12 * MiB, seed=5) + b"last"
    chunks = [data[i : i + MiB] for i in range(0, 12 * MiB, MiB)] + [b"last"]
    servers = [Registry(process.url) for process in on_s3]
    url = absolute(servers[0].url, servers[0].start_upload(repo))
    offset = 0
    for index, chunk in enumerate(chunks):
        process = on_s3[(index + 1) % 2]
        end = offset + len(chunk) - 1
        answer = requests.patch(
            on(process, url),
            data=chunk,
            headers={"Content-Range": f"{offset}-{end}", "Content-Type": OCTET},
        )
        assert answer.status_code == 202, answer.content
        assert answer.headers["Range"] == f"0-{end}"
        url = absolute(process.url, answer)
        offset += len(chunk)
    digest = digest_of(data)
    created = requests.put(with_query(on(on_s3[0], url), digest=digest))
    assert created.status_code == 201, created.content
    for server in servers:
        assert server.blob(repo, digest).content == data
    assert blob_key(digest) in moto.keys(bucket, "blobs/")
    upload_id = urlparse(url).path.rsplit("/", 1)[1]
    assert not moto.keys(bucket, f"uploads/{upload_id}/")
    assert not [u for u in moto.multipart_uploads(bucket) if upload_id in u["Key"]]


def test_a_monolithic_push_moves_nothing_through_uploads(
    on_s3: tuple[WharfProcess, WharfProcess], moto: MotoServer, bucket: str, repo: str
) -> None:
    data = random_bytes(11 * MiB + 1, seed=6)
    digest = digest_of(data)
    answer = requests.post(
        f"{on_s3[1].url}/v2/{repo}/blobs/uploads/?digest={digest}",
        data=data,
        headers={"Content-Type": OCTET},
    )
    assert answer.status_code == 201, answer.content
    assert Registry(on_s3[0].url).blob(repo, digest).content == data
    wrong = requests.post(
        f"{on_s3[1].url}/v2/{repo}/blobs/uploads/?digest={digest_of(b'other')}", data=data
    )
    assert_error(wrong, 400, "DIGEST_INVALID")
    assert blob_key(digest_of(b"other")) not in moto.keys(bucket, "blobs/")


def test_a_cancelled_upload_is_aborted_in_the_bucket(
    on_s3: tuple[WharfProcess, WharfProcess], moto: MotoServer, bucket: str, repo: str
) -> None:
    reg = Registry(on_s3[0].url)
    url = absolute(reg.url, reg.start_upload(repo))
    upload_id = urlparse(url).path.rsplit("/", 1)[1]
    answer = reg.http.patch(url, data=random_bytes(6 * MiB, seed=7))
    assert answer.status_code == 202
    # A part was sent (a multipart upload exists) and the rest is a tail object.
    assert [u for u in moto.multipart_uploads(bucket) if upload_id in u["Key"]]
    assert moto.keys(bucket, f"uploads/{upload_id}/")
    assert requests.delete(on(on_s3[1], absolute(reg.url, answer))).status_code == 204
    assert not [u for u in moto.multipart_uploads(bucket) if upload_id in u["Key"]]
    assert not moto.keys(bucket, f"uploads/{upload_id}/")


def test_expired_uploads_are_aborted(tmp_path: Path, moto: MotoServer) -> None:
    bucket = moto.new_bucket()
    args = s3_args(moto, bucket, "--s3-chunk-size", "5", "--upload-timeout", "1")
    with running_wharf(tmp_path / "data", *args) as server:
        reg = Registry(server.url)
        url = absolute(reg.url, reg.start_upload("expiring/repo"))
        assert reg.http.patch(url, data=random_bytes(7 * MiB, seed=8)).status_code == 202
        assert moto.multipart_uploads(bucket)
        wait_until(lambda: reg.http.get(url).status_code == 404, timeout=15)
        wait_until(
            lambda: not moto.multipart_uploads(bucket) and not upload_keys(moto, bucket),
            timeout=15,
        )
        # The registry works on as ever.
        digest = reg.push_blob("expiring/repo", b"fresh")
        assert reg.blob("expiring/repo", digest).content == b"fresh"


def test_a_whole_blob_written_slowly_outlives_the_sweeps(tmp_path: Path, moto: MotoServer) -> None:
    """A blob PUT whole has no session while it is written; moto reports every multipart
    upload as started in 2010, so only the registry's own view keeps the sweep off it."""
    bucket = moto.new_bucket()
    args = s3_args(moto, bucket, "--s3-chunk-size", "5", "--upload-timeout", "1")
    with running_wharf(tmp_path / "data", *args) as server:
        reg = Registry(server.url)
        data = random_bytes(12 * MiB, seed=12)
        # Paused for four sweeps (one each half second) with a part of it in S3.
        answer = push_blob_slowly(reg, "slow/repo", data, pause=2.0)
        assert answer.status_code == 201, answer.text
        assert reg.blob("slow/repo", digest_of(data)).content == data
        # Nothing of it is left behind once the sweep comes by.
        wait_until(lambda: not moto.multipart_uploads(bucket) and not upload_keys(moto, bucket))


def test_a_finished_push_leaves_only_content_addressed_objects(
    tmp_path: Path, moto: MotoServer
) -> None:
    bucket = moto.new_bucket()
    with running_wharf(tmp_path / "data", *s3_args(moto, bucket, "--s3-root-directory", "r")) as s:
        reg = Registry(s.url)
        image = reg.push_image("tidy/repo", "v1", layers=2)
    assert sorted(moto.keys(bucket)) == sorted(f"r/{blob_key(d)}" for d in image.blobs)
    assert not moto.multipart_uploads(bucket)


def test_the_integrated_registry_on_s3(tmp_path: Path, moto: MotoServer) -> None:
    """As users run it (TLS, logins, RBAC, image streams): a push records its Image, whose
    metadata comes from the config blob Wharf reads back from S3, and a pull is redirected."""
    bucket = moto.new_bucket()
    with running_wharf(tmp_path / "data", *s3_args(moto, bucket), integrated=True) as server:
        cluster = Cluster(server, tmp_path)
        alice = cluster.user("alice")
        project = cluster.new_project(alice.api)
        with registry_session(server, bearer(alice.token)) as session:
            reg = Registry(server.url, session)
            image = reg.push_image(f"{project}/app", "v1", layers=2)
            for digest, data in image.blobs.items():
                answer = reg.blob(f"{project}/app", digest, allow_redirects=False)
                assert answer.status_code == 307
                assert requests.get(answer.headers["Location"], timeout=10).content == data
        found = cluster.admin.get(f"/apis/image.openshift.io/v1/images/{image.digest}")
        assert found.status_code == 200, found.text
        assert found.json()["dockerImageMetadata"]["Architecture"] == "amd64"
    assert {blob_key(digest) for digest in image.blobs} == set(moto.keys(bucket))
