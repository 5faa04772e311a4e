"""The operator: makes the running registry match `configs.imageregistry.operator.openshift.io/
cluster` and reports back in its status, in the ImagePruner's and in the ClusterOperator
`image-registry`. One loop, woken by the object store's watch of what it reconciles (and every
RESYNC_SECONDS, to notice drift outside the cluster, such as a bucket changed in S3)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from functools import partial
from importlib import metadata
from typing import Any, Protocol

import structlog

from .. import logs
from ..apiserver import bootstrap
from ..apiserver.meta import Object, new_uid, now
from ..apiserver.operator_kinds import CLUSTER_OPERATOR, CONFIG, GROUP, IMAGE_PRUNER
from ..db.objects import AlreadyExists, Key, ObjectStore
from ..registry.forget import forget_stored
from ..settings import Settings
from ..storage.filesystem import FilesystemBlobStore
from ..tls import Certificates
from . import s3 as s3_storage
from .config import (
    CONFIG_KEY,
    PRUNER_KEY,
    RegistrySpec,
    first_config,
    first_pruner,
    storage_of,
)
from .follower import ConfigFollower
from .leadership import Leadership
from .looping import again_and_again
from .pruning import PruneJob, PruneOutcome, pruner_conditions
from .routes import (
    NAMESPACE,
    ROUTES,
    SECRETS,
    reconcile_certificates,
    reconcile_routes,
    wanted_routes,
)
from .s3 import Condition, StorageError
from .status import Health, merged, registry_conditions, same_status

# The operator's own logger: its level is the Config's operatorLogLevel (the registry's follow
# logLevel).
OPERATOR_LOGGER = "wharf.operator.controller"
log = structlog.get_logger(OPERATOR_LOGGER)

CLUSTER_OPERATOR_NAME = "image-registry"
CLUSTER_OPERATOR_KEY = Key(CLUSTER_OPERATOR.resource, "", CLUSTER_OPERATOR_NAME)
WATCHED = (CONFIG.resource, IMAGE_PRUNER.resource, CLUSTER_OPERATOR.resource, ROUTES, SECRETS)


def _version() -> str:
    try:
        return metadata.version("wharf")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class Replicas(Protocol):
    """The seam for issue 10: who runs the registry's worker processes. `scale` is asked for
    `spec.replicas` at every reconcile; `ready` counts the processes serving now."""

    def ready(self) -> int: ...

    async def scale(self, wanted: int) -> None: ...

    async def wait_applied(self, generation: int, timeout: float) -> None:
        """Return once the processes serve `generation` of the Config (or `timeout` passed)."""
        ...


class InProcess:
    """The registry served by this one process: one replica, none while Removed. Scaling is
    not built yet (issue 10): the operator reports the difference as Progressing."""

    def __init__(self, follower: ConfigFollower) -> None:
        self.follower = follower

    def ready(self) -> int:
        return 0 if self.follower.controls.removed else 1

    async def scale(self, wanted: int) -> None:
        return None

    async def wait_applied(self, generation: int, timeout: float) -> None:
        await self.follower.wait_applied(generation, timeout)


class Operator:
    RESYNC_SECONDS = 30.0
    # How long a reconcile waits for this process's registry to apply a new generation.
    APPLY_SECONDS = 5.0

    def __init__(
        self,
        objects: ObjectStore,
        settings: Settings,
        follower: ConfigFollower | None,
        certificates: Certificates,
        replicas: Replicas | None = None,
        prune_job: PruneJob | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.objects = objects
        self.settings = settings
        self.follower = follower
        self.certificates = certificates
        if replicas is None:
            assert follower is not None, "an operator without replicas serves them itself"
            replicas = InProcess(follower)
        self.replicas = replicas
        self.prune_job = prune_job  # issue 12 plugs the prune in here (wharf.operator.pruning)
        self.last_prune: PruneOutcome | None = None
        self.public_host = settings.public_host or settings.internal_address
        self._log_level = ""
        # Processes sharing a database each run an operator; the holder of the lease manages
        # what they share (routes, storage, status, the pruner), every one what is its own
        # (its workers, its certificates, its log level). None: this operator is the only one.
        self.leadership = leadership

    @property
    def leading(self) -> bool:
        return self.leadership is None or self.leadership.leading

    # First start

    async def bootstrap(self) -> None:
        """The Config and the ImagePruner, with defaults, when they do not exist."""
        for key in (CONFIG_KEY, PRUNER_KEY):
            if await self.objects.get(key) is None:
                made = first_config(self.settings) if key == CONFIG_KEY else first_pruner()
                with contextlib.suppress(AlreadyExists):  # another process made it first
                    async with self.objects.transaction() as tx:
                        await tx.create(key, made)
                    log.info("created", resource=key.resource, name=key.name)
        await bootstrap.ensure_route_readable(self.objects)

    # Reconcile

    async def reconcile(self) -> None:
        await self.bootstrap()  # a deleted Config or ImagePruner is made again
        config = await self.objects.get(CONFIG_KEY)
        assert config is not None
        spec = RegistrySpec.parse(config)
        if spec.operator_log_level != self._log_level:
            logs.set_level(spec.operator_log_level, OPERATOR_LOGGER)
            self._log_level = spec.operator_log_level
        log.debug("reconciling", generation=spec.generation, state=spec.management_state)
        status = dict(config.get("status") or {})
        if not self.leading:
            if spec.management_state != "Unmanaged":
                await self._manage_own(spec)
            return
        if spec.management_state == "Unmanaged":
            health = Health("Unmanaged", spec.replicas, self.replicas.ready())
            storage_conditions = [
                Condition(**c) for c in _conditions_as_dataclass(status, _STORAGE_TYPES)
            ]
        else:
            health, storage_conditions = await self._manage(spec, config)
        await self.replicas.wait_applied(spec.generation, self.APPLY_SECONDS)
        health = Health(
            health.management_state,
            health.desired,
            # A registry removed serves nothing, however many processes run.
            0 if spec.management_state == "Removed" else self.replicas.ready(),
            health.problems,
            health.errors,
            health.pending,
        )
        conditions = registry_conditions(health) + storage_conditions
        await self._write_config_status(spec, conditions, health)
        await self._reconcile_pruner()
        await self._write_cluster_operator()

    async def _manage_own(self, spec: RegistrySpec) -> list[str]:
        """What every process of a group manages itself: its routes' certificates (in its
        data directory) and its workers; the problems found."""
        wanted = wanted_routes(spec, self.public_host)
        problems = await reconcile_certificates(self.objects, self.certificates, wanted)
        await self.replicas.scale(spec.replicas)
        return problems

    async def _manage(self, spec: RegistrySpec, config: Object) -> tuple[Health, list[Condition]]:
        errors: list[str] = []
        await reconcile_routes(self.objects, wanted_routes(spec, self.public_host))
        problems = await self._manage_own(spec)
        storage_conditions: list[Condition] = []
        pending = ""
        try:
            storage_conditions = await self._storage(spec, config)
        except StorageError as exc:
            errors.append(str(exc))
            storage_conditions = [Condition("StorageExists", False, "Error", str(exc))]
        if spec.switching_storage:
            if errors:
                pending = "the registry waits for the storage spec.storage names"
            else:
                await self._switch_storage(spec)
        health = Health(
            spec.management_state, spec.replicas, 0, tuple(problems), tuple(errors), pending
        )
        return health, storage_conditions

    async def _storage(self, spec: RegistrySpec, config: Object) -> list[Condition]:
        s3 = spec.s3
        management = spec.storage.get("managementState")
        if spec.management_state == "Removed":
            if management != "Managed":
                return []  # the user's storage: left as it is
            if not await self._still_removed(spec):
                return []
            if s3 is None:
                await FilesystemBlobStore(self.settings.data_dir).empty()
                removed = "The local storage was emptied"
            else:
                await s3_storage.remove(s3)
                removed = "The S3 bucket was removed"
            # What the registry recorded of the bytes goes with them: back to Managed, it
            # starts on empty storage rather than claiming blobs it no longer has.
            await forget_stored(self.objects.db)
            return [Condition("StorageExists", False, "Removed", removed)]
        if s3 is None:
            return [
                Condition("StorageExists", True, "Creation Successful", "Local storage is in use")
            ]
        decided, conditions = await s3_storage.provision(s3, management)
        if decided != management:
            await self._record_storage_management(decided)
        return conditions

    async def _switch_storage(self, spec: RegistrySpec) -> None:
        """Move the registry to the storage spec.storage names, on which it starts empty (as
        OpenShift's registry on new storage): once no process serves (they pause while
        status.storage names other storage than the spec), what the old storage held is
        forgotten, then status.storage names the new one and the processes serve from it."""
        await self.replicas.wait_applied(spec.generation, self.APPLY_SECONDS)
        await forget_stored(self.objects.db)
        async with self.objects.transaction() as tx:
            current = await tx.get(CONFIG_KEY)
            if current is None:
                return
            current.setdefault("status", {})["storage"] = copy.deepcopy(spec.storage)
            await tx.update(CONFIG_KEY, current)
        log.info("storage switched", generation=spec.generation)

    async def _still_removed(self, spec: RegistrySpec) -> bool:
        """Wait until no process serves the registry any more, then whether the Config still
        says Removed: storage is emptied only while nothing can write to it."""
        await self.replicas.wait_applied(spec.generation, self.APPLY_SECONDS)
        current = await self.objects.get(CONFIG_KEY)
        return current is not None and RegistrySpec.parse(current).management_state == "Removed"

    async def _record_storage_management(self, management: str) -> None:
        """Write the storage's managementState into the spec, as OpenShift's operator does."""
        async with self.objects.transaction() as tx:
            current = await tx.get(CONFIG_KEY)
            if current is None:
                return
            current["spec"].setdefault("storage", {})["managementState"] = management
            meta = current["metadata"]
            meta["generation"] = int(meta.get("generation", 1)) + 1
            await tx.update(CONFIG_KEY, current)

    async def _write_config_status(
        self, spec: RegistrySpec, conditions: list[Condition], health: Health
    ) -> None:
        async with self.objects.transaction() as tx:
            current = await tx.get(CONFIG_KEY)
            if current is None:
                return
            old = current.get("status") or {}
            status: Object = {
                "observedGeneration": spec.generation,
                "readyReplicas": health.ready,
                "conditions": merged(old.get("conditions") or [], conditions),
                "storageManaged": spec.storage.get("managementState") == "Managed",
                "storage": self._in_use(spec, old),
                "version": _version(),
            }
            if same_status(old, status):
                return
            current["status"] = status
            await tx.update(CONFIG_KEY, current)

    def _in_use(self, spec: RegistrySpec, status: Object) -> dict[str, Any]:
        """status.storage: the storage the registry serves from. None while Removed; the
        settings' at the first reconcile; the spec's once a switch is done, or after Removed
        (the storage is empty then, so there is nothing to forget)."""
        if spec.management_state == "Removed":
            return {}
        found = status.get("storage")
        if spec.management_state == "Managed" and not found:
            return copy.deepcopy(spec.storage)
        return dict(found) if isinstance(found, dict) and found else storage_of(self.settings)

    async def _reconcile_pruner(self) -> None:
        pruner = await self.objects.get(PRUNER_KEY)
        if pruner is None:
            return
        spec = pruner.get("spec") or {}
        if self.prune_job is not None:
            self.last_prune = await self.prune_job.run_due(spec) or self.last_prune
        conditions = pruner_conditions(spec, self.prune_job, self.last_prune)
        async with self.objects.transaction() as tx:
            current = await tx.get(PRUNER_KEY)
            if current is None:
                return
            old = current.get("status") or {}
            status = {
                "observedGeneration": int(current["metadata"].get("generation", 1)),
                "conditions": merged(old.get("conditions") or [], conditions),
            }
            if not same_status(old, status):
                current["status"] = status
                await tx.update(PRUNER_KEY, current)

    async def _write_cluster_operator(self) -> None:
        config = await self.objects.get(CONFIG_KEY) or {}
        registry = {c["type"]: c for c in (config.get("status") or {}).get("conditions") or []}
        summary = []
        for kind in ("Available", "Progressing", "Degraded"):
            found = registry.get(kind, {})
            summary.append(
                Condition(
                    kind,
                    found.get("status") == "True",
                    found.get("reason", ""),
                    found.get("message", ""),
                )
            )
        async with self.objects.transaction() as tx:
            current = await tx.get(CLUSTER_OPERATOR_KEY)
            fresh = current is None
            if current is None:
                current = {
                    "apiVersion": CLUSTER_OPERATOR.api_version,
                    "kind": CLUSTER_OPERATOR.kind,
                    "metadata": {
                        "name": CLUSTER_OPERATOR_NAME,
                        "uid": new_uid(),
                        "creationTimestamp": now(),
                        "generation": 1,
                    },
                    "spec": {},
                }
            old = copy.deepcopy(current.get("status") or {})
            status = {
                "conditions": merged(old.get("conditions") or [], summary),
                "versions": [{"name": "operator", "version": _version()}],
                "relatedObjects": [
                    {"group": GROUP, "resource": "configs", "name": "cluster"},
                    {"group": GROUP, "resource": "imagepruners", "name": "cluster"},
                    {"group": "", "resource": "namespaces", "name": NAMESPACE},
                ],
            }
            if not fresh and same_status(old, status):
                return
            current["status"] = status
            if fresh:
                # Another operator (a replica beside this one) may have made it since the read:
                # its summary stands until the next reconcile.
                with contextlib.suppress(AlreadyExists):
                    await tx.create(CLUSTER_OPERATOR_KEY, current)
            else:
                await tx.update(CLUSTER_OPERATOR_KEY, current)

    # The loop

    async def run(self) -> None:
        """Reconcile whenever something watched changes, or this process becomes the lease's
        holder; never ends by itself."""
        wake = asyncio.Event()
        version = await self.objects.latest_version(list(WATCHED))

        async def watch() -> None:
            async for event in self.objects.watch(version, list(WATCHED)):
                if event.key.resource == SECRETS and event.key.namespace != NAMESPACE:
                    continue
                wake.set()

        watcher = asyncio.create_task(again_and_again(watch, "watch"))
        tasks = [watcher]
        if self.leadership is not None:
            keep = partial(self.leadership.keep, wake.set)
            tasks.append(asyncio.create_task(again_and_again(keep, "leadership")))
        try:
            while True:
                try:
                    await self.reconcile()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reconcile failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.RESYNC_SECONDS):
                        await wake.wait()
                wake.clear()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


_STORAGE_TYPES = (
    "StorageExists",
    "StorageTagged",
    "StorageEncrypted",
    "StoragePublicAccessBlocked",
    "StorageIncompleteUploadCleanupEnabled",
)


def _conditions_as_dataclass(status: Object, types: tuple[str, ...]) -> list[dict[str, Any]]:
    """The conditions of `types` in `status`, as Condition's fields (Unmanaged: kept)."""
    return [
        {
            "type": c["type"],
            "status": c.get("status") == "True",
            "reason": c.get("reason", ""),
            "message": c.get("message", ""),
        }
        for c in status.get("conditions") or []
        if c.get("type") in types
    ]
