"""The composition root: reads the settings, builds every part once, and serves them."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import cast

import structlog
from aiohttp import web

from . import logs, metrics, operator
from .apiserver import bootstrap
from .apiserver.addresses import RouteAddresses
from .apiserver.app import build_kinds
from .apiserver.app import install as install_api
from .apiserver.context import Api
from .apiserver.rest import end_watches
from .auth.authenticator import Authenticator
from .auth.htpasswd import Htpasswd
from .auth.rbac import RbacAuthorizer
from .db.database import Database, open_database
from .db.objects import ObjectStore
from .images.spec_imports import SpecTagImports
from .operator.follower import Report
from .operator.looping import running
from .operator.storage_switch import SWITCH, StorageSwitch
from .readiness import Readiness, storage_check
from .registry import app as registry_app
from .registry import token_endpoint
from .registry.access import AllowAll, Authorizer
from .registry.blob_limits import BlobLimits, NoLimits, ProjectLimits
from .registry.cluster_access import ClusterAccess
from .registry.context import Registry
from .registry.metadata import RegistryMetadata
from .registry.publish import LocalTags, Publisher
from .registry.pullthrough import PullThrough
from .registry.stream_publisher import StreamPublisher
from .registry.token_endpoint import CLUSTER_ACCESS
from .registry.uploads import Uploads
from .settings import Settings
from .storage.base import BlobStore
from .storage.filesystem import FilesystemBlobStore
from .tls import Certificates

log = structlog.get_logger("wharf")


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok", headers={"Cache-Control": "no-cache"})


def build_store(settings: Settings) -> BlobStore:
    """The storage backend the settings name."""
    if settings.storage == "s3":
        from .storage.s3 import S3BlobStore

        return S3BlobStore(settings.s3)
    return FilesystemBlobStore(settings.data_dir)


@dataclass
class Apps:
    """The servers this process runs (by its role), and what they share."""

    registry: web.Application | None
    api: web.Application | None
    database: Database
    objects: ObjectStore

    @property
    def all(self) -> list[web.Application]:
        return [app for app in (self.registry, self.api) if app is not None]


async def prepare(settings: Settings) -> None:
    """What happens once per start, before any process serves: the schema brought up to date,
    the default roles and namespaces, kubeadmin's password and the serving certificates.
    Under the database's exclusive lock, so that replicas starting together do it in turn:
    those sharing a data directory would otherwise each make a CA of their own, and all but
    the last would serve a certificate that `ca.crt` no longer signs."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.database)
    try:
        async with database.exclusive():
            await database.migrate()
            objects = ObjectStore(database, settings.retained_events)
            await bootstrap.reconcile_rbac(objects)
            await bootstrap.ensure_namespaces(objects)
            _prepare_files(settings)
    finally:
        await database.dispose()


def _prepare_files(settings: Settings) -> None:
    if settings.serves_api:
        htpasswd = Htpasswd(settings.data_dir / "auth" / "htpasswd")
        password = bootstrap.ensure_kubeadmin(htpasswd, settings.data_dir)
        if password is not None:
            # Printed once, on the first start; it is also kept in the data directory.
            print(f"kubeadmin password: {password}", flush=True)
    public = (settings.public_host or "").rsplit(":", 1)[0]
    Certificates(settings.data_dir / "tls").ensure(
        [settings.api_host, settings.listen_host, public]
    )


