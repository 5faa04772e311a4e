"""One operator for the processes that share a database: the holder of the Lease
`openshift-image-registry/cluster-image-registry-operator-lock` (wharf.operator.leadership).

The lease's rules run here against a real database with a clock the test moves; then real
Wharf processes sharing one database hand the lease over when its holder stops."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from tests.support.cluster import Cluster
from tests.support.server import database_for_new_wharf, running_wharf, wait_until
from tests.support.stores import object_store
from wharf.operator.leadership import LEASE_KEY, Leadership

LEASE_PATH = (
    "/apis/coordination.k8s.io/v1/namespaces/openshift-image-registry/leases/"
    "cluster-image-registry-operator-lock"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_until_it_lapses_or_releases(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        async with object_store(tmp_path) as objects:
            first = Leadership(objects, "first", clock)
            second = Leadership(objects, "second", clock)
            assert await first.claim() and first.leading
            assert not await second.claim() and not second.leading

            # Renewed in time: the holder keeps it, however long the other waits.
            for _ in range(10):
                clock.now += Leadership.DURATION_SECONDS / 2
                assert await first.claim()
                assert not await second.claim()

            # Unrenewed for the lease's duration, as the other sees it: taken over.
            clock.now += Leadership.DURATION_SECONDS - 1
            assert not await second.claim()
            assert first.leading  # its own renewal is younger than the duration
            clock.now += 2
            assert not first.leading
            assert await second.claim() and second.leading
            assert not await first.claim()
            lease = await objects.get(LEASE_KEY)
            assert lease is not None
            assert lease["spec"]["holderIdentity"] == "second"
            assert lease["spec"]["leaseTransitions"] == 1

            # Released (the holder stopping): the other takes it at once.
            await second.release()
            assert not second.leading
            assert await first.claim()
            lease = await objects.get(LEASE_KEY)
            assert lease is not None and lease["spec"]["leaseTransitions"] == 2

    asyncio.run(scenario())


def test_two_claiming_at_once_make_one_holder(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            candidates = [Leadership(objects, f"candidate-{i}") for i in range(8)]
            won = await asyncio.gather(*(c.claim() for c in candidates))
            assert sum(won) == 1
            lease = await objects.get(LEASE_KEY)
            assert lease is not None
            assert lease["spec"]["holderIdentity"] == candidates[won.index(True)].identity

    asyncio.run(scenario())


def taken(log: str) -> int:
    return log.count("operator lease taken")


def test_processes_sharing_a_database_hand_the_lease_over(tmp_path: Path) -> None:
    url = database_for_new_wharf()
    shared = tmp_path / "shared"
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running_wharf(shared, database_url=url, integrated=True))
        second = stack.enter_context(running_wharf(shared, database_url=url, integrated=True))
        admin = Cluster(second, tmp_path).admin
        lease = admin.get(LEASE_PATH)
        assert lease.status_code == 200, lease.text
        # The first to start holds it; the second only follows.
        assert taken(first.log()) == 1 and taken(second.log()) == 0
        holder = lease.json()["spec"]["holderIdentity"]
        assert lease.json()["spec"]["leaseDurationSeconds"] == Leadership.DURATION_SECONDS

        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=30) == 0
        assert "operator lease released" in first.log()
        wait_until(lambda: taken(second.log()) == 1, timeout=Leadership.RETRY_SECONDS + 10)
        after = admin.get(LEASE_PATH).json()["spec"]
        assert after["holderIdentity"] not in ("", holder)
        assert after["leaseTransitions"] == 1
