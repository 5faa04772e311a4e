"""The operator's long-running loops: run again after a failure, and tied to an app's life."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web

log = structlog.get_logger("wharf.operator")

Loop = Callable[[], Awaitable[None]]


async def again_and_again(loop: Loop, what: str) -> None:
    """Run `loop` again a second after it fails (the database away for a moment)."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("operator task failed; starting again", task=what)
        await asyncio.sleep(1.0)


def running(loop: Loop, what: str) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `loop`, again after each failure, while the app runs."""

    async def run(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(again_and_again(loop, what))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run