async def build_apps(
    settings: Settings, *, operator_here: bool = True, report: Report | None = None
) -> Apps:
    """The servers of the settings' role. `operator_here`: this process also runs the
    registry's operator (one process of a group does; the others only follow its Config and
    `report` each generation they applied)."""
    database = open_database(settings.database)
    objects = ObjectStore(database, settings.retained_events)
    htpasswd = Htpasswd(settings.data_dir / "auth" / "htpasswd")
    authenticator = Authenticator(objects, htpasswd, settings.token_lifetime)
    rbac = RbacAuthorizer(objects)
    addresses = RouteAddresses(objects, settings.internal_address)
    database_ready = partial(database.probe, 2.0)
    api_web: web.Application | None = None
    if settings.serves_api:
        api_web = web.Application()
        kinds = build_kinds(objects, authenticator, rbac, addresses.addresses)
        install_api(api_web, Api(objects, kinds, authenticator, rbac), authenticator)
        api_web.router.add_get("/readyz", Readiness("api", {"database": database_ready}).handle)
        api_metrics = metrics.ApiMetrics()
        api_web[metrics.METRICS] = api_metrics
        database.timed = lambda kind, seconds: api_metrics.database.labels(kind).observe(seconds)
        logs.install(api_web)
    registry_web: web.Application | None = None
    if settings.serves_registry:
        registry_web = _registry_app(settings, database, objects, authenticator, rbac, addresses)
    leadership = operator.Leadership(objects)
    if registry_web is not None:
        if operator_here:
            # The registry's Config: bootstrapped and applied now; its loops run with the apps.
            await operator.install(
                registry_web, api_web or registry_web, objects, settings, leadership
            )
        else:
            await operator.follow(registry_web, objects, report)
    if operator_here and settings.import_interval > 0:
        # Scheduled imports: checked by the holder of the operator's lease, once for all the
        # processes sharing the database.
        imports = SpecTagImports(objects, partial(own_hosts, settings, addresses))
        home = api_web or registry_web
        assert home is not None
        scheduled = partial(imports.run_scheduled, settings.import_interval, leadership.ours)
        home.cleanup_ctx.append(running(scheduled, "imports"))
    return Apps(registry_web, api_web, database, objects)


def _registry_app(
    settings: Settings,
    database: Database,
    objects: ObjectStore,
    authenticator: Authenticator,
    rbac: RbacAuthorizer,
    addresses: RouteAddresses,
) -> web.Application:
    registry_metrics = metrics.RegistryMetrics()
    measured = metrics.MeasuredStore(build_store(settings), registry_metrics)
    store = cast(BlobStore, measured)
    metadata = RegistryMetadata(database)
    registry_web = web.Application()
    # The operator's Config may name other storage: followed without a restart.
    registry_web[SWITCH] = StorageSwitch(measured, settings, build_store)
    registry_web.router.add_get("/healthz", healthz)
    registry_ready = Readiness(
        "registry",
        {"database": partial(database.probe, 2.0), "storage": storage_check(store.ready)},
    )
    registry_web.router.add_get("/readyz", registry_ready.handle)
    if settings.auth:
        access = ClusterAccess(authenticator, rbac, settings.metrics_secret, objects)
        publisher: Publisher = StreamPublisher(
            metadata, objects, store, rbac, addresses.internal_address
        )
        registry_web[CLUSTER_ACCESS] = access
        registry_web.router.add_get("/openshift/token", token_endpoint.token)
        authorizer: Authorizer = access
    else:
        authorizer, publisher = AllowAll(), LocalTags(metadata)
    uploads = Uploads(metadata, store, settings.upload_lease_time)
    limits: BlobLimits = ProjectLimits(database) if settings.auth else NoLimits()
    pullthrough = PullThrough(
        metadata,
        uploads,
        store,
        objects if settings.auth else None,
        partial(own_hosts, settings, addresses),
        registry_metrics,
    )
    registry = Registry(
        metadata, store, uploads, authorizer, publisher, limits=limits, pullthrough=pullthrough
    )
    registry_app.install(registry_web, registry)
    registry_web[metrics.METRICS] = registry_metrics
    registry_web.middlewares.append(metrics.in_flight(registry_metrics))
    # Fetches from upstream end (their uploads aborted) before the store closes.
    registry_web.on_cleanup.append(lambda _app: pullthrough.close())
    registry_web.on_cleanup.append(lambda _app: store.close())
    logs.install(registry_web)
    registry_web.cleanup_ctx.append(
        registry_app.sweeper(settings.sweep_interval, settings.upload_idle)
    )
    registry_web.cleanup_ctx.append(registry_app.collector(settings.gc_interval, settings.gc_grace))
    return registry_web


_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


