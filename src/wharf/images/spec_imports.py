"""Spec tags that import: a tag whose `from` is an image in another registry is imported when
it is written (soon after, in the background, as OpenShift's import controller does), and again
at every interval when its `importPolicy.scheduled` is set, adding a tag event when the
upstream digest changed. The scheduled loop runs in one process of a host group (where the
operator runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from ..db.objects import ObjectStore
from ..upstream.client import UpstreamError
from ..upstream.reference import RemoteReference
from .history import tags_of
from .importing import (
    IMPORT_MODES,
    LEGACY,
    Fetcher,
    Refusal,
    Wanted,
    external_source,
    pending,
    record_failure,
    run_stored,
    secrets_of,
    store,
    streams_with_imports,
)
from .streams import IMAGE_STREAMS, stream_key

log = structlog.get_logger("wharf.import")

Object = dict[str, Any]
OwnHosts = Callable[[], Awaitable[set[str]]]


async def _no_hosts() -> set[str]:
    return set()


class SpecTagImports:
    def __init__(self, objects: ObjectStore, own_hosts: OwnHosts = _no_hosts) -> None:
        self.objects = objects
        self.own_hosts = own_hosts
        self._tasks: set[asyncio.Task[None]] = set()

    def soon(self, namespace: str, name: str) -> None:
        """Import the stream's spec tags not tried since they changed, in the background."""
        task = asyncio.get_running_loop().create_task(self._guarded(namespace, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop the imports still running (the server stops)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _guarded(self, namespace: str, name: str) -> None:
        try:
            await self.import_tags(namespace, name, scheduled=False)
        except Exception:
            log.exception("import of spec tags failed", namespace=namespace, stream=name)

    async def run_scheduled(self, interval: float, ours: Callable[[], Awaitable[bool]]) -> None:
        """Every `interval` seconds, check every stream's scheduled (and untried) spec tags,
        when `ours()` says this process is the one of its group that does."""
        while True:
            await asyncio.sleep(interval)
            if await ours():
                await self.check_all()

    async def check_all(self) -> None:
        streams, _ = await self.objects.items(IMAGE_STREAMS)
        for stream in streams_with_imports(streams):
            meta = stream["metadata"]
            try:
                await self.import_tags(meta["namespace"], meta["name"], scheduled=True)
            except Exception:
                log.exception("scheduled import failed", namespace=meta["namespace"])

    async def import_tags(self, namespace: str, name: str, *, scheduled: bool) -> int:
        """Import the stream's untried spec tags (and, when `scheduled`, those that ask to be
        checked at every interval); returns how many were tried."""
        stream = await self.objects.get(stream_key(namespace, name))
        if stream is None:
            return 0
        repository = f"{namespace}/{name}"
        history = await self.objects.db.run_read(lambda conn: tags_of(conn, repository))
        todo = pending(stream, history)
        if scheduled:
            named = {t.get("name") for t in todo}
            todo += [
                t
                for t in (stream.get("spec") or {}).get("tags") or []
                if (t.get("importPolicy") or {}).get("scheduled") is True
                and t.get("name") not in named
            ]
        hosts = await self.own_hosts()
        sources = [(t, s) for t in todo if (s := external_source(t, hosts)) is not None]
        if not sources:
            return 0
        secrets = await secrets_of(self.objects, namespace)
        async with aiohttp.ClientSession() as session:
            fetcher = Fetcher(session, secrets)
            for spec_tag, source in sources:
                events = history.get(str(spec_tag.get("name"))) or []
                head = events[0].digest if events else None
                await self._one(fetcher, namespace, name, spec_tag, source, head)
        return len(sources)

    async def _one(
        self,
        fetcher: Fetcher,
        namespace: str,
        name: str,
        spec_tag: Object,
        source: str,
        head: str | None,
    ) -> None:
        tag = str(spec_tag.get("name"))
        policy = spec_tag.get("importPolicy") or {}
        mode = policy.get("importMode") or LEGACY
        try:
            reference = RemoteReference.parse(source)
            if mode not in IMPORT_MODES:
                raise ValueError(f"unsupported import mode {mode!r}")
        except ValueError as exc:
            await self._failed(namespace, name, tag, "Invalid", str(exc))
            return
        try:
            fetched = await fetcher.fetch(Wanted(reference, policy.get("insecure") is True, mode))
            await run_stored(
                self.objects,
                lambda tx: store(tx, namespace, name, tag, fetched, None, create=False),
            )
        except (UpstreamError, Refusal) as exc:
            await self._failed(namespace, name, tag, exc.reason, exc.message)
            return
        if fetched.digest != head:
            log.info("imported", namespace=namespace, stream=name, tag=tag, image=fetched.digest)

    async def _failed(self, namespace: str, name: str, tag: str, reason: str, message: str) -> None:
        log.warning("import failed", namespace=namespace, stream=name, tag=tag, reason=reason)
        await run_stored(
            self.objects, lambda tx: record_failure(tx, namespace, name, tag, reason, message)
        )
