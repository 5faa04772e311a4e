"""The composition root: reads the settings, builds every part once, and serves them."""

from __future__ import annotations

import asyncio
import logging
import signal
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
from .db.database import Database, open_database, sqlite_url
from .db.objects import ObjectStore
from .readiness import Readiness, storage_check
from .registry import app as registry_app
from .registry import token_endpoint
from .registry.access import AllowAll, Authorizer
from .registry.cluster_access import ClusterAccess
from .registry.context import Registry
from .registry.metadata import RegistryMetadata
from .registry.publish import LocalTags, Publisher
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
    registry: web.Application
    api: web.Application
    database: Database


async def build_apps(settings: Settings) -> Apps:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings.database_url or sqlite_url(settings.data_dir.resolve()))
    await database.migrate()
    objects = ObjectStore(database, settings.retained_events)
    htpasswd = Htpasswd(settings.data_dir / "auth" / "htpasswd")
    authenticator = Authenticator(objects, htpasswd, settings.token_lifetime)
    rbac = RbacAuthorizer(objects)
    await bootstrap.reconcile_rbac(objects)
    await bootstrap.ensure_namespaces(objects)
    password = bootstrap.ensure_kubeadmin(htpasswd, settings.data_dir)
    if password is not None:
        # Printed once, on the first start; it is also kept in the data directory.
        print(f"kubeadmin password: {password}", flush=True)

    addresses = RouteAddresses(objects, settings.internal_address)

    registry_metrics = metrics.RegistryMetrics()
    store = cast(BlobStore, metrics.MeasuredStore(build_store(settings), registry_metrics))
    metadata = RegistryMetadata(database)
    registry_web = web.Application()
    registry_web.router.add_get("/healthz", healthz)
    database_ready = partial(database.probe, 2.0)
    registry_ready = Readiness(
        "registry", {"database": database_ready, "storage": storage_check(store.ready)}
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
    registry = Registry(metadata, store, Uploads(metadata, store), authorizer, publisher)
    registry_app.install(registry_web, registry)
    registry_web[metrics.METRICS] = registry_metrics
    registry_web.middlewares.append(metrics.in_flight(registry_metrics))
    registry_web.on_cleanup.append(lambda _app: store.close())
    logs.install(registry_web)
    registry_web.cleanup_ctx.append(
        registry_app.sweeper(settings.sweep_interval, settings.upload_idle)
    )

    api_web = web.Application()
    kinds = build_kinds(objects, authenticator, rbac, addresses.addresses)
    install_api(api_web, Api(objects, kinds, authenticator, rbac), authenticator)
    api_web.router.add_get("/readyz", Readiness("api", {"database": database_ready}).handle)
    api_metrics = metrics.ApiMetrics()
    api_web[metrics.METRICS] = api_metrics
    database.timed = lambda kind, seconds: api_metrics.database.labels(kind).observe(seconds)
    logs.install(api_web)
    # The registry's Config: bootstrapped and applied now; its loops run with the apps.
    await operator.install(registry_web, api_web, objects, settings)
    return Apps(registry_web, api_web, database)


async def _start(
    settings: Settings,
    app: web.Application,
    host: str,
    port: int,
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
    await web.TCPSite(runner, host, port, backlog=1024, ssl_context=context).start()
    return runner


async def serve(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format == "json")
    # File work (fsync, rename, hashing) runs in threads: more than the default handful, so
    # that many concurrent uploads do not queue behind each other's fsyncs.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    apps = await build_apps(settings)
    certificates = Certificates(settings.data_dir / "tls")
    public = (settings.public_host or "").rsplit(":", 1)[0]
    certificates.ensure([settings.api_host, settings.listen_host, public])
    registry_context = certificates.server_context() if settings.registry_tls else None
    runners = [
        await _start(
            settings, apps.registry, settings.listen_host, settings.listen_port, registry_context
        ),
        await _start(
            settings,
            apps.api,
            settings.api_host,
            settings.api_port,
            certificates.server_context(),
        ),
    ]
    scheme = "https" if settings.registry_tls else "http"
    log.info(
        "serving",
        registry=f"{scheme}://{settings.listen_host}:{settings.listen_port}",
        api=f"https://{settings.api_host}:{settings.api_port}",
        data_dir=str(settings.data_dir),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await _stop(apps, runners, settings.shutdown_timeout)
    await apps.database.dispose()
    log.info("stopped")


async def _stop(apps: Apps, runners: list[web.AppRunner], deadline: float) -> None:
    """Stop taking connections, let the requests in flight finish (until the deadline), then
    close everything. aiohttp's own cleanup stops reading request bodies at once, which would
    cut every upload in progress: the wait comes first."""
    for runner in runners:
        for site in list(runner.sites):
            await site.stop()
    await end_watches(apps.api)  # a watch lasts until its client or the server ends it
    tallies = [apps.registry[logs.IN_FLIGHT], apps.api[logs.IN_FLIGHT]]
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
