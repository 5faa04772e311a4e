"""What may change in a running registry without a restart: read-only mode, removal, blob
redirects and the limits on requests in flight. The operator sets them from the registry's
Config resource; the middleware here applies them to every request.

The limits are OpenShift's (`maxconnections`): a request runs when fewer than `max_running`
of its kind (reads: GET, HEAD, OPTIONS; writes: everything else) run; otherwise it waits in a
queue of at most `max_in_queue`, for at most `max_wait` seconds; a request that finds the queue
full, or waits too long, is answered 429 with a plain-text body."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import hdrs, web

from .errors import RegistryError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

READ_METHODS = frozenset({hdrs.METH_GET, hdrs.METH_HEAD, hdrs.METH_OPTIONS})
# Where the registry's own API is; /healthz and /readyz are the process's, and answer always.
_REGISTRY_PATHS = ("/v2", "/extensions/v2", "/openshift/token")


class Limiter:
    """At most `max_running` at once (0: no limit), `max_in_queue` waiting (0: none wait),
    each waiting at most `max_wait` seconds (0: as long as it takes). Requests are counted
    even while there is no limit, so that limits set later count those already running."""

    def __init__(self, max_running: int = 0, max_in_queue: int = 0, max_wait: float = 0.0):
        self.max_running = max_running
        self.max_in_queue = max_in_queue
        self.max_wait = max_wait
        self.running = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()

    def update(self, max_running: int, max_in_queue: int, max_wait: float) -> None:
        """New limits, for the requests running and waiting too (a raised limit admits)."""
        self.max_running, self.max_in_queue, self.max_wait = max_running, max_in_queue, max_wait
        self._admit()

    def _room(self) -> bool:
        return self.max_running <= 0 or self.running < self.max_running

    def _admit(self) -> None:
        while self._queue and self._room():
            waiter = self._queue.popleft()
            if not waiter.done():
                self.running += 1
                waiter.set_result(None)

    @property
    def retry_after(self) -> int:
        """Seconds a refused client is told to wait: about one queue wait."""
        return max(1, math.ceil(self.max_wait))

    async def acquire(self) -> bool:
        if self._room() and not self._queue:
            self.running += 1
            return True
        if len(self._queue) >= self.max_in_queue:
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait or None):
                await waiter  # admitted by _admit(), which counted it as running
        except (TimeoutError, asyncio.CancelledError):
            if waiter.done() and not waiter.cancelled():
                self.release()  # admitted just as the wait ended: pass the slot on
            elif waiter in self._queue:
                self._queue.remove(waiter)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the client left while queued
            return False
        return True

    def release(self) -> None:
        self.running -= 1
        self._admit()


@dataclass
class Controls:
    """The registry's run-time settings; replaced field by field by the operator."""

    read_only: bool = False
    # Removed: managementState Removed, the registry answers nothing but that.
    removed: bool = False
    # Why the registry answers nothing for a moment (its storage being switched); "" if not.
    paused: str = ""
    redirect: bool = True
    reads: Limiter = field(default_factory=Limiter)
    writes: Limiter = field(default_factory=Limiter)


CONTROLS = web.AppKey("controls", Controls)

REMOVED_MESSAGE = (
    "the image registry is removed: managementState is Removed in "
    "configs.imageregistry.operator.openshift.io/cluster"
)
READ_ONLY_MESSAGE = (
    "the registry is in read-only mode (readOnly in "
    "configs.imageregistry.operator.openshift.io/cluster): pushes and deletes are refused"
)


def _too_many(limiter: Limiter) -> web.Response:
    return web.Response(
        status=429,
        text="Too many requests, please try again later.\n",
        headers={hdrs.RETRY_AFTER: str(limiter.retry_after)},
    )


@web.middleware
async def apply_controls(request: web.Request, handler: Handler) -> web.StreamResponse:
    controls = request.app[CONTROLS]
    path = request.path
    if path == "/readyz" and (controls.removed or controls.paused):
        text = "removed" if controls.removed else "paused"
        return web.Response(status=503, text=text, headers={"Cache-Control": "no-cache"})
    if not path.startswith(_REGISTRY_PATHS):
        return await handler(request)
    if controls.removed:
        raise RegistryError("UNAVAILABLE", REMOVED_MESSAGE)
    if controls.paused:
        raise RegistryError("UNAVAILABLE", controls.paused, headers={hdrs.RETRY_AFTER: "5"})
    reading = request.method in READ_METHODS
    if not reading and controls.read_only and path.startswith("/v2/"):
        # As distribution in maintenance read-only mode: the write endpoints are not there.
        raise RegistryError("UNSUPPORTED", READ_ONLY_MESSAGE)
    limiter = controls.reads if reading else controls.writes
    if not await limiter.acquire():
        return _too_many(limiter)
    try:
        return await handler(request)
    finally:
        limiter.release()


def install(app: web.Application, controls: Controls) -> None:
    """The controls on the registry `app`: after the error envelope, so that its refusals are
    answered in the spec's form."""
    app[CONTROLS] = controls
    app.middlewares.append(apply_controls)
