"""Blobs on local disk: uploads in `uploads/`, finished blobs content-addressed in `blobs/`."""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import shutil
import stat
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .base import FileSlice, PartialWrite, StorageFull, Written

# Gather the body into batches this large before handing them to the worker thread: hashing
# and writing in big batches off the event loop is what keeps pushes near the disk's speed.
BATCH_BYTES = 4 * 1024 * 1024
# Start writeback every so often so that the fsync at commit has little left to do.
WRITEBACK_BYTES = 8 * 1024 * 1024
_IOV_MAX = 512
# Reading this little (an image config, say) costs less than a hop to a thread: it is read
# right on the event loop.
INLINE_READ_BYTES = 64 * 1024
_READ_BYTES = 4 * 1024 * 1024


class FilesystemBlobStore:
    """Uploads are files named by their id; an upload has no state beyond its bytes."""

    checks_sizes = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"
        self.blobs = root / "blobs"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)

    # Digests and upload ids reach here already validated (hex, uuid): neither can hold a '/'.
    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        return self.blobs / algorithm / encoded[:2] / encoded

    # One stat is a few microseconds of metadata work: cheaper on the event loop than a hop
    # to a thread.
    async def stat(self, digest: str) -> int | None:
        try:
            found = os.stat(self._blob_path(digest))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return found.st_size if stat.S_ISREG(found.st_mode) else None

    async def read(self, digest: str, limit: int) -> bytes | None:
        if limit <= INLINE_READ_BYTES:
            return _read_small(self._blob_path(digest), limit)
        return await asyncio.to_thread(_read_small, self._blob_path(digest), limit)

    # Opening is a few microseconds of metadata work, cheaper here than in a thread.
    async def open(self, digest: str, offset: int, count: int) -> FileSlice | None:
        try:
            file = self._blob_path(digest).open("rb", buffering=0)
        except FileNotFoundError:
            return None
        return FileSlice(file, offset, count)

    async def redirect_url(self, digest: str) -> str | None:
        return None

    async def delete(self, digest: str) -> bool:
        try:
            await asyncio.to_thread(self._blob_path(digest).unlink)
        except FileNotFoundError:
            return False
        return True

    async def close(self) -> None:
        pass  # nothing held between calls

    async def ready(self) -> bool:
        return os.access(self.blobs, os.W_OK) and os.access(self.uploads, os.W_OK)

    async def empty(self) -> None:
        """Delete every blob and upload: the operator empties managed storage it removes."""
        await asyncio.to_thread(_empty_folders, self.blobs, self.uploads)

    # The file is made by the first append: an upload whose only request brings the whole
    # blob (a POST, then a PUT with the body) never needs one.
    async def begin(self, upload_id: str) -> str:
        return ""

    async def append(
        self, upload_id: str, state: str, offset: int, body: AsyncIterable[bytes], hasher: Any
    ) -> Written:
        with _room_needed():
            return Written(await self._append(upload_id, offset, body, hasher), state)

    async def _append(
        self, upload_id: str, offset: int, body: AsyncIterable[bytes], hasher: Any
    ) -> int:
        path = self._upload_path(upload_id)
        chunks = aiter(body)
        first: list[bytes] = []
        size = 0
        ended = True
        try:
            async for chunk in chunks:
                first.append(chunk)
                size += len(chunk)
                if size >= BATCH_BYTES or len(first) >= _IOV_MAX:
                    ended = False
                    break
        except Exception as exc:
            # Whatever arrived before the break is kept, so the client may resume.
            written = await asyncio.to_thread(_write_whole, path, offset, first, hasher)
            raise PartialWrite(written, "", exc) from exc
        if ended:
            # The whole body fits one batch (every small blob): one hop to a thread opens,
            # writes and closes.
            return await asyncio.to_thread(_write_whole, path, offset, first, hasher)
        return await self._append_stream(path, offset, first, chunks, hasher)

    async def _append_stream(
        self,
        path: Path,
        offset: int,
        first: list[bytes],
        body: AsyncIterator[bytes],
        hasher: Any,
    ) -> int:
        """Write a body larger than a batch, `first` first, with one batch in flight."""
        # Take the chunks and leave the caller's list empty: the caller's frame keeps it for
        # as long as this runs, and with the chunks in it, 4 MiB more for every upload.
        batch = first[:]
        first.clear()
        fd = await asyncio.to_thread(_open_upload, path)
        written = 0
        in_flight: asyncio.Future[int] | None = None
        batch_size = sum(len(chunk) for chunk in batch)
        loop = asyncio.get_running_loop()
        try:
            try:
                async for chunk in body:
                    batch.append(chunk)
                    batch_size += len(chunk)
                    if batch_size >= BATCH_BYTES or len(batch) >= _IOV_MAX:
                        # Exactly one batch in flight: memory stays bounded however fast
                        # the client sends.
                        if in_flight is not None:
                            written += await in_flight
                        in_flight = loop.run_in_executor(
                            None, _write_batch, fd, offset + written, batch, hasher
                        )
                        batch, batch_size = [], 0
                if in_flight is not None:
                    written += await in_flight
                    in_flight = None
                if batch:
                    written += await asyncio.to_thread(
                        _write_batch, fd, offset + written, batch, hasher
                    )
            except asyncio.CancelledError:
                # The caller will not record this write: what it stored past `offset` belongs
                # to nobody. The batch in flight must end before the file is closed.
                if in_flight is not None:
                    await asyncio.shield(in_flight)
                raise
            except Exception as exc:
                if in_flight is not None:
                    written += await asyncio.shield(in_flight)
                if batch:
                    written += await asyncio.to_thread(
                        _write_batch, fd, offset + written, batch, hasher
                    )
                # Whatever arrived before the break is kept, so the client may resume.
                raise PartialWrite(written, "", exc) from exc
        finally:
            await asyncio.to_thread(os.close, fd)
        return written

    async def resume(self, upload_id: str, state: str, size: int, hasher: Any) -> str:
        await asyncio.to_thread(_hash_file, self._upload_path(upload_id), size, hasher)
        return state

    async def commit(self, upload_id: str, state: str, size: int, digest: str) -> None:
        with _room_needed():
            await asyncio.to_thread(self._commit, upload_id, digest, size)

    def _commit(self, upload_id: str, digest: str, size: int) -> None:
        source = self._upload_path(upload_id)
        target = self._blob_path(digest)
        # Even when the blob's file exists the upload replaces it: these bytes were just
        # verified, the file's may have been damaged since they were (which is how a client
        # repairs a blob it was told is missing).
        # An upload that never had a byte has no file yet (the empty blob).
        fd = os.open(source, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, size)  # a refused chunk may have left bytes past the verified ones
            # The bytes and the size are what must survive; the rename below is made durable by
            # the directory's fsync. fdatasync skips the timestamps, a third of fsync's cost here.
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _fsync_dir(target.parent.parent)  # the new fan-out directory itself must survive
        # rename is atomic: readers see the whole blob or nothing (one that has the old file
        # open keeps reading it), and two commits of the same digest both leave identical bytes.
        os.rename(source, target)
        _fsync_dir(target.parent)

    async def abort(self, upload_id: str, state: str | None) -> None:
        await asyncio.to_thread(self._upload_path(upload_id).unlink, True)

    async def leftovers(self, idle_since: datetime) -> list[str]:
        limit = idle_since.replace(tzinfo=UTC).timestamp()
        return await asyncio.to_thread(_idle_files, self.uploads, limit)

    async def stored_before(self, moment: datetime) -> list[str]:
        limit = moment.replace(tzinfo=UTC).timestamp()
        return await asyncio.to_thread(_blob_files, self.blobs, limit)


