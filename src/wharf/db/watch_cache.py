"""The tail of the event log in memory: one task per process reads new events (at once after a
commit of this process, every POLL_SECONDS for the commits of others) and every watcher of the
process takes them from here. A thousand watchers cost one read of the log, not a thousand.

A watcher that starts further back than memory reaches reads the log from the database until it
has caught up, then joins the others."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from .objects import Event, ObjectStore

log = structlog.get_logger("wharf.db")


class WatchCache:
    # Events kept in memory; a watcher further behind reads from the database.
    CAPACITY = 20_000
    # Commits of other processes sharing the database are read within this time.
    POLL_SECONDS = 0.25
    # Events read from the database at once.
    BATCH = 1000

    def __init__(self, store: ObjectStore, poll_seconds: float | None = None) -> None:
        self.store = store
        self.poll_seconds = poll_seconds or self.POLL_SECONDS
        self._versions: list[int] = []
        self._events: list[Event] = []
        # Every event after `_covered_from`, up to `_newest`, is in `_events`.
        self._covered_from = 0
        self._newest = 0
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Begin reading the log from its newest event (once; later calls wait for it)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                self._newest = self._covered_from = await self.store.newest_version()
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started = None
                raise
            self._reader = asyncio.create_task(self._read_forever())
            self._started.set_result(None)
        await asyncio.shield(self._started)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read_forever(self) -> None:
        while True:
            committed = self.store.next_local_commit()  # taken before reading: none slips by
            try:
                full = await self._read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the event log failed; trying again")
                full = False
            if full:
                continue  # more to read at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await committed.wait()

    async def _read_once(self) -> bool:
        """Read what is new; True when a whole batch came (more may wait)."""
        from .objects import Expired

        try:
            events, newest = await self.store.events_since(self._newest, None, self.BATCH)
        except Expired:
            # The log was compacted past us (a long stall): memory starts again from now, and
            # watchers further back get 410 from the database, as they would have anyway.
            log.warning("event log compacted past the watch cache; starting it again")
            self._versions, self._events = [], []
            self._newest = self._covered_from = await self.store.newest_version()
            self._notify()
            return False
        if not events and newest <= self._newest:
            return False
        self._versions.extend(event.resource_version for event in events)
        self._events.extend(events)
        self._newest = max(self._newest, newest)
        self._trim()
        self._notify()
        return len(events) == self.BATCH

    def _trim(self) -> None:
        # Never further back than the database keeps the log: a watch from before that gets
        # 410 Gone wherever it lands.
        retained = self._newest - self.store.retained_events
        self._covered_from = max(self._covered_from, retained)
        stale = bisect.bisect_right(self._versions, self._covered_from)
        extra = max(stale, len(self._events) - self.CAPACITY)
        if extra > self.CAPACITY // 4 or extra == len(self._events):
            # In steps: cutting the head of a long list at every read would cost.
            if extra > stale:
                self._covered_from = self._versions[extra - 1]
            del self._versions[:extra], self._events[:extra]

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def watch(self, version: int, resources: Sequence[str]) -> AsyncIterator[Event]:
        """Every event of `resources` after `version`, in order, as they happen; never ends by
        itself. Raises Expired when `version` is older than the retained log."""
        await self.start()
        wanted = set(resources)
        while True:
            changed = self._changed
            if version < self._covered_from:
                # Further back than memory: from the database, until caught up.
                events, newest = await self.store.events_since(version, resources, self.BATCH)
                for event in events:
                    yield event
                version = max(version, newest)
                continue
            # A snapshot of memory: no await between reading the list and the newest version.
            start = bisect.bisect_right(self._versions, version)
            found = [event for event in self._events[start:] if event.key.resource in wanted]
            newest = self._newest
            for event in found:
                yield event
            version = max(version, newest)
            if not found:
                await changed.wait()
