"""Blob upload sessions: bytes through the BlobStore, progress in the database.

The running hash of an upload lives in the process that received its last chunk. When the next
request of the same upload lands on another process (or after a restart), that process rebuilds
the hash from the stored bytes, so any process can continue any upload.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

from ..oci.digest import Digest
from ..storage.base import BlobStore, PartialWrite, UploadBusy, UploadGone
from .errors import RegistryError
from .metadata import RegistryMetadata


def range_error(size: int, message: str) -> RegistryError:
    return RegistryError(
        "BLOB_UPLOAD_INVALID", message, status=416, headers={"Range": range_header(size)}
    )


def range_header(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


class Uploads:
    def __init__(self, metadata: RegistryMetadata, store: BlobStore) -> None:
        self.metadata = metadata
        self.store = store
        self._hashers: dict[str, tuple[int, Any]] = {}

    async def open(self, repository_id: int) -> str:
        upload_id = str(uuid.uuid4())
        await self.store.start_upload(upload_id)
        return await self.metadata.create_upload(repository_id, upload_id)

    async def size(self, upload_id: str, repository_id: int) -> int:
        size = await self.metadata.upload_size(upload_id, repository_id)
        if size is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id})
        return size

    @asynccontextmanager
    async def _exclusive(self, upload_id: str, repository_id: int) -> AsyncIterator[int]:
        """Hold the upload against every other request, in any process, and give its size.

        Two requests writing one upload at once would each truncate and overwrite the other's
        bytes, and could leave a hash that does not describe the file; the second is refused
        as an out-of-order chunk, with the upload's current range.
        """
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.store.hold(upload_id))
            except UploadGone:
                raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id}) from None
            except UploadBusy:
                size = await self.size(upload_id, repository_id)
                raise range_error(size, "another request is writing this upload") from None
            yield await self.size(upload_id, repository_id)

    async def append(
        self,
        upload_id: str,
        repository_id: int,
        body: AsyncIterable[bytes],
        expected: tuple[int, int] | None = None,
    ) -> int:
        """Add a chunk; `expected` is the (start, length) a Content-Range announced."""
        async with self._exclusive(upload_id, repository_id) as size:
            hasher = await self._hasher(upload_id, size)
            written = await self._write(upload_id, size, body, hasher, expected)
            await self._record(upload_id, size, size + written, hasher)
            return size + written

    async def _write(
        self,
        upload_id: str,
        size: int,
        body: AsyncIterable[bytes],
        hasher: Any,
        expected: tuple[int, int] | None,
    ) -> int:
        """Store a chunk at `size`, feeding `hasher`; return how many bytes it had."""
        if expected is not None and expected[0] != size:
            raise range_error(size, f"chunk starts at {expected[0]}, upload has {size} bytes")
        try:
            written = await self.store.append(upload_id, size, body, hasher)
        except PartialWrite as exc:
            # Keep what arrived, so that the client can ask for the offset and resume.
            await self._record(upload_id, size, size + exc.written, hasher)
            raise RegistryError("BLOB_UPLOAD_INVALID", "the request body ended early") from exc
        except BaseException:
            self._hashers.pop(upload_id, None)
            raise
        if expected is not None and written != expected[1]:
            self._hashers.pop(upload_id, None)  # bytes past `size` are dropped later
            raise range_error(size, f"Content-Range announced {expected[1]} bytes, got {written}")
        return written

    async def _record(self, upload_id: str, old: int, new: int, hasher: Any) -> None:
        if not await self.metadata.advance_upload(upload_id, old, new):
            self._hashers.pop(upload_id, None)
            raise range_error(old, "another request changed this upload at the same time")
        self._hashers[upload_id] = (new, hasher)

    async def _hasher(self, upload_id: str, size: int, algorithm: str = "sha256") -> Any:
        cached = self._hashers.pop(upload_id, None)
        if cached is not None and cached[0] == size and cached[1].name == algorithm:
            return cached[1]
        hasher = hashlib.new(algorithm)
        if size:
            await self.store.rehash(upload_id, size, hasher)
        return hasher

    async def finish(
        self,
        upload_id: str,
        repository_id: int,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        expected: tuple[int, int] | None = None,
    ) -> int:
        """Complete the upload as blob `digest`, with `body` as its last chunk if given: one
        hold of the upload and one database write for the whole of the final request."""
        async with self._exclusive(upload_id, repository_id) as size:
            hasher = await self._hasher(upload_id, size, digest.algorithm)
            if body is not None:
                size += await self._write(upload_id, size, body, hasher, expected)
            if hasher.hexdigest() != digest.encoded:
                await self.cancel(upload_id)
                raise RegistryError("DIGEST_INVALID", detail={"digest": str(digest)})
            await self.store.commit(upload_id, str(digest), size)
            await self.metadata.finish_upload(upload_id, repository_id, str(digest), size)
            return size

    async def monolithic(self, name: str, digest: Digest, body: AsyncIterable[bytes]) -> int:
        """A whole blob in one request: no session row, nothing visible (not even the
        repository `name`) until it verifies."""
        upload_id = str(uuid.uuid4())
        hasher = hashlib.new(digest.algorithm)
        try:
            size = await self.store.append(upload_id, 0, body, hasher)
        except BaseException as exc:
            await self.store.discard(upload_id)
            if isinstance(exc, PartialWrite):
                raise RegistryError("BLOB_UPLOAD_INVALID", "the request body ended early") from exc
            raise
        if hasher.hexdigest() != digest.encoded:
            await self.store.discard(upload_id)
            raise RegistryError("DIGEST_INVALID", detail={"digest": str(digest)})
        await self.store.commit(upload_id, str(digest), size)
        await self.metadata.add_blob(name, str(digest), size)
        return size

    async def cancel(self, upload_id: str) -> bool:
        self._hashers.pop(upload_id, None)
        found = await self.metadata.delete_upload(upload_id)
        await self.store.discard(upload_id)
        return found

    async def sweep(self, idle_since: datetime) -> int:
        """Remove the sessions nobody touched since `idle_since`; return how many."""
        stale = set(await self.metadata.stale_uploads(idle_since))
        for upload_id in stale:
            await self.cancel(upload_id)
        # Bytes with no session at all: a write that raced a cancel, or a crash mid-upload.
        idle_files = set(await self.store.idle_uploads(idle_since)) - stale
        known = await self.metadata.known_uploads(idle_files)
        for upload_id in idle_files - known:
            await self.store.discard(upload_id)
        return len(stale) + len(idle_files - known)
