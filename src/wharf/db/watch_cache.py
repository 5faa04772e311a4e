"""The tail of the event log in memory: one task per process reads new events (at once after a
commit of this process, every POLL_SECONDS for the commits of others) and every watcher of the
process takes them from here. A thousand watchers cost one read of the log, not a thousand.

A watcher that starts further back than memory reaches reads the log from the database until it
has caught up, then joins the others.

Watchers are woken a slice at a time, one slice per turn of the event loop: woken all at once, a
thousand of them would fill one turn, and every other request (the very write that made the
event among them) would wait behind the whole thousand at each of its steps. One round of
wake-ups runs at a time; what commits meanwhile is carried by the next round, so the busier the
process, the more events a watcher takes (and sends on) per wake-up."""

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
    # Watchers woken in one turn of the event loop.
    WAKE_SLICE = 64

    def __init__(self, store: ObjectStore, poll_seconds: float | None = None) -> None:
        self.store = store
        self.poll_seconds = poll_seconds or self.POLL_SECONDS
        self._versions: list[int] = []
        self._events: list[Event] = []
        # Every event after `_covered_from`, up to `_newest`, is in `_events`.
        self._covered_from = 0
        self._newest = 0
        self._waiters: list[asyncio.Future[None]] = []
        # One round of wake-ups at a time: what commits during a round waits for the next,
        # so that under load a watcher takes several events per wake-up instead of one.
        self._waking = False
        self._again = False
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
        if self._waking:
            self._again = True  # after the round under way, which may carry it already
        else:
            self._round()

    def _round(self) -> None:
        waiters, self._waiters = self._waiters, []
        self._waking, self._again = True, False
        self._wake(waiters, 0)

    def _wake(self, waiters: list[asyncio.Future[None]], start: int) -> None:
        end = start + self.WAKE_SLICE
        for waiter in waiters[start:end]:
            if not waiter.done():  # a cancelled watch
                waiter.set_result(None)
        loop = asyncio.get_running_loop()
        if end < len(waiters):
            loop.call_soon(self._wake, waiters, end)
        elif self._again:
            # Next turn, after the last slice has run and waits again: every watcher is in it.
            loop.call_soon(self._round)
        else:
            self._waking = False

    async def watch_batches(
        self, version: int, resources: Sequence[str]
    ) -> AsyncIterator[list[Event]]:
        """Every event of `resources` after `version`, in order, as they happen, in the
        batches they arrive in (never empty): a caller that sends events on can send a batch
        at once. Never ends by itself; raises Expired when `version` is older than the
        retained log."""
        await self.start()
        wanted = set(resources)
        while True:
            if version < self._covered_from:
                # Further back than memory: from the database, until caught up.
                events, newest = await self.store.events_since(version, resources, self.BATCH)
                if events:
                    yield events
                version = max(version, newest)
                continue
            # A snapshot of memory: no await between reading the list, the newest version and
            # joining the waiters, so no event can slip between them.
            start = bisect.bisect_right(self._versions, version)
            found = [event for event in self._events[start:] if event.key.resource in wanted]
            version = max(version, self._newest)
            if found:
                yield found
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
