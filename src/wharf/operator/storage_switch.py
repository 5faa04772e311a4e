"""The registry's blob store, replaced in a running process when the storage the Config says is
in use (`status.storage`) changes: the operator's switch of storage needs no restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from ..metrics import MeasuredStore
from ..settings import Settings
from ..storage.base import BlobStore
from .config import same_backend, settings_for, storage_of

log = structlog.get_logger("wharf.operator")


class StorageSwitch:
    """Builds the store a Config names and puts it in place of the one measured now."""

    def __init__(
        self, measured: MeasuredStore, settings: Settings, build: Callable[[Settings], BlobStore]
    ) -> None:
        self.measured = measured
        self.settings = settings
        self.build = build
        self.in_use: dict[str, Any] = storage_of(settings)  # what the process started with

    async def follow(self, storage: dict[str, Any]) -> None:
        """Serve from `storage` if that is other storage than this process serves from."""
        if not storage or same_backend(storage, self.in_use):
            return
        store = self.build(settings_for(self.settings, storage))
        old = self.measured.replace(store)
        self.in_use = dict(storage)
        log.info("storage switched", backend="s3" if "s3" in storage else "filesystem")
        close = getattr(old, "close", None)
        if close is not None:
            await close()


SWITCH = web.AppKey("storage_switch", StorageSwitch)
