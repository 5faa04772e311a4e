"""What the registry asks of a place that keeps blob bytes: reading blobs, and upload sessions.

A backend keeps bytes only. Which uploads exist, how far each has come and which request may
write it are the database's (the uploads row): a backend gets the upload's `state` (its own
text, say an S3 multipart upload id and its parts) with every call and returns the new one, so
that any process can continue any upload. Digests and upload ids reach a backend validated
(hex digits, a uuid): neither holds a '/'.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

_READ_BYTES = 1024 * 1024


class PartialWrite(Exception):
    """The request body ended early; `written` bytes of it are stored and hashed, and the
    upload's state after them is `state`."""

    def __init__(self, written: int, state: str, cause: BaseException) -> None:
        super().__init__(f"body ended after {written} bytes: {cause}")
        self.written = written
        self.state = state


class UploadGone(Exception):
    """The backend no longer has an upload's bytes (aborted meanwhile by a cancel or the
    sweeper): the upload cannot continue."""


class StorageUnavailable(Exception):
    """The backend cannot be reached or refuses to work now (an S3 500, 503 or throttling):
    the request may succeed later, and nothing it acknowledged before is lost."""

    # What a request that met it is told: "storage is <state>, retry later".
    state = "unavailable"


class StorageFull(StorageUnavailable):
    """The backend has no room for the bytes (a full disk, a quota reached): the request may
    succeed once space is freed."""

    state = "full"


@dataclass(frozen=True, slots=True)
class Written:
    """What an append stored: `size` bytes of the body, and the upload's new `state`."""

    size: int
    state: str


class BlobContent(Protocol):
    """Some bytes of a blob, opened for sending: nothing can fail between opening them and
    sending but the connection and the backend itself."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, in order."""

    async def close(self) -> None:
        """Release what reading held; safe to call more than once."""


@dataclass(slots=True)
class FileSlice:
    """Bytes of a blob in a local file: a server may `sendfile` them, never copying them
    through Python. `chunks()` reads them for a caller that cannot."""

    file: BinaryIO
    offset: int
    count: int

    async def chunks(self) -> AsyncIterator[bytes]:
        offset, remaining = self.offset, self.count
        while remaining > 0:
            data = await asyncio.to_thread(
                os.pread, self.file.fileno(), min(remaining, _READ_BYTES), offset
            )
            if not data:
                raise ConnectionError("the blob file ended before its size")
            yield data
            offset += len(data)
            remaining -= len(data)

    async def close(self) -> None:
        self.file.close()


class BlobReader(Protocol):
    # Whether a read should first compare the stored size with the recorded one. On local disk
    # that costs a stat and catches a file cut short by hand; on S3 it would be a round trip
    # for every HEAD, and objects there are never changed in place.
    checks_sizes: bool

    async def stat(self, digest: str) -> int | None:
        """How many bytes of the blob the store holds; None when it holds no such blob."""

    async def read(self, digest: str, limit: int) -> bytes | None:
        """The whole blob, when it is stored and no larger than `limit` bytes."""

    async def open(self, digest: str, offset: int, count: int) -> BlobContent | None:
        """`count` bytes of the blob from `offset`; None when it holds no such blob."""

    async def redirect_url(self, digest: str) -> str | None:
        """A URL a client may fetch the blob from directly, for a while; None when the
        backend offers none (or is told not to)."""

    async def delete(self, digest: str) -> bool:
        """Remove the blob's bytes; False when there were none."""

    async def ready(self) -> bool:
        """Whether the backend answers now."""

    async def stored_before(self, moment: datetime) -> list[str]:
        """The digests of the stored blobs last written before `moment` (UTC): what a garbage
        collector compares with the blobs the database knows."""


class BlobWriter(Protocol):
    async def begin(self, upload_id: str) -> str:
        """Prepare an empty upload; return its state."""

    async def append(
        self, upload_id: str, state: str, offset: int, body: AsyncIterable[bytes], hasher: Any
    ) -> Written:
        """Store `body` after the first `offset` bytes of the upload, feeding `hasher`.

        Only one request appends to an upload at a time (the database's lease sees to it);
        bytes an earlier append stored past `offset` belong to no recorded write. Raises
        PartialWrite when the body breaks off, after storing what arrived.
        """

    async def resume(self, upload_id: str, state: str, size: int, hasher: Any) -> str:
        """Feed the first `size` stored bytes of the upload to `hasher`, for a process that
        has no hash of them; return the upload's state, which this may change."""

    async def commit(self, upload_id: str, state: str, size: int, digest: str) -> None:
        """Make the first `size` bytes of the upload durable as the blob `digest` and forget
        the upload."""

    async def abort(self, upload_id: str, state: str | None) -> None:
        """Forget an upload and its bytes (`state` None: the upload's row is gone)."""

    async def leftovers(self, idle_since: datetime) -> list[str]:
        """Uploads whose bytes nobody touched since `idle_since` (UTC): the sweeper aborts
        those no session row names any more (a crash mid-upload, a write that raced an abort).
        """


class BlobStore(BlobReader, BlobWriter, Protocol):
    """A backend: the filesystem, S3."""

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
