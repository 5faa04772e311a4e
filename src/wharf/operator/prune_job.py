"""The ImagePruner's prune, run by the operator in its own process on the pruner's cron
`schedule`: the plan `wharf adm prune images` makes (wharf.images.prune, with the pruner's
keepTagRevisions, keepYoungerThanDuration and ignoreInvalidImageReferences), carried out on the
database and the blob store directly, in the same order: tag history items, Images, layer and
manifest links, blobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from cronsim import CronSim, CronSimError

from ..apiserver.meta import Object
from ..db.objects import Key, NotFound, ObjectStore
from ..images.history import keep_only, tags_of_many
from ..images.prune import InvalidReferences, Options, Plan, plan, summary
from ..images.streams import IMAGE_STREAMS, IMAGES, stream_key, touch
from ..kube import duration_seconds, format_time
from ..registry.collect import Collector
from ..registry.metadata import RegistryMetadata
from ..storage.base import BlobStore
from .pruning import PruneOutcome

log = structlog.get_logger("wharf.operator")

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class ScheduledPrune:
    """A PruneJob (wharf.operator.pruning): due at each time the schedule names after the
    previous run (or after the operator started)."""

    def __init__(
        self, objects: ObjectStore, store: Callable[[], Awaitable[BlobStore]], clock: Clock = _now
    ) -> None:
        self.objects = objects
        self._store = store
        self._clock = clock
        self._since = clock().replace(second=0, microsecond=0)
        self._last: PruneOutcome | None = None

    def _due(self, spec: Object) -> datetime | None:
        if spec.get("suspend"):
            return None
        try:
            times = CronSim(
                str(spec.get("schedule") or "0 0 * * *"), self._since.replace(tzinfo=None)
            )
            return next(times).replace(tzinfo=UTC)
        except (CronSimError, StopIteration):
            return None

    def next_run(self, spec: Object) -> str | None:
        due = self._due(spec)
        return format_time(due) if due is not None else None

    async def run_due(self, spec: Object) -> PruneOutcome | None:
        due = self._due(spec)
        now = self._clock()
        if due is None or now < due:
            return self._last
        self._since = now
        try:
            message = await self.run(spec, now)
            self._last = PruneOutcome(True, message, format_time(self._clock()))
        except Exception as exc:
            log.exception("scheduled prune failed")
            self._last = PruneOutcome(False, f"{type(exc).__name__}: {exc}", format_time(now))
        log.info("scheduled prune", succeeded=self._last.succeeded, result=self._last.message)
        return self._last

    async def run(self, spec: Object, now: datetime) -> str:
        """One prune with the pruner's settings; its summary."""
        options = Options(
            keep_tag_revisions=int(spec.get("keepTagRevisions", 3)),
            keep_younger_than=timedelta(
                seconds=duration_seconds(str(spec.get("keepYoungerThanDuration") or "60m"))
            ),
            ignore_invalid_refs=bool(spec.get("ignoreInvalidImageReferences", True)),
        )
        images = (await self.objects.page(IMAGES, None)).items
        streams = await self._streams()
        try:
            found = plan(images, streams, options, now)
        except InvalidReferences as exc:
            raise RuntimeError(f"invalid image references: {exc}") from None
        await self._carry_out(found, streams)
        return summary(found)

    async def _streams(self) -> list[Object]:
        """Every image stream with its tag history as `status.tags` (what the plan reads)."""
        stored = (await self.objects.page(IMAGE_STREAMS, None)).items
        names = [f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in stored]
        histories = await self.objects.db.run_read(lambda conn: tags_of_many(conn, names))
        found = []
        for stream, name in zip(stored, names, strict=True):
            tags = [
                {
                    "tag": tag,
                    "items": [
                        {"image": e.digest, "created": format_time(e.created)} for e in events
                    ],
                }
                for tag, events in histories.get(name, {}).items()
            ]
            found.append({**stream, "status": {"tags": tags}})
        return found

    async def _carry_out(self, found: Plan, streams: list[Object]) -> None:
        touched = {h.repository for h in found.history}
        for stream in streams:
            meta = stream["metadata"]
            repository = f"{meta['namespace']}/{meta['name']}"
            if repository not in touched:
                continue
            kept = {
                tag["tag"]: [(i["image"], i["created"]) for i in tag["items"]]
                for tag in found.kept_status(stream)["tags"]
            }
            key = stream_key(meta["namespace"], meta["name"])
            async with self.objects.transaction() as tx:
                current = await tx.get(key)
                if current is None:
                    continue
                if await tx.conn.run_sync(keep_only, repository, kept):
                    await tx.run_sync(touch, key, current)
        for name in found.images:
            try:
                async with self.objects.transaction() as tx:
                    await tx.delete(Key(IMAGES, "", name))
            except NotFound:
                pass
        metadata = RegistryMetadata(self.objects.db)
        for repository, digest in found.layer_links:
            repository_id = await metadata.repository_id(repository)
            if repository_id is not None:
                await metadata.unlink_blob(repository_id, digest)
        for repository, digest in found.manifest_links:
            repository_id = await metadata.repository_id(repository)
            if repository_id is not None:
                await metadata.delete_manifest(repository_id, digest)
        if found.blobs:
            store = await self._store()
            try:
                collector = Collector(self.objects.db, store)
                for digest in found.blobs:
                    await collector.delete_blob(digest)
            finally:
                await store.close()
