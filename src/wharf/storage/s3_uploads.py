"""An S3 upload's parts: the state its uploads row keeps, and the writer of one append."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .base import StorageUnavailable
from .s3_calls import S3Content, guarded

if TYPE_CHECKING:
    from .s3 import S3BlobStore

# S3's smallest part but the last.
MIN_PART = 5 * 1024 * 1024
# A body smaller than this is kept as its chunks, never in a part buffer.
SMALL_BYTES = 1024 * 1024


@dataclass
class UploadState:
    """An upload as the uploads row keeps it."""

    multipart: str | None = None  # the S3 multipart upload id, once a part was sent
    parts: list[tuple[str, int]] = field(default_factory=list)  # (ETag, size), part 1 first
    tail: str | None = None  # the key of the bytes after the parts
    tail_size: int = 0
    # Tails the recorded state no longer names, deleted by the next append: deleting them
    # before the new state is recorded would break the upload if that record failed.
    stale: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> UploadState:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            data.get("multipart"),
            [(etag, size) for etag, size in data.get("parts", [])],
            data.get("tail"),
            data.get("tailSize", 0),
            list(data.get("stale", [])),
        )

    def dump(self) -> str:
        data: dict[str, Any] = {"parts": self.parts, "tailSize": self.tail_size}
        if self.multipart is not None:
            data["multipart"] = self.multipart
        if self.tail is not None:
            data["tail"] = self.tail
        if self.stale:
            data["stale"] = self.stale
        return json.dumps(data, separators=(",", ":"))

    @property
    def parts_size(self) -> int:
        return sum(size for _, size in self.parts)


class PartStream(io.BytesIO):
    """The first `size` bytes of a part's buffer (all of it by default) as a read-only BytesIO,
    which aiohttp sends 64 KiB at a time on the event loop. As bytes it would first copy the
    whole part (a slice to the Content-Length) and the transport would copy what the socket did
    not take at once; as another file it would be read in worker threads, whose malloc arenas
    keep memory."""

    def __init__(self, data: bytearray | bytes, size: int | None = None) -> None:
        super().__init__()
        self._data = data
        self._size = len(data) if size is None else size
        self._position = 0

    def getbuffer(self) -> memoryview:
        return memoryview(self._data)[: self._size]

    def read(self, size: int | None = -1) -> bytes:
        end = self._size
        if size is not None and size >= 0:
            end = min(end, self._position + size)
        with memoryview(self._data) as view:
            chunk = bytes(view[self._position : end])
        self._position = max(self._position, end)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position


class PartBuffers:
    """Buffers of one part's size, used again and again: a part's memory is allocated and
    touched once, not allocated and zeroed for every part (which, with glibc's malloc, also
    leaves the freed memory with the process).

    An upload may always have one buffer, so no upload waits on another. A second one, to fill
    the next part while the last is sent, is lent only while fewer than `limit` are in use:
    one or two pushes send and receive at once, and many pushes at once hold one part each
    (four 256 MiB pushes on 10 MiB parts: 40 MiB, not 80) at a speed that S3's answers, not
    the client, bounds."""

    def __init__(self, size: int, limit: int = 4) -> None:
        self.size = size
        self.limit = limit
        self._idle: list[bytearray] = []
        self._allocated = 0  # idle or in use
        self.peak = 0  # the most that existed at once

    def take(self) -> bytearray:
        """An upload's own buffer: always given."""
        if self._idle:
            return self._idle.pop()
        self._allocated += 1
        self.peak = max(self.peak, self._allocated)
        return bytearray(self.size)

    def spare(self) -> bytearray | None:
        """A second buffer for an upload that has one in use, if memory allows."""
        # Counted in use, not allocated: an idle buffer may be one that an upload gave back
        # only to take it again for its next part.
        if self._allocated - len(self._idle) < self.limit:
            return self.take()
        return None

    def give(self, buffer: bytearray) -> None:
        if len(self._idle) < self.limit:
            self._idle.append(buffer)
        else:
            self._allocated -= 1


