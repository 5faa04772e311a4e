"""What only the S3 backend does, on a real moto server: copies larger than one copy request
(S3 allows 5 GiB; here the limit is lowered to 5 MiB so that the tests can cross it), and
uploads whose bytes were aborted underneath them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

import pytest

from tests.support.oci import digest_of, random_bytes
from tests.support.s3 import MotoServer
from wharf.settings import S3Settings
from wharf.storage.base import UploadGone
from wharf.storage.s3 import S3BlobStore

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


async def body(data: bytes, piece: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]


def store_on(moto: MotoServer, bucket: str) -> S3BlobStore:
    store = S3BlobStore(S3Settings(bucket=bucket, region_endpoint=moto.url, chunk_size_mib=5))
    store.copy_limit = 5 * MiB
    return store


def test_large_copies_go_in_parts(moto: MotoServer) -> None:
    """Resume re-copies the upload in parts, and the commit copies it to its key in parts:
    12 MiB in copies of at most 5 MiB, each part at least 5 MiB but the last."""
    first, second = random_bytes(12 * MiB, seed=1), random_bytes(3 * MiB + 1, seed=2)
    upload_id = "5b7e0c1a-0000-4000-8000-000000000001"
    bucket = moto.new_bucket()

    async def scenario() -> bytes | None:
        store = store_on(moto, bucket)
        try:
            state = await store.begin(upload_id)
            written = await store.append(upload_id, state, 0, body(first), hashlib.sha256())
            rebuilt = hashlib.sha256()
            state = await store.resume(upload_id, written.state, len(first), rebuilt)
            assert rebuilt.hexdigest() == hashlib.sha256(first).hexdigest()
            more = await store.append(upload_id, state, len(first), body(second), rebuilt)
            size = len(first) + len(second)
            digest = digest_of(first + second)
            await store.commit(upload_id, more.state, size, digest)
            return await store.read(digest, size)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == first + second
    assert not moto.multipart_uploads(bucket)
    assert moto.keys(bucket, "uploads/") == []


def test_a_tail_of_a_part_or_more_is_copied_as_a_part(moto: MotoServer) -> None:
    """10 MiB parts, requests of 16 MiB: each leaves a 6 MiB tail, which the next request
    copies into the upload as a part of its own (inside S3) instead of reading it back."""
    requests_ = [random_bytes(16 * MiB, seed=n) for n in range(3)]
    upload_id = "5b7e0c1a-0000-4000-8000-000000000003"
    bucket = moto.new_bucket()

    async def scenario() -> tuple[bytes | None, str]:
        store = S3BlobStore(S3Settings(bucket=bucket, region_endpoint=moto.url))
        try:
            state, size, hasher = await store.begin(upload_id), 0, hashlib.sha256()
            for data in requests_:
                written = await store.append(upload_id, state, size, body(data), hasher)
                size, state = size + written.size, written.state
            digest = digest_of(b"".join(requests_))
            assert f"sha256:{hasher.hexdigest()}" == digest
            await store.commit(upload_id, state, size, digest)
            return await store.read(digest, size), state
        finally:
            await store.close()

    stored, state = asyncio.run(scenario())
    assert stored == b"".join(requests_)
    # Parts: 10, then the 6 MiB tail and 10 from each later request; 6 MiB left as the tail.
    assert [size for _, size in json.loads(state)["parts"]] == [
        10 * MiB,
        6 * MiB,
        10 * MiB,
        6 * MiB,
        10 * MiB,
    ]
    assert json.loads(state)["tailSize"] == 6 * MiB


def test_part_memory_is_bounded_however_many_push_at_once(moto: MotoServer) -> None:
    """A lone upload fills its next part while the last one is sent (two buffers); six at once
    hold one part each, not two, and every one of them still stores the right bytes."""
    bucket = moto.new_bucket()
    datas = [random_bytes(16 * MiB + n, seed=10 + n) for n in range(6)]

    async def push(store: S3BlobStore, n: int, data: bytes) -> bytes | None:
        upload_id = f"5b7e0c1a-0000-4000-8000-0000000001{n:02d}"
        hasher = hashlib.sha256()
        state = await store.begin(upload_id)
        written = await store.append(upload_id, state, 0, body(data, 256 * 1024), hasher)
        digest = digest_of(data)
        await store.commit(upload_id, written.state, written.size, digest)
        return await store.read(digest, len(data))

    async def scenario() -> tuple[int, int, list[bytes | None]]:
        store = store_on(moto, bucket)
        try:
            await push(store, 0, datas[0])
            alone = store.buffers.peak
            stored = await asyncio.gather(*(push(store, n, d) for n, d in enumerate(datas)))
            return alone, store.buffers.peak, stored
        finally:
            await store.close()

    alone, together, stored = asyncio.run(scenario())
    assert stored == datas
    assert alone == 2
    assert together == len(datas)  # one each; the limit (4) lends none past it


def test_an_upload_aborted_underneath_is_gone(moto: MotoServer) -> None:
    """A cancel or the sweeper aborted the upload while another request held its state: the
    next append, resume or commit says the upload is gone (the registry's 404), not a 500."""
    upload_id = "5b7e0c1a-0000-4000-8000-000000000002"
    data = random_bytes(7 * MiB, seed=3)

    async def scenario() -> None:
        store = store_on(moto, moto.new_bucket())
        try:
            state = await store.begin(upload_id)
            written = await store.append(upload_id, state, 0, body(data), hashlib.sha256())
            await store.abort(upload_id, None)
            with pytest.raises(UploadGone):
                await store.resume(upload_id, written.state, len(data), hashlib.sha256())
            with pytest.raises(UploadGone):
                await store.append(
                    upload_id, written.state, len(data), body(b"more"), hashlib.sha256()
                )
            with pytest.raises(UploadGone):
                await store.commit(upload_id, written.state, len(data), digest_of(data))
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"encrypt": True}, {"ServerSideEncryption": "AES256"}),
        (
            {"encrypt": True, "key_id": "alias/wharf"},
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/wharf"},
        ),
    ],
)
def test_encryption_settings_reach_every_object(
    moto: MotoServer, options: dict[str, object], expected: dict[str, str]
) -> None:
    """SSE-S3, or SSE-KMS with a key: on the blobs, small (copied from a tail) and large
    (completed from parts, then copied)."""
    bucket = moto.new_bucket()
    blobs = [random_bytes(1000, seed=5), random_bytes(12 * MiB, seed=6)]

    async def scenario() -> None:
        settings = S3Settings(bucket=bucket, region_endpoint=moto.url, chunk_size_mib=5)
        store = S3BlobStore(settings.model_copy(update=options))
        try:
            for n, data in enumerate(blobs):
                upload_id = f"5b7e0c1a-0000-4000-8000-00000000001{n}"
                state = await store.begin(upload_id)
                written = await store.append(upload_id, state, 0, body(data), hashlib.sha256())
                await store.commit(upload_id, written.state, written.size, digest_of(data))
        finally:
            await store.close()

    asyncio.run(scenario())
    s3 = moto.client()
    for data in blobs:
        encoded = digest_of(data).removeprefix("sha256:")
        head = s3.head_object(Bucket=bucket, Key=f"blobs/sha256/{encoded[:2]}/{encoded}")
        assert {key: head.get(key) for key in expected} == expected
