"""sendfile for large blobs from worker threads.

asyncio runs `os.sendfile` on the event loop thread: one call at a time for every download of
the process, and on a fast link one call moves tens of megabytes (the kernel does the TCP work
of the copy in that call). Parallel large pulls then share one core. Here each call runs in a
worker thread instead, so downloads proceed side by side with the GIL released; the bytes still
never pass through Python.

A call never waits for a slow client: the socket stays non-blocking, a call that finds it full
returns, and the event loop waits for it to drain, so a thread is busy only while bytes move.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

# Moving bytes is CPU work in the kernel: more threads than cores would only queue.
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sendfile")
# At most this much per call: a reader as fast as loopback could otherwise take a whole blob in
# one call and hold a thread while other downloads wait their turn.
_CALL_BYTES = 16 * 1024 * 1024


def _send_some(socket_fd: int, file_fd: int, offset: int, count: int) -> int | None:
    """Bytes sent by one sendfile; None when the socket has no room now."""
    try:
        return os.sendfile(socket_fd, file_fd, offset, min(count, _CALL_BYTES))
    except (BlockingIOError, InterruptedError):
        return None


async def send_file(socket_fd: int, file_fd: int, offset: int, count: int) -> None:
    """Send `count` bytes of the file from `offset` to the socket, which must be the caller's
    alone (its transport paused, its write buffer empty) until this returns."""
    loop = asyncio.get_running_loop()
    waiter_fd: int | None = None
    try:
        while count > 0:
            sent = await loop.run_in_executor(_POOL, _send_some, socket_fd, file_fd, offset, count)
            if sent is None:
                if waiter_fd is None:
                    # The event loop refuses to watch a transport's own descriptor; a
                    # duplicate of it is the same socket under another number.
                    waiter_fd = os.dup(socket_fd)
                await _writable(loop, waiter_fd)
                continue
            if sent == 0:
                raise ConnectionError("the blob file ended before its size")
            offset += sent
            count -= sent
    finally:
        if waiter_fd is not None:
            os.close(waiter_fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