async def own_hosts(settings: Settings, addresses: RouteAddresses) -> set[str]:
    """The hosts this registry is reached at (its address, its route's host, the loopback
    names of its port when it listens there): pull-through never fetches from those."""
    found = await addresses.addresses()
    hosts = {found.internal, settings.internal_address}
    if found.public:
        hosts.add(found.public)
    if settings.listen_host in (*_LOOPBACK, "0.0.0.0", "::"):
        hosts.update(f"{host}:{settings.listen_port}" for host in _LOOPBACK)
    return hosts


async def _start(
    settings: Settings,
    app: web.Application,
    listener: socket.socket | tuple[str, int],
    context: ssl.SSLContext | None = None,
) -> web.AppRunner:
    # aiohttp calls the access logger once each answer is sent: one line, and the metrics.
    access = logging.getLogger("wharf.access")
    runner = web.AppRunner(
        app,
        access_log_class=logs.AccessLog,
        access_log=access,
        shutdown_timeout=settings.shutdown_timeout,
    )
    await runner.setup()
    site: web.BaseSite
    if isinstance(listener, socket.socket):
        site = web.SockSite(runner, listener, ssl_context=context)
    else:
        host, port = listener
        site = web.TCPSite(runner, host, port, backlog=1024, ssl_context=context)
    await site.start()
    return runner


# The listening sockets a supervisor bound and handed to its workers, by server.
Listeners = dict[str, socket.socket]


async def serve(
    settings: Settings, listeners: Listeners | None = None, report: Report | None = None
) -> None:
    """Serve until SIGTERM or SIGINT. Alone (no `listeners`), this process prepares the
    database, binds the addresses and runs the operator itself; as a worker of a supervisor,
    it serves on the sockets it was handed."""
    logs.configure(settings.log_level, settings.log_format == "json")
    # File work (fsync, rename, hashing) runs in threads: more than the default handful, so
    # that many concurrent uploads do not queue behind each other's fsyncs.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    if listeners is None:
        await prepare(settings)
    # A supervisor of workers runs the operator itself (wharf.workers).
    apps = await build_apps(settings, operator_here=listeners is None, report=report)
    certificates = Certificates(settings.data_dir / "tls")
    runners = []
    if apps.registry is not None:
        context = certificates.server_context() if settings.registry_tls else None
        where = (settings.listen_host, settings.listen_port)
        runners.append(
            await _start(settings, apps.registry, (listeners or {}).get("registry", where), context)
        )
    if apps.api is not None:
        where = (settings.api_host, settings.api_port)
        runners.append(
            await _start(
                settings,
                apps.api,
                (listeners or {}).get("api", where),
                certificates.server_context(),
            )
        )
    if listeners is None:
        log.info("serving", data_dir=str(settings.data_dir), **addresses(settings))
    else:
        log.info("worker serving")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await _stop(apps, runners, settings.shutdown_timeout)
    await apps.objects.watch_cache.close()  # its reader stops before the database closes
    await apps.database.dispose()
    if listeners is None:
        log.info("stopped")


def addresses(settings: Settings) -> dict[str, str]:
    """The URLs this role serves, for the log."""
    found = {}
    if settings.serves_registry:
        scheme = "https" if settings.registry_tls else "http"
        found["registry"] = f"{scheme}://{settings.listen_host}:{settings.listen_port}"
    if settings.serves_api:
        found["api"] = f"https://{settings.api_host}:{settings.api_port}"
    return found


async def _stop(apps: Apps, runners: list[web.AppRunner], deadline: float) -> None:
    """Stop taking connections, let the requests in flight finish (until the deadline), then
    close everything. aiohttp's own cleanup stops reading request bodies at once, which would
    cut every upload in progress: the wait comes first."""
    for runner in runners:
        for site in list(runner.sites):
            await site.stop()
    if apps.api is not None:
        await end_watches(apps.api)  # a watch lasts until its client or the server ends it
    tallies = [app[logs.IN_FLIGHT] for app in apps.all]
    log.info(
        "stopping",
        requests_in_flight=sum(t.count for t in tallies),
        deadline_seconds=deadline,
    )
    try:
        async with asyncio.timeout(deadline):
            await asyncio.gather(*(t.idle.wait() for t in tallies))
    except TimeoutError:
        log.warning("deadline passed", requests_cut=sum(t.count for t in tallies))
    await asyncio.gather(*(runner.cleanup() for runner in runners))
