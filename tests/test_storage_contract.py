"""The storage contract: what every backend does, one suite run unchanged against each (the
filesystem, and S3 on a real moto server). The registry relies on nothing else."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.support.oci import digest_of, random_bytes
from tests.support.s3 import MotoServer
from wharf.settings import S3Settings
from wharf.storage.base import BlobStore, PartialWrite
from wharf.storage.filesystem import FilesystemBlobStore
from wharf.storage.s3 import S3BlobStore

T = TypeVar("T")
MiB = 1024 * 1024
Scenario = Callable[[BlobStore], Awaitable[T]]
StoreFactory = Callable[..., BlobStore]
FAR_FUTURE = datetime(2999, 1, 1)


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A function that makes the backend under test (called inside the test's event loop);
    S3 options are keyword arguments of S3Settings, and a filesystem store ignores them."""
    if request.param == "filesystem":
        return lambda **_options: FilesystemBlobStore(tmp_path)
    moto: MotoServer = request.getfixturevalue("moto")
    bucket = moto.new_bucket()

    def s3(**options: Any) -> BlobStore:
        settings = {"bucket": bucket, "region_endpoint": moto.url, "chunk_size_mib": 5}
        return S3BlobStore(S3Settings(**{**settings, **options}))

    return s3


def run(make_store: StoreFactory, scenario: Scenario[T], **options: Any) -> T:
    async def main() -> T:
        store = make_store(**options)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def body(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def upload(
    store: BlobStore, upload_id: str, requests_: list[list[bytes]]
) -> tuple[str, int, Any]:
    """Append each request's pieces in turn, as consecutive requests of one upload, keeping
    the hash as the registry does; return the state, size and hasher."""
    state = await store.begin(upload_id)
    hasher = hashlib.sha256()
    size = 0
    for request_pieces in requests_:
        written = await store.append(upload_id, state, size, body(request_pieces), hasher)
        size, state = size + written.size, written.state
    return state, size, hasher


async def whole(store: BlobStore, digest: str, offset: int, count: int) -> bytes | None:
    content = await store.open(digest, offset, count)
    if content is None:
        return None
    try:
        return b"".join([chunk async for chunk in content.chunks()])
    finally:
        await content.close()


# Reading what is not there


def test_a_missing_blob_is_none_everywhere(make_store: StoreFactory) -> None:
    digest = digest_of(b"never stored")

    async def scenario(store: BlobStore) -> None:
        assert await store.stat(digest) is None
        assert await store.read(digest, 1000) is None
        assert await store.open(digest, 0, 10) is None
        assert await store.delete(digest) is False
        assert await store.ready() is True

    run(make_store, scenario)


# Uploads


@pytest.mark.parametrize(
    "chunking",
    [
        pytest.param([], id="no append at all"),
        pytest.param([[b""]], id="empty"),
        pytest.param([[b"abc"]], id="a few bytes"),
        pytest.param([pieces(random_bytes(1 * MiB + 17, seed=1), 65536)], id="one request"),
        # Requests of 1 MiB against 5 MiB parts, and a last request of a few bytes: parts
        # under the minimum must be merged.
        pytest.param(
            [pieces(part, 300_000) for part in pieces(random_bytes(12 * MiB, seed=2), MiB)]
            + [[b"tail"]],
            id="1 MiB requests then 4 bytes",
        ),
        # One request of several parts, arriving in pieces that straddle the part boundary.
        pytest.param([pieces(random_bytes(11 * MiB + 5, seed=3), 777_777)], id="many parts"),
    ],
)
def test_an_upload_commits_to_its_digest(
    make_store: StoreFactory, chunking: list[list[bytes]]
) -> None:
    data = b"".join(b"".join(request) for request in chunking)
    digest = digest_of(data)

    async def scenario(store: BlobStore) -> None:
        state, size, hasher = await upload(store, "0f4b0d4e-0000-4000-8000-000000000001", chunking)
        assert size == len(data)
        assert f"sha256:{hasher.hexdigest()}" == digest
        await store.commit("0f4b0d4e-0000-4000-8000-000000000001", state, size, digest)
        assert await store.stat(digest) == len(data)
        assert await store.read(digest, len(data)) == data
        if data:
            assert await store.read(digest, len(data) - 1) is None  # larger than the limit
            assert await whole(store, digest, 0, len(data)) == data
            middle = len(data) // 3
            assert await whole(store, digest, middle, len(data) - middle) == data[middle:]
        assert "0f4b0d4e-0000-4000-8000-000000000001" not in await store.leftovers(FAR_FUTURE)

    run(make_store, scenario)


def test_resume_rebuilds_the_hash_and_the_upload_continues(make_store: StoreFactory) -> None:
    """Another process (no hash in memory) continues an upload: the hash is rebuilt from the
    stored bytes, and more bytes go on after them."""
    first, second = random_bytes(11 * MiB + 3, seed=4), random_bytes(2 * MiB + 9, seed=5)
    upload_id = "0f4b0d4e-0000-4000-8000-000000000002"

    async def scenario(store: BlobStore) -> None:
        state, size, _ = await upload(store, upload_id, [pieces(first, MiB)])
        rebuilt = hashlib.sha256()
        state = await store.resume(upload_id, state, size, rebuilt)
        assert rebuilt.hexdigest() == hashlib.sha256(first).hexdigest()
        written = await store.append(upload_id, state, size, body(pieces(second, MiB)), rebuilt)
        assert written.size == len(second)
        digest = digest_of(first + second)
        assert f"sha256:{rebuilt.hexdigest()}" == digest
        await store.commit(upload_id, written.state, size + written.size, digest)
        assert await store.read(digest, 20 * MiB) == first + second

    run(make_store, scenario)


def test_an_unrecorded_append_is_ignored(make_store: StoreFactory) -> None:
    """An append the registry did not record (refused, or its process died) leaves bytes
    that belong to nobody: the next append from the recorded state overwrites them, and the
    commit holds only recorded bytes."""
    recorded, dropped, later = b"r" * (6 * MiB), b"d" * (7 * MiB), b"l" * 1000
    upload_id = "0f4b0d4e-0000-4000-8000-000000000003"

    async def scenario(store: BlobStore) -> None:
        state, size, _ = await upload(store, upload_id, [[recorded]])
        await store.append(upload_id, state, size, body([dropped]), hashlib.sha256())
        written = await store.append(upload_id, state, size, body([later]), hashlib.sha256())
        digest = digest_of(recorded + later)
        await store.commit(upload_id, written.state, size + written.size, digest)
        assert await store.read(digest, 20 * MiB) == recorded + later

    run(make_store, scenario)


def test_a_broken_body_keeps_what_arrived(make_store: StoreFactory) -> None:
    arrived = [random_bytes(2 * MiB, seed=6), random_bytes(4 * MiB, seed=7)]
    upload_id = "0f4b0d4e-0000-4000-8000-000000000004"

    async def breaking() -> AsyncIterator[bytes]:
        for piece in arrived:
            yield piece
        raise ConnectionResetError("Connection lost")

    async def scenario(store: BlobStore) -> None:
        state = await store.begin(upload_id)
        hasher = hashlib.sha256()
        with pytest.raises(PartialWrite) as broke:
            await store.append(upload_id, state, 0, breaking(), hasher)
        kept = b"".join(arrived)
        assert broke.value.written == len(kept)
        assert hasher.hexdigest() == hashlib.sha256(kept).hexdigest()
        rebuilt = hashlib.sha256()
        state = await store.resume(upload_id, broke.value.state, len(kept), rebuilt)
        assert rebuilt.hexdigest() == hasher.hexdigest()
        await store.commit(upload_id, state, len(kept), digest_of(kept))
        assert await store.read(digest_of(kept), 10 * MiB) == kept

    run(make_store, scenario)


def test_abort_leaves_nothing_behind(make_store: StoreFactory) -> None:
    ids = [f"0f4b0d4e-0000-4000-8000-00000000001{n}" for n in range(3)]

    async def scenario(store: BlobStore) -> None:
        known, _, _ = await upload(store, ids[0], [[random_bytes(7 * MiB, seed=8)], [b"x"]])
        await store.abort(ids[0], known)
        # Without its state (the row is gone): the backend finds the upload's bytes itself.
        await upload(store, ids[1], [[random_bytes(6 * MiB, seed=9)]])
        await store.abort(ids[1], None)
        await store.abort(ids[2], None)  # never begun: nothing to do, no error
        assert not set(ids) & set(await store.leftovers(FAR_FUTURE))

    run(make_store, scenario)


def test_leftovers_are_the_uploads_idle_since(make_store: StoreFactory) -> None:
    upload_id = "0f4b0d4e-0000-4000-8000-000000000020"

    async def scenario(store: BlobStore) -> None:
        state, _, _ = await upload(store, upload_id, [[random_bytes(6 * MiB, seed=10)]])
        assert upload_id in await store.leftovers(FAR_FUTURE)
        assert upload_id not in await store.leftovers(datetime(2000, 1, 1))
        await store.abort(upload_id, state)

    run(make_store, scenario)


def test_the_same_blob_committed_twice_is_one_blob(make_store: StoreFactory) -> None:
    data = random_bytes(300_000, seed=11)
    digest = digest_of(data)

    async def scenario(store: BlobStore) -> None:
        for n in range(2):
            upload_id = f"0f4b0d4e-0000-4000-8000-00000000003{n}"
            state, size, _ = await upload(store, upload_id, [[data]])
            await store.commit(upload_id, state, size, digest)
        assert await store.stat(digest) == len(data)
        assert await store.delete(digest) is True
        assert await store.stat(digest) is None

    run(make_store, scenario)


# Redirects


def test_redirect_url_serves_the_blob_or_is_none(make_store: StoreFactory) -> None:
    data = random_bytes(100_000, seed=12)
    digest = digest_of(data)
    upload_id = "0f4b0d4e-0000-4000-8000-000000000040"

    async def scenario(store: BlobStore) -> tuple[bool, str | None]:
        state, size, _ = await upload(store, upload_id, [[data]])
        await store.commit(upload_id, state, size, digest)
        return isinstance(store, FilesystemBlobStore), await store.redirect_url(digest)

    local, url = run(make_store, scenario)
    if local:
        assert url is None  # sendfile serves local blobs
        return
    assert url is not None
    assert requests.get(url, timeout=10).content == data
    ranged = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert "X-Amz-Expires=1200" in url  # 20 minutes


def test_disabled_redirects_give_no_url(make_store: StoreFactory) -> None:
    async def scenario(store: BlobStore) -> str | None:
        return await store.redirect_url(digest_of(b"anything"))

    assert run(make_store, scenario, disable_redirect=True) is None


def test_old_leftovers_are_found_only_once_idle(make_store: StoreFactory) -> None:
    """A leftover is reported only when idle for the sweeper's whole timeout."""
    upload_id = "0f4b0d4e-0000-4000-8000-000000000050"

    async def scenario(store: BlobStore) -> None:
        state, _, _ = await upload(store, upload_id, [[b"abc"]])
        recently = datetime.utcnow() - timedelta(hours=1)
        assert upload_id not in await store.leftovers(recently)
        await store.abort(upload_id, state)

    run(make_store, scenario)