class PartWriter:
    """The bytes of one append: whole parts sent as they fill, one in flight while the next
    fills, and what is left kept as a new tail object. A body smaller than SMALL_BYTES (every
    small blob) is kept as its chunks; a larger one fills part buffers, so memory stays at two
    parts per upload whatever the chunks, and at one when many push at once (PartBuffers)."""

    def __init__(self, store: S3BlobStore, upload_id: str, state: UploadState, hasher: Any) -> None:
        self.store = store
        self.upload_id = upload_id
        self.state = state
        self.hasher = hasher
        self.received = 0
        self._small: list[bytes] = []
        self._buffer: bytearray | None = None
        self._filled = 0
        self._in_flight: asyncio.Task[tuple[str, int]] | None = None
        self._old_tail = state.tail

    async def start(self) -> None:
        """Take the old tail's bytes (hashed already) as the start of the next part."""
        s3 = await self.store.client()
        if self.state.stale:
            await guarded(
                s3.delete_objects(
                    Bucket=self.store.bucket,
                    Delete={"Objects": [{"Key": key} for key in self.state.stale], "Quiet": True},
                )
            )
            self.state.stale = []
        if self.state.tail is None:
            return
        if self.state.tail_size >= MIN_PART:
            # Large enough to be a part itself: copied into the upload inside S3 instead of
            # coming back through the registry (parts need not be of one size).
            await self._ensure_multipart()
            assert self.state.multipart is not None
            self.state.parts += await self.store.copy_parts(
                self.store.upload_prefix(self.upload_id) + "data",
                self.state.multipart,
                self.state.tail,
                self.state.tail_size,
                first=len(self.state.parts) + 1,
            )
            self.state.tail, self.state.tail_size = None, 0
            return
        found = await guarded(s3.get_object(Bucket=self.store.bucket, Key=self.state.tail))
        content = S3Content(found["Body"])
        try:
            async for chunk in content.chunks():
                await self._fill(chunk)
        finally:
            await content.close()

    async def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        # Hashed a chunk at a time, in a thread past a small size: the event loop stays free.
        if len(chunk) >= 256 * 1024:
            await asyncio.to_thread(self.hasher.update, chunk)
        else:
            self.hasher.update(chunk)
        await self._fill(chunk)

    async def _fill(self, chunk: bytes) -> None:
        if self._buffer is None and self._filled + len(chunk) < SMALL_BYTES:
            self._small.append(chunk)
            self._filled += len(chunk)
            return
        if self._buffer is None:
            self._buffer = await self._next_buffer()
            small, self._small, self._filled = self._small, [], 0
            for piece in small:
                self._copy_in(memoryview(piece))
        view = memoryview(chunk)
        while view:
            view = self._copy_in(view)
            if self._filled == len(self._buffer):
                await self._send_part()
                if view:
                    self._buffer = await self._next_buffer()

    def _copy_in(self, view: memoryview) -> memoryview:
        """Copy what fits of `view` into the buffer; return the rest."""
        assert self._buffer is not None
        taken = view[: len(self._buffer) - self._filled]
        self._buffer[self._filled : self._filled + len(taken)] = taken
        self._filled += len(taken)
        return view[len(taken) :]

    async def _send_part(self) -> None:
        part = self._buffer
        assert part is not None
        self._buffer, self._filled = None, 0
        await self._land()
        await self._ensure_multipart()
        number = len(self.state.parts) + 1
        self._in_flight = asyncio.create_task(self._upload_part(number, part))

    async def _land(self) -> None:
        """Wait for the part in flight, if any, and count it."""
        if self._in_flight is not None:
            self.state.parts.append(await self._in_flight)
            self._in_flight = None

    async def _next_buffer(self) -> bytearray:
        """A buffer for the next part: a spare one, so that it fills while the last part is
        sent, or else the last part's own once it is sent."""
        spare = self.store.buffers.spare()
        if spare is not None:
            return spare
        await self._land()  # gives its buffer back
        return self.store.buffers.take()

    async def _ensure_multipart(self) -> None:
        """Start the upload's multipart upload, at its first part."""
        if self.state.multipart is not None:
            return
        s3 = await self.store.client()
        key = self.store.upload_prefix(self.upload_id) + "data"
        created = await guarded(
            s3.create_multipart_upload(Bucket=self.store.bucket, Key=key, **self.store.encryption())
        )
        self.state.multipart = created["UploadId"]

    async def _upload_part(self, number: int, data: bytearray) -> tuple[str, int]:
        multipart = self.state.multipart
        assert multipart is not None
        s3 = await self.store.client()
        key = self.store.upload_prefix(self.upload_id) + "data"
        stream = PartStream(data)
        try:
            sent = await guarded(
                s3.upload_part(
                    Bucket=self.store.bucket,
                    Key=key,
                    UploadId=multipart,
                    PartNumber=number,
                    Body=stream,
                    ContentLength=len(data),
                )
            )
        except (ClientError, StorageUnavailable):
            await self.store.check_multipart(self.upload_id, key, multipart)
            raise
        finally:
            # Sent or not, nothing reads the stream any more.
            self.store.buffers.give(data)
        return sent["ETag"], len(data)

    async def finish(self) -> str:
        """Wait for the part in flight, keep the rest as the tail; return the new state."""
        try:
            await self._land()
            if self._filled:
                self.state.tail, self.state.tail_size = await self._put_tail(), self._filled
            else:
                self.state.tail, self.state.tail_size = None, 0
        finally:
            self.release()
        if self._old_tail is not None and self._old_tail != self.state.tail:
            self.state.stale.append(self._old_tail)  # its bytes are in the new tail or a part
        return self.state.dump()

    async def _put_tail(self) -> str:
        """Store the bytes filled so far as a new tail object; return its key."""
        s3 = await self.store.client()
        key = self.store.upload_prefix(self.upload_id) + f"tail-{uuid.uuid4().hex}"
        # The part buffer itself is sent, not a copy of its filled bytes (which aiohttp would
        # copy once more).
        data = self._buffer if self._buffer is not None else b"".join(self._small)
        await guarded(
            s3.put_object(
                Bucket=self.store.bucket,
                Key=key,
                Body=PartStream(data, self._filled),
                ContentLength=self._filled,
                **self.store.encryption(),
            )
        )
        return key

    def release(self) -> None:
        """Give back the buffer being filled."""
        if self._buffer is not None:
            self.store.buffers.give(self._buffer)
        self._buffer, self._small, self._filled = None, [], 0

    async def drop(self) -> None:
        self.release()
        if self._in_flight is not None:
            self._in_flight.cancel()
            with contextlib.suppress(BaseException):
                await self._in_flight
