"""The registry operator: `configs.imageregistry.operator.openshift.io/cluster` configures the
running registry (wharf.operator.controller), and every process serving /v2/ follows it
(wharf.operator.follower).

The composition root makes one call, `install`, once both applications exist; it bootstraps
the Config and the ImagePruner, applies them before anything is served, and ties the loops to
the applications' lifetimes (started with them, stopped at their cleanup)."""

from __future__ import annotations

import structlog
from aiohttp import web

from ..db.objects import ObjectStore
from ..registry import controls as registry_controls
from ..settings import Settings
from ..storage.base import BlobStore
from ..tls import Certificates
from .config import CONFIG_KEY, settings_for
from .controller import Operator, Replicas
from .follower import ConfigFollower, Report
from .leadership import Leadership
from .looping import running
from .prune_job import ScheduledPrune
from .storage_switch import SWITCH

log = structlog.get_logger("wharf.operator")

__all__ = ["ConfigFollower", "Leadership", "Operator", "follow", "install", "supervising"]


def prune_job(objects: ObjectStore, settings: Settings) -> ScheduledPrune:
    """The ImagePruner's scheduled prune (of image streams and Images: a registry without
    logins keeps its tags outside any stream, and the prune leaves them alone)."""

    async def store() -> BlobStore:
        from ..server import build_store  # the composition root's, made when a prune needs it

        # The storage the registry serves from now, which the Config may have switched.
        config = await objects.get(CONFIG_KEY)
        in_use = ((config or {}).get("status") or {}).get("storage")
        return build_store(settings_for(settings, in_use) if in_use else settings)

    return ScheduledPrune(objects, store)


async def follow(
    registry: web.Application, objects: ObjectStore, report: Report | None = None
) -> ConfigFollower:
    """The Config's run-time settings on `registry` (a process that serves /v2/); `report`
    is told every generation applied."""
    controls = registry_controls.Controls()
    registry_controls.install(registry, controls)
    follower = ConfigFollower(objects, controls, registry.get(SWITCH), report)
    await follower.load()
    registry.cleanup_ctx.append(running(follower.follow, "follower"))
    return follower


async def install(
    registry: web.Application,
    api: web.Application,
    objects: ObjectStore,
    settings: Settings,
    leadership: Leadership,
) -> Operator:
    follower = await follow(registry, objects)
    operator = Operator(
        objects,
        settings,
        follower,
        Certificates(settings.data_dir / "tls"),
        prune_job=prune_job(objects, settings),
        leadership=leadership,
    )
    await operator.bootstrap()
    await follower.load()
    try:
        await leadership.claim()
        await operator.reconcile()  # routes and bucket before the first request
    except Exception:
        log.exception("first reconcile failed; the operator's loop tries again")
    api.cleanup_ctx.append(running(operator.run, "reconcile"))
    return operator


async def supervising(
    objects: ObjectStore, settings: Settings, replicas: Replicas, leadership: Leadership
) -> Operator:
    """The operator of a supervisor of worker processes: `spec.replicas` is their number. The
    workers follow the Config themselves; the first reconcile starts them."""
    operator = Operator(
        objects,
        settings,
        None,
        Certificates(settings.data_dir / "tls"),
        replicas=replicas,
        prune_job=prune_job(objects, settings),
        leadership=leadership,
    )
    await operator.bootstrap()
    try:
        await leadership.claim()
        await operator.reconcile()
    except Exception:
        log.exception("first reconcile failed; the operator's loop tries again")
    return operator
