"""/readyz: whether this process can serve now, part by part (database, storage), in the
shape of Kubernetes' readiness answers. /healthz (liveness) only says that the process serves.

    [+]database ok
    [-]storage failed: reason withheld
    readyz check failed

A failing check answers 503 with one line per check (`?verbose` lists them on success too).
The reason stays out of the answer, which anybody may read; it is logged once when a part
stops answering, and a line says when it answers again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from .db.database import DatabaseUnavailable

log = structlog.get_logger("wharf.readiness")

Check = Callable[[], Awaitable[None]]  # returns when the part answers, raises when it does not


class StorageUnavailable(Exception):
    pass


def storage_check(ready: Callable[[], Awaitable[bool]]) -> Check:
    async def check() -> None:
        if not await ready():
            raise StorageUnavailable("the storage backend does not answer")

    return check


class Readiness:
    def __init__(self, server: str, checks: Mapping[str, Check], timeout: float = 5.0) -> None:
        self.server = server
        self.checks = dict(checks)
        self.timeout = timeout
        self._failing: set[str] = set()

    async def _run(self, name: str, check: Check) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                await check()
        except Exception as exc:
            if name not in self._failing:
                self._failing.add(name)
                if isinstance(exc, DatabaseUnavailable | StorageUnavailable):
                    log.warning("not ready", server=self.server, part=name, reason=str(exc))
                elif isinstance(exc, TimeoutError):
                    reason = f"no answer within {self.timeout:g}s"
                    log.warning("not ready", server=self.server, part=name, reason=reason)
                else:  # its type and place only, as every error is logged
                    log.warning("not ready", server=self.server, part=name, exc_info=exc)
            return False
        if name in self._failing:
            self._failing.discard(name)
            log.info("ready again", server=self.server, part=name)
        return True

    async def handle(self, request: web.Request) -> web.Response:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(n, self.checks[n]) for n in names))
        headers = {"Cache-Control": "no-cache"}
        ok = all(results)
        if ok and "verbose" not in request.query:
            return web.Response(text="ok", headers=headers)
        lines = [
            f"[+]{name} ok" if passed else f"[-]{name} failed: reason withheld"
            for name, passed in zip(names, results, strict=True)
        ]
        lines.append("readyz check passed" if ok else "readyz check failed")
        return web.Response(
            status=200 if ok else 503, text="\n".join(lines) + "\n", headers=headers
        )
