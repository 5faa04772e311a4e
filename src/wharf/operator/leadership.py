"""Which of the processes sharing one database runs the registry's operator: the holder of the
Lease `openshift-image-registry/cluster-image-registry-operator-lock`, as OpenShift's operator
elects its leader.

The holder renews the lease every few seconds. Another process takes it over once it has seen
the same lease record, unrenewed, for the lease's duration on its own clock (as client-go
decides: hosts' clocks need not agree), or at once when the holder released it on stopping.
Every write names the resourceVersion it read, so two candidates never both win."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from ..apiserver.coordination_kinds import LEASE
from ..apiserver.meta import Object, new_uid, now
from ..db.objects import AlreadyExists, Conflict, Key, ObjectStore
from .routes import NAMESPACE

log = structlog.get_logger("wharf.operator")

LEASE_KEY = Key(LEASE.resource, NAMESPACE, "cluster-image-registry-operator-lock")


def _micro_time() -> str:
    """metav1.MicroTime, as a Lease's times are written."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leadership:
    DURATION_SECONDS = 15
    RETRY_SECONDS = 3.0

    def __init__(
        self,
        objects: ObjectStore,
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.objects = objects
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self._clock = clock
        # The holder's record last seen (its resourceVersion) and when it was first seen.
        self._observed: tuple[str, float] | None = None
        # When this process last wrote the lease as its holder.
        self._renewed_at: float | None = None

    @property
    def leading(self) -> bool:
        """Held by this process: renewed within the lease's duration."""
        return (
            self._renewed_at is not None
            and self._clock() - self._renewed_at < self.DURATION_SECONDS
        )

    async def ours(self) -> bool:
        """Whether this process holds the lease, claiming it when it does not (for work done
        once a group, by the holder, in a process whose operator may not keep the lease)."""
        return self.leading or await self.claim()

    async def claim(self) -> bool:
        """Take the lease if it is free or lapsed, renew it if it is ours; whether it is ours."""
        moment = self._clock()
        lease = await self.objects.get(LEASE_KEY)
        if lease is None:
            return await self._write(None, moment)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        version = str(lease["metadata"]["resourceVersion"])
        if holder and holder != self.identity:
            if self._observed is None or self._observed[0] != version:
                self._observed = (version, moment)
            duration = spec.get("leaseDurationSeconds") or self.DURATION_SECONDS
            if moment - self._observed[1] < duration:
                self._renewed_at = None
                return False
            log.info("operator lease lapsed; taking it over", holder=holder)
        return await self._write(lease, moment)

    async def _write(self, lease: Object | None, moment: float) -> bool:
        spec: dict[str, Any] = dict((lease or {}).get("spec") or {})
        taken = spec.get("holderIdentity") != self.identity
        stamp = _micro_time()
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.DURATION_SECONDS,
            renewTime=stamp,
        )
        if taken:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (lease is not None)
        try:
            async with self.objects.transaction() as tx:
                if lease is None:
                    body = {
                        "apiVersion": LEASE.api_version,
                        "kind": LEASE.kind,
                        "metadata": {
                            "name": LEASE_KEY.name,
                            "namespace": LEASE_KEY.namespace,
                            "uid": new_uid(),
                            "creationTimestamp": now(),
                        },
                        "spec": spec,
                    }
                    await tx.create(LEASE_KEY, body)
                else:
                    version = int(lease["metadata"]["resourceVersion"])
                    await tx.update(LEASE_KEY, {**lease, "spec": spec}, expected_version=version)
        except (AlreadyExists, Conflict):  # another process wrote it first
            self._renewed_at = None
            return False
        if taken:
            log.info("operator lease taken", identity=self.identity)
        self._renewed_at = moment
        return True

    async def keep(self, gained: Callable[[], None]) -> None:
        """Claim again and again; `gained` is called when this process becomes the holder.
        Cancelled (the process stopping), it releases a lease it holds, so that another
        process takes it at once rather than after the lease's duration."""
        try:
            while True:
                was = self.leading
                if await self.claim() and not was:
                    gained()
                await asyncio.sleep(self.RETRY_SECONDS)
        except asyncio.CancelledError:
            if self.leading:
                with contextlib.suppress(Exception):
                    await self.release()
            raise

    async def release(self) -> None:
        lease = await self.objects.get(LEASE_KEY)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        spec = {**lease["spec"], "holderIdentity": ""}
        version = int(lease["metadata"]["resourceVersion"])
        async with self.objects.transaction() as tx:
            await tx.update(LEASE_KEY, {**lease, "spec": spec}, expected_version=version)
        self._renewed_at = None
        log.info("operator lease released")