@contextmanager
def _room_needed() -> Iterator[None]:
    """A disk with no room left is a full storage (503, retry once space is freed), not an
    internal error: the caller removes what the refused upload wrote."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFull("no space left on the storage's device") from None
        if exc.errno == errno.EDQUOT:
            raise StorageFull("no space left in the storage's disk quota") from None
        raise


def _empty_folders(*folders: Path) -> None:
    for folder in folders:
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        _fsync_dir(folder)


def _blob_files(root: Path, limit: float) -> list[str]:
    """`<algorithm>:<encoded>` of the blob files under `blobs/<algorithm>/<xx>/` older than
    `limit`."""
    found = []
    for algorithm in os.scandir(root):
        if not algorithm.is_dir():
            continue
        for fan in os.scandir(algorithm.path):
            if not fan.is_dir():
                continue
            for entry in os.scandir(fan.path):
                try:
                    if entry.is_file() and entry.stat().st_mtime < limit:
                        found.append(f"{algorithm.name}:{entry.name}")
                except FileNotFoundError:
                    continue  # removed meanwhile
    return found


def _idle_files(directory: Path, limit: float) -> list[str]:
    found = []
    for entry in os.scandir(directory):
        try:
            if entry.is_file() and entry.stat().st_mtime < limit:
                found.append(entry.name)
        except FileNotFoundError:
            continue  # removed meanwhile
    return found


def _write_batch(fd: int, offset: int, batch: list[bytes], hasher: Any) -> int:
    for chunk in batch:
        hasher.update(chunk)
    total = sum(len(chunk) for chunk in batch)
    done = os.pwritev(fd, batch, offset)
    while done < total:  # short writes are rare but legal
        rest = b"".join(batch)[done:]
        done += os.pwrite(fd, rest, offset + done)
    start = offset - offset % WRITEBACK_BYTES
    if (offset + total) // WRITEBACK_BYTES > offset // WRITEBACK_BYTES:
        _start_writeback(fd, start)
    return total


def _writeback_starter() -> Callable[[int, int], None]:
    """sync_file_range(fd, start, 0, SYNC_FILE_RANGE_WRITE) from libc: Python's os lacks it.

    Only a hint that keeps the final fsync short, so where libc has no such call it does
    nothing and the fsync at commit does all the work.
    """
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return lambda _fd, _start: None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE

    def start_writeback(fd: int, start: int) -> None:
        function(fd, start, 0, write)  # a failed hint changes nothing that fsync will not fix

    return start_writeback


_start_writeback = _writeback_starter()


def _write_whole(path: Path, offset: int, batch: list[bytes], hasher: Any) -> int:
    fd = _open_upload(path)
    try:
        return _write_batch(fd, offset, batch, hasher) if batch else 0
    finally:
        os.close(fd)


def _open_upload(path: Path) -> int:
    # Bytes past the offset of a write belong to no recorded write (an earlier request died
    # mid-way): they are overwritten, or cut off at commit.
    return os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)


def _read_small(path: Path, limit: int) -> bytes | None:
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        return None
    return data if len(data) <= limit else None


def _hash_file(path: Path, size: int, hasher: Any) -> None:
    if size == 0:
        return
    remaining = size
    with path.open("rb") as stream:
        while remaining > 0:
            chunk = stream.read(min(_READ_BYTES, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
