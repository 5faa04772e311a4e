"""The composition root: reads the settings, builds every part once, and serves them."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog
from aiohttp import web

from .db.engine import Database, sqlite_url
from .registry import app as registry_app
from .registry.access import AllowAll
from .registry.context import Registry
from .registry.metadata import RegistryMetadata
from .registry.uploads import Uploads
from .storage.filesystem import FilesystemBlobStore

log = structlog.get_logger("wharf")


@dataclass(frozen=True)
class Settings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 5000
    data_dir: Path = field(default_factory=lambda: Path("wharf-data"))
    database_url: str | None = None
    upload_timeout: timedelta = timedelta(hours=1)
    sweep_interval: float = 60.0


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok", headers={"Cache-Control": "no-cache"})


async def build_app(settings: Settings) -> web.Application:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url or sqlite_url(settings.data_dir.resolve()))
    await database.migrate()
    store = FilesystemBlobStore(settings.data_dir)
    metadata = RegistryMetadata(database)
    registry = Registry(metadata, store, Uploads(metadata, store), AllowAll())
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    registry_app.install(app, registry)
    app.cleanup_ctx.append(registry_app.sweeper(settings.sweep_interval, settings.upload_timeout))

    async def close_database(_app: web.Application) -> None:
        await database.dispose()

    app.on_cleanup.append(close_database)
    return app


async def serve(settings: Settings) -> None:
    app = await build_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.listen_host, settings.listen_port, backlog=1024)
    await site.start()
    log.info("serving", registry=f"http://{settings.listen_host}:{settings.listen_port}",
             data_dir=str(settings.data_dir))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
