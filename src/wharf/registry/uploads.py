"""Blob upload sessions: bytes through the BlobStore, progress and backend state in the database.

Each request that writes an upload first takes its lease in the database (upload_records), so
the requests of one upload may reach any process, one at a time. The running hash of an upload
is a cache of the process that received its last chunk: a process without it (another one, or
this one after a restart) rebuilds it from the stored bytes. Hash states are never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from ..images.limits import Limit
from ..oci.digest import Digest
from ..storage.base import BlobStore, PartialWrite
from .blob_limits import check_blob_size
from .collect import pin
from .errors import RegistryError
from .metadata import RegistryMetadata, utcnow
from .upload_records import LEASE, UploadRecords

log = structlog.get_logger("wharf.registry")


def range_error(size: int, message: str) -> RegistryError:
    return RegistryError(
        "BLOB_UPLOAD_INVALID", message, status=416, headers={"Range": range_header(size)}
    )


def _verify(hasher: Any, digest: Digest, size: int, limit: Limit | None) -> None:
    """Refuse bytes that are not blob `digest` (DIGEST_INVALID) or that `limit` does not
    allow (DENIED)."""
    if hasher.hexdigest() != digest.encoded:
        raise RegistryError("DIGEST_INVALID", detail={"digest": str(digest)})
    check_blob_size(size, limit)


def range_header(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


@dataclass(slots=True)
class Lease:
    """An upload as the request holding it sees it: what is recorded so far."""

    upload_id: str
    holder: str
    size: int
    state: str
    settled: bool = False  # the upload was recorded, finished or removed: nothing to release


@contextmanager
def _marked(marks: set[str], upload_id: str) -> Iterator[None]:
    """`upload_id` in `marks` while the block runs (uploads the sweep must leave alone)."""
    marks.add(upload_id)
    try:
        yield
    finally:
        marks.discard(upload_id)


class Uploads:
    def __init__(
        self, metadata: RegistryMetadata, store: BlobStore, lease: timedelta = LEASE
    ) -> None:
        self.metadata = metadata
        self.records = UploadRecords(metadata, lease)
        self.store = store
        self._hashers: dict[str, tuple[int, Any]] = {}
        # Uploads no session names (a whole blob in one request), being written here, and the
        # sessions whose whole blob is (POST, then a PUT with the body): neither holds a lease,
        # which would cost every small blob a write, so the sweep asks these.
        self._unnamed: set[str] = set()
        self._finishing: set[str] = set()
        # Stored upload bytes that no session names, and when this process first found them.
        self._orphans_seen: dict[str, datetime] = {}

    async def open(self, repository_id: int) -> str:
        upload_id = str(uuid.uuid4())
        state = await self.store.begin(upload_id)
        await self.records.create(repository_id, upload_id, state)
        return upload_id

    async def size(self, upload_id: str, repository_id: int) -> int:
        size = await self.records.size(upload_id, repository_id)
        if size is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id})
        return size

    @asynccontextmanager
    async def _held(self, upload_id: str, repository_id: int) -> AsyncIterator[Lease]:
        """The upload, held against every other request in any process until the block ends.

        A second request is refused as an out-of-order chunk, with the upload's current range.
        """
        holder = str(uuid.uuid4())
        claim = await self.records.claim(upload_id, repository_id, holder)
        if claim is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id})
        if not claim.held:
            raise range_error(claim.size, "another request is writing this upload")
        lease = Lease(upload_id, holder, claim.size, claim.state)
        renewing = asyncio.create_task(self._renew(lease))
        try:
            yield lease
        finally:
            renewing.cancel()
            if not lease.settled:
                await asyncio.shield(self.records.release(upload_id, holder))

    async def _renew(self, lease: Lease) -> None:
        """Keep the lease while a long body arrives. A renewal that fails is tried again at
        the next turn; the lease lapses only if none succeeds for its whole length."""
        while True:
            await asyncio.sleep(self.records.lease.total_seconds() / 3)
            try:
                renewed = await self.records.renew(lease.upload_id, lease.holder)
            except Exception:
                log.exception("renewing an upload lease failed", upload=lease.upload_id)
                continue
            if not renewed:
                log.warning("upload lease lost", upload=lease.upload_id)
                return

    async def append(
        self,
        upload_id: str,
        repository_id: int,
        body: AsyncIterable[bytes],
        expected: tuple[int, int] | None = None,
    ) -> int:
        """Add a chunk; `expected` is the (start, length) a Content-Range announced."""
        async with self._held(upload_id, repository_id) as lease:
            hasher = await self._hasher(lease)
            size, state = await self._write(lease, body, hasher, expected)
            await self._record(lease, size, state, hasher)
            return size

    async def _write(
        self,
        lease: Lease,
        body: AsyncIterable[bytes],
        hasher: Any,
        expected: tuple[int, int] | None,
    ) -> tuple[int, str]:
        """Store a chunk after the recorded bytes, feeding `hasher`; return the upload's new
        size and state, not yet recorded."""
        if expected is not None and expected[0] != lease.size:
            raise range_error(
                lease.size, f"chunk starts at {expected[0]}, upload has {lease.size} bytes"
            )
        try:
            written = await self.store.append(
                lease.upload_id, lease.state, lease.size, body, hasher
            )
        except PartialWrite as exc:
            # Keep what arrived, so that the client can ask for the offset and resume.
            await self._record(lease, lease.size + exc.written, exc.state, hasher)
            raise RegistryError("BLOB_UPLOAD_INVALID", "the request body ended early") from exc
        except BaseException:
            self._hashers.pop(lease.upload_id, None)
            raise
        if expected is not None and written.size != expected[1]:
            self._hashers.pop(lease.upload_id, None)  # what was stored belongs to nobody
            raise range_error(
                lease.size, f"Content-Range announced {expected[1]} bytes, got {written.size}"
            )
        return lease.size + written.size, written.state

    async def _record(self, lease: Lease, size: int, state: str, hasher: Any) -> None:
        """Record the upload's new size and state and release it."""
        recorded = await self.records.record(
            lease.upload_id, lease.holder, lease.size, size, state, keep=False
        )
        lease.settled = True
        if not recorded:
            self._hashers.pop(lease.upload_id, None)
            raise range_error(lease.size, "another request changed this upload at the same time")
        self._hashers[lease.upload_id] = (size, hasher)

    async def _hasher(self, lease: Lease, algorithm: str = "sha256") -> Any:
        cached = self._hashers.pop(lease.upload_id, None)
        if cached is not None and cached[0] == lease.size and cached[1].name == algorithm:
            return cached[1]
        hasher = hashlib.new(algorithm)
        if lease.size:
            state = await self.store.resume(lease.upload_id, lease.state, lease.size, hasher)
            if state != lease.state:
                # The backend moved the bytes (S3 completes and reopens its multipart upload to
                # read them): the new state must be recorded before anything else happens.
                if not await self.records.record(
                    lease.upload_id, lease.holder, lease.size, lease.size, state, keep=True
                ):
                    raise range_error(lease.size, "another request changed this upload")
                lease.state = state
        return hasher

    async def finish(
        self,
        upload_id: str,
        repository_id: int,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        expected: tuple[int, int] | None = None,
        limit: Limit | None = None,
    ) -> int:
        """Complete the upload as blob `digest`, with `body` as its last chunk if given: one
        lease of the upload and one database write for the whole of the final request. A blob
        larger than `limit` is refused (DENIED) and its upload removed."""
        whole = body is not None and (expected is None or expected[0] == 0)
        if whole and body is not None and await self.size(upload_id, repository_id) == 0:
            return await self._finish_whole(upload_id, repository_id, digest, body, expected, limit)
        async with self._held(upload_id, repository_id) as lease:
            hasher = await self._hasher(lease, digest.algorithm)
            size, state = lease.size, lease.state
            if body is not None:
                size, state = await self._write(lease, body, hasher, expected)
            try:
                _verify(hasher, digest, size, limit)
            except RegistryError:
                lease.settled = True
                await self.cancel(upload_id)  # no use keeping bytes that can never commit
                raise
            await pin(self.metadata.db, str(digest), size)
            await self.store.commit(upload_id, state, size, str(digest))
            lease.settled = True
            if not await self.records.finish(
                upload_id, lease.holder, repository_id, str(digest), size
            ):
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id})
            return size

    async def _finish_whole(
        self,
        upload_id: str,
        repository_id: int,
        digest: Digest,
        body: AsyncIterable[bytes],
        expected: tuple[int, int] | None,
        limit: Limit | None,
    ) -> int:
        """The whole blob in the request that finishes an empty upload (a POST, then a PUT
        with the body: every small blob). Stored as a monolithic push would be, with no lease:
        the session is taken only if nobody wrote or holds it meanwhile, in the same
        transaction that links the blob."""
        try:
            with _marked(self._finishing, upload_id):
                size = await self._store_verified(digest, body, expected, limit)
        except RegistryError as exc:
            if exc.code in ("DIGEST_INVALID", "DENIED"):  # as after a chunked upload: it ends
                await self.cancel(upload_id)
            raise
        if not await self.records.finish_empty(upload_id, repository_id, str(digest), size):
            size_now = await self.size(upload_id, repository_id)
            raise range_error(size_now, "another request changed this upload at the same time")
        return size

    async def monolithic(
        self, name: str, digest: Digest, body: AsyncIterable[bytes], limit: Limit | None = None
    ) -> int:
        """A whole blob in one request: no session row, nothing visible (not even the
        repository `name`) until it verifies."""
        size = await self._store_verified(digest, body, limit=limit)
        await self.metadata.add_blob(name, str(digest), size)
        return size

    async def _store_verified(
        self,
        digest: Digest,
        body: AsyncIterable[bytes],
        expected: tuple[int, int] | None = None,
        limit: Limit | None = None,
    ) -> int:
        """Store `body` as blob `digest` if it is that blob (and within `limit`), through an
        upload of its own that no session names; return its size."""
        upload_id = str(uuid.uuid4())
        with _marked(self._unnamed, upload_id):
            hasher = hashlib.new(digest.algorithm)
            state = await self.store.begin(upload_id)
            try:
                written = await self.store.append(upload_id, state, 0, body, hasher)
            except PartialWrite as exc:
                await self.store.abort(upload_id, exc.state)
                raise RegistryError("BLOB_UPLOAD_INVALID", "the request body ended early") from exc
            except BaseException:
                await asyncio.shield(self.store.abort(upload_id, None))
                raise
            try:
                if expected is not None and written.size != expected[1]:
                    announced = f"Content-Range announced {expected[1]} bytes"
                    raise range_error(0, f"{announced}, got {written.size}")
                _verify(hasher, digest, written.size, limit)
            except RegistryError:
                await self.store.abort(upload_id, written.state)
                raise
            await pin(self.metadata.db, str(digest), written.size)
            await self.store.commit(upload_id, written.state, written.size, str(digest))
            return written.size

    async def cancel(self, upload_id: str) -> bool:
        self._hashers.pop(upload_id, None)
        state = await self.records.delete(upload_id)
        await self.store.abort(upload_id, state)
        return state is not None

    async def remove_abandoned(self) -> int:
        """Remove the sessions whose writer died (their lease lapsed unreleased); return how
        many. Sessions that no request holds now are left to the idle sweep: their client may
        send the next chunk yet, to this process or another one."""
        removed = 0
        for upload_id, holder in await self.records.lapsed():
            state = await self.records.delete_lapsed(upload_id, holder)
            if state is not None:
                self._hashers.pop(upload_id, None)
                await self.store.abort(upload_id, state)
                removed += 1
        # Stored bytes that no session names are only noted here: another process sharing the
        # storage may be writing them (a whole blob in one request has no session); the idle
        # sweep removes them.
        await self._note_orphans()
        return removed

    async def sweep(self, idle_since: datetime) -> int:
        """Remove the sessions nobody touched since `idle_since`; return how many."""
        stale = set(await self.records.stale(idle_since)) - self._finishing
        for upload_id in stale:
            await self.cancel(upload_id)
        # Bytes with no session at all: a write that raced a cancel, or a crash mid-upload.
        await self._note_orphans()
        orphans = {u for u, seen in self._orphans_seen.items() if seen <= idle_since}
        for upload_id in orphans:
            await self.store.abort(upload_id, None)
            self._orphans_seen.pop(upload_id, None)
        return len(stale) + len(orphans)

    async def _note_orphans(self) -> None:
        """Note the stored uploads that no session names, and when this process first found
        each so: they are removed once idle for the sweep's timeout by that clock. The
        storage's own times are not enough: a whole blob being written in one request has no
        session, in this process or another, and an S3 server may report any time as an
        upload's start (moto reports 2010 for every one)."""
        leftovers = set(await self.store.leftovers(utcnow()))
        unknown = leftovers - await self.records.known(leftovers) - self._unnamed
        now = utcnow()
        self._orphans_seen = {u: self._orphans_seen.get(u, now) for u in unknown}
