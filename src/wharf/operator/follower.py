"""The registry side of the Config: every process that serves /v2/ follows the Config through
the object store's watch and applies what may change without a restart (read-only mode,
removal, redirects, request limits, the log level) to its own controls. A process of its own
needs nothing else of the operator, so registry workers can follow on their own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from .. import logs
from ..db.objects import ObjectStore
from ..registry.controls import Controls
from .config import CONFIG_KEY, RegistrySpec
from .storage_switch import StorageSwitch

log = structlog.get_logger("wharf.operator")

Report = Callable[[int], None]


# What a client is told while the registry changes storage.
SWITCHING_MESSAGE = (
    "the registry is switching to the storage in "
    "configs.imageregistry.operator.openshift.io/cluster: try again in a few seconds"
)


class ConfigFollower:
    def __init__(
        self,
        objects: ObjectStore,
        controls: Controls,
        storage: StorageSwitch | None = None,
        report: Report | None = None,
    ) -> None:
        self.objects = objects
        self.controls = controls
        self.storage = storage
        self.report = report  # told each generation applied (a worker tells its supervisor)
        self.applied_generation = 0
        self._applied = asyncio.Event()
        self._level = ""

    async def apply(self, spec: RegistrySpec) -> None:
        if spec.management_state != "Unmanaged":  # Unmanaged: left as it was
            controls = self.controls
            # A switch of storage: nothing is served while the operator forgets what the old
            # storage held; once status.storage names the new one, it is served from.
            controls.paused = SWITCHING_MESSAGE if spec.switching_storage else ""
            if self.storage is not None and not spec.switching_storage:
                await self.storage.follow(spec.in_use)
            controls.removed = spec.management_state == "Removed"
            controls.read_only = spec.read_only
            controls.redirect = not spec.disable_redirect
            for limiter, limits in ((controls.reads, spec.reads), (controls.writes, spec.writes)):
                limiter.update(limits.max_running, limits.max_in_queue, limits.max_wait)
            if spec.log_level != self._level:
                logs.set_level(spec.log_level)
                self._level = spec.log_level
        self.applied_generation = spec.generation
        if self.report is not None:
            self.report(spec.generation)
        log.debug("config applied", generation=spec.generation, state=spec.management_state)
        applied, self._applied = self._applied, asyncio.Event()
        applied.set()

    async def wait_applied(self, generation: int, timeout: float) -> bool:
        """Whether this process applied `generation` (or a later one) within `timeout`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.applied_generation < generation:
                    await self._applied.wait()
        return self.applied_generation >= generation

    async def load(self) -> None:
        """Apply the Config as it is now (at start, before serving)."""
        found = await self.objects.get(CONFIG_KEY)
        if found is not None:
            await self.apply(RegistrySpec.parse(found))

    async def follow(self) -> None:
        """Apply every change of the Config; never ends by itself."""
        version = await self.objects.latest_version([CONFIG_KEY.resource])
        await self.load()
        async for event in self.objects.watch(version, [CONFIG_KEY.resource]):
            if event.key != CONFIG_KEY or event.type == "DELETED":
                continue  # a deleted Config is made again by the operator, with defaults
            try:
                await self.apply(RegistrySpec.parse(event.object))
            except (KeyError, TypeError, ValueError):
                log.warning("config not applied: not valid", generation=event.resource_version)
