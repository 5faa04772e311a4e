"""The watch cache (wharf.db.watch_cache) on a real database: every watcher gets every event once
and in order, in batches as they arrive; a round of wake-ups leaves room for the process's other
work; a watcher that leaves does not hold the others up."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from tests.support.stores import object_store
from wharf.db.objects import Event, Key, ObjectStore
from wharf.db.watch_cache import WatchCache

RESOURCE = "configmaps"


def configmap(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns"},
        "data": {"v": name},
    }


async def write(objects: ObjectStore, names: list[str]) -> None:
    for name in names:  # one transaction each: one announcement each
        async with objects.transaction() as tx:
            await tx.create(Key(RESOURCE, "ns", name), configmap(name))


class Watcher:
    """Takes batches from the cache until it has seen `wanted` events."""

    def __init__(self, objects: ObjectStore, version: int, wanted: int) -> None:
        self.batches: list[list[Event]] = []
        self.names: list[str] = []
        self.wanted = wanted
        self.task = asyncio.create_task(self._run(objects, version))

    async def _run(self, objects: ObjectStore, version: int) -> None:
        async for batch in objects.watch_batches(version, [RESOURCE]):
            assert batch, "a batch is never empty"
            self.batches.append(batch)
            self.names += [event.key.name for event in batch]
            if len(self.names) >= self.wanted:
                return


async def waiting(watchers: list[Watcher], cache: WatchCache) -> None:
    """Until every watcher waits on the cache."""
    async with asyncio.timeout(30):
        while len(cache._waiters) < len(watchers):
            await asyncio.sleep(0.01)


def test_many_watchers_get_every_event_once_and_in_order_in_batches(tmp_path: Path) -> None:
    names = [f"cm-{n:03d}" for n in range(120)]

    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            start = await objects.newest_version()
            watchers = [Watcher(objects, start, len(names)) for _ in range(300)]
            await waiting(watchers, objects.watch_cache)
            # Two writers: commits come while rounds of wake-ups are under way.
            await asyncio.gather(write(objects, names[0::2]), write(objects, names[1::2]))
            async with asyncio.timeout(60):
                await asyncio.gather(*(w.task for w in watchers))
            order = watchers[0].names
            assert sorted(order) == names  # each once
            for w in watchers:
                assert w.names == order  # the same order for everyone: the commit order
                versions = [e.resource_version for batch in w.batches for e in batch]
                assert versions == sorted(versions)
            batches = sum(len(w.batches) for w in watchers)
            # Woken late, a watcher takes what came meanwhile at once.
            assert batches < len(watchers) * len(names)

    asyncio.run(scenario())


def test_a_round_of_wake_ups_leaves_room_for_other_work(tmp_path: Path) -> None:
    """A thousand watchers woken in one turn of the event loop would hold up every other request
    for the whole thousand at each of its steps; here no turn wakes more than a slice."""

    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            cache = objects.watch_cache
            start = await objects.newest_version()
            watchers = [Watcher(objects, start, 1) for _ in range(10 * cache.WAKE_SLICE)]
            await waiting(watchers, cache)
            seen: list[int] = []  # how many watchers had the event, at each turn of the loop

            async def probe() -> None:
                while len(seen) < 2 or seen[-1] < len(watchers):
                    seen.append(sum(1 for w in watchers if w.names))
                    await asyncio.sleep(0)  # exactly one turn

            probing = asyncio.create_task(probe())
            await write(objects, ["one"])
            async with asyncio.timeout(30):
                await probing
            steps = [after - before for before, after in itertools.pairwise(seen)]
            assert max(steps) <= cache.WAKE_SLICE, steps
            assert seen[-1] == len(watchers)

    asyncio.run(scenario())


def test_a_watcher_that_leaves_does_not_hold_up_the_others(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            start = await objects.newest_version()
            watchers = [Watcher(objects, start, 2) for _ in range(200)]
            await waiting(watchers, objects.watch_cache)
            for w in watchers[::2]:
                w.task.cancel()
            await write(objects, ["a", "b"])
            async with asyncio.timeout(30):
                await asyncio.gather(*(w.task for w in watchers[1::2]))
            assert all(w.names == ["a", "b"] for w in watchers[1::2])
            assert all(w.task.cancelled() for w in watchers[::2])

    asyncio.run(scenario())
