"""The registry's records in the database: repositories, blob links, manifests, tags, uploads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..db.engine import Database
from ..db.schema import (
    blobs,
    manifests,
    repositories,
    repository_blobs,
    repository_manifests,
    tag_events,
    uploads,
)
from ..oci.manifest import ParsedManifest
from .errors import RegistryError


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Referrer:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class TagEvent:
    digest: str
    created: datetime
    generation: int


class RegistryMetadata:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert
        # Repositories are never renamed or removed, so their ids can be remembered for good.
        self._repository_ids: dict[str, int] = {}

    def _insert_ignore(self, table: Any, **values: Any) -> Any:
        return self._insert(table).values(**values).on_conflict_do_nothing()

    # Repositories

    async def repository_id(self, name: str) -> int | None:
        known = self._repository_ids.get(name)
        if known is not None:
            return known
        async with self.db.read() as conn:
            found = await conn.scalar(select(repositories.c.id).where(repositories.c.name == name))
        if found is not None:
            self._repository_ids[name] = found
        return found

    async def ensure_repository(self, name: str) -> int:
        known = await self.repository_id(name)
        if known is not None:
            return known
        async with self.db.write() as conn:
            found = await self._ensure_repository(conn, name)
        self._repository_ids[name] = found
        return found

    async def _ensure_repository(self, conn: AsyncConnection, name: str) -> int:
        """The repository's id, creating it in `conn`'s transaction (remembered by the caller
        only once that commits, so a write that fails leaves no repository behind)."""
        known = self._repository_ids.get(name)
        if known is not None:
            return known
        await conn.execute(self._insert_ignore(repositories, name=name, created_at=utcnow()))
        found = await conn.scalar(select(repositories.c.id).where(repositories.c.name == name))
        assert found is not None
        return int(found)

    # Blobs

    async def linked_blob_size(self, repository_id: int, digest: str) -> int | None:
        query = (
            select(blobs.c.size)
            .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
            .where(repository_blobs.c.repository_id == repository_id, blobs.c.digest == digest)
        )
        async with self.db.read() as conn:
            return await conn.scalar(query)

    async def link_blob(self, repository_id: int, digest: str, size: int) -> None:
        async with self.db.write() as conn:
            await self._link_blob(conn, repository_id, digest, size)

    async def _link_blob(
        self, conn: AsyncConnection, repository_id: int, digest: str, size: int
    ) -> None:
        await conn.execute(
            self._insert_ignore(blobs, digest=digest, size=size, created_at=utcnow())
        )
        await conn.execute(
            self._insert_ignore(repository_blobs, repository_id=repository_id, digest=digest)
        )

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(repository_blobs).where(
                    repository_blobs.c.repository_id == repository_id,
                    repository_blobs.c.digest == digest,
                )
            )
        return bool(result.rowcount)

    # Upload sessions

    async def create_upload(self, repository_id: int, upload_id: str) -> str:
        now = utcnow()
        async with self.db.write() as conn:
            await conn.execute(
                insert(uploads).values(
                    id=upload_id, repository_id=repository_id, size=0, created_at=now,
                    updated_at=now,
                )
            )
        return upload_id

    async def upload_size(self, upload_id: str, repository_id: int) -> int | None:
        query = select(uploads.c.size).where(
            uploads.c.id == upload_id, uploads.c.repository_id == repository_id
        )
        async with self.db.read() as conn:
            return await conn.scalar(query)

    async def advance_upload(self, upload_id: str, old_size: int, new_size: int) -> bool:
        """Record that the upload grew from `old_size`; False if another request moved it."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(uploads)
                .where(uploads.c.id == upload_id, uploads.c.size == old_size)
                .values(size=new_size, updated_at=utcnow())
            )
        return bool(result.rowcount)

    async def finish_upload(
        self, upload_id: str, repository_id: int, digest: str, size: int
    ) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(uploads).where(uploads.c.id == upload_id))
            await self._link_blob(conn, repository_id, digest, size)

    async def add_blob(self, name: str, digest: str, size: int) -> None:
        """Link a verified blob to repository `name`, which this creates if it must."""
        async with self.db.write() as conn:
            repository_id = await self._ensure_repository(conn, name)
            await self._link_blob(conn, repository_id, digest, size)
        self._repository_ids[name] = repository_id

    async def delete_upload(self, upload_id: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(delete(uploads).where(uploads.c.id == upload_id))
        return bool(result.rowcount)

    async def known_uploads(self, upload_ids: set[str]) -> set[str]:
        """Which of `upload_ids` are live sessions."""
        if not upload_ids:
            return set()
        async with self.db.read() as conn:
            rows = await conn.scalars(select(uploads.c.id).where(uploads.c.id.in_(upload_ids)))
            return set(rows)

    async def stale_uploads(self, before: datetime) -> list[str]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(uploads.c.id).where(uploads.c.updated_at < before))
            return [row.id for row in rows]

    # Manifests and tags

    def remember(self, name: str, repository_id: int) -> None:
        """Note a repository id once the transaction that made it has committed."""
        self._repository_ids[name] = repository_id

    async def store_manifest(
        self, conn: AsyncConnection, name: str, manifest: ParsedManifest
    ) -> int:
        """Store the manifest in repository `name` (made if it must be) within `conn`'s
        transaction, after checking that everything it refers to is there; return the
        repository's id (for `remember` once committed)."""
        digest = str(manifest.digest)
        repository_id = await self._ensure_repository(conn, name)
        await self._check_references(conn, repository_id, manifest)
        now = utcnow()
        await conn.execute(
            self._insert_ignore(
                manifests,
                digest=digest,
                media_type=manifest.media_type,
                payload=manifest.payload,
                subject=manifest.subject.digest if manifest.subject else None,
                artifact_type=_artifact_type(manifest),
                annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
                created_at=now,
            )
        )
        await conn.execute(
            self._insert_ignore(
                repository_manifests, repository_id=repository_id, digest=digest, created_at=now
            )
        )
        return repository_id

    async def _check_references(
        self, conn: AsyncConnection, repository_id: int, manifest: ParsedManifest
    ) -> None:
        if manifest.blobs:
            wanted = {d.digest for d in manifest.blobs}
            rows = await conn.execute(
                select(blobs.c.digest, blobs.c.size)
                .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
                .where(
                    repository_blobs.c.repository_id == repository_id, blobs.c.digest.in_(wanted)
                )
            )
            sizes = {row.digest: row.size for row in rows}
            for descriptor in manifest.blobs:
                if descriptor.digest not in sizes:
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN", detail={"digest": descriptor.digest}
                    )
                if sizes[descriptor.digest] != descriptor.size:
                    raise RegistryError(
                        "MANIFEST_INVALID",
                        f"size of {descriptor.digest} is {sizes[descriptor.digest]}, "
                        f"not {descriptor.size}",
                    )
        if manifest.children:
            wanted = {d.digest for d in manifest.children}
            rows = await conn.execute(
                select(manifests.c.digest, func.length(manifests.c.payload).label("size"))
                .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
                .where(
                    repository_manifests.c.repository_id == repository_id,
                    manifests.c.digest.in_(wanted),
                )
            )
            sizes = {row.digest: row.size for row in rows}
            for descriptor in manifest.children:
                if descriptor.digest not in sizes:
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN", detail={"digest": descriptor.digest}
                    )

    async def manifest(
        self, repository_id: int, reference: str, by_digest: bool
    ) -> StoredManifest | None:
        digest = reference if by_digest else await self.tag_head(repository_id, reference)
        if digest is None:
            return None
        query = (
            select(manifests.c.media_type, manifests.c.payload)
            .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
            .where(
                repository_manifests.c.repository_id == repository_id,
                manifests.c.digest == digest,
            )
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        return StoredManifest(digest, row.media_type, row.payload) if row else None

    async def tag_head(self, repository_id: int, tag: str) -> str | None:
        query = (
            select(tag_events.c.digest)
            .where(tag_events.c.repository_id == repository_id, tag_events.c.tag == tag)
            .order_by(tag_events.c.id.desc())
            .limit(1)
        )
        async with self.db.read() as conn:
            return await conn.scalar(query)

    async def tag_history(self, repository_id: int, tag: str) -> list[TagEvent]:
        query = (
            select(tag_events.c.digest, tag_events.c.created_at, tag_events.c.generation)
            .where(tag_events.c.repository_id == repository_id, tag_events.c.tag == tag)
            .order_by(tag_events.c.id.desc())
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return [TagEvent(r.digest, r.created_at, r.generation) for r in rows]

    async def delete_manifest(self, repository_id: int, digest: str) -> bool:
        """Remove the manifest from the repository, with every tag whose head it is."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(repository_manifests).where(
                    repository_manifests.c.repository_id == repository_id,
                    repository_manifests.c.digest == digest,
                )
            )
            if not result.rowcount:
                return False
            heads = await self._heads(conn, repository_id)
            doomed = [tag for tag, head in heads.items() if head == digest]
            if doomed:
                await conn.execute(
                    delete(tag_events).where(
                        tag_events.c.repository_id == repository_id, tag_events.c.tag.in_(doomed)
                    )
                )
            # Older history that named it can no longer be served either.
            await conn.execute(
                delete(tag_events).where(
                    tag_events.c.repository_id == repository_id, tag_events.c.digest == digest
                )
            )
        return True

    async def _heads(self, conn: AsyncConnection, repository_id: int) -> dict[str, str]:
        newest = (
            select(tag_events.c.tag, func.max(tag_events.c.id).label("id"))
            .where(tag_events.c.repository_id == repository_id)
            .group_by(tag_events.c.tag)
            .subquery()
        )
        rows = await conn.execute(
            select(tag_events.c.tag, tag_events.c.digest).join(
                newest, and_(tag_events.c.id == newest.c.id)
            )
        )
        return {row.tag: row.digest for row in rows}

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(tag_events).where(
                    tag_events.c.repository_id == repository_id, tag_events.c.tag == tag
                )
            )
        return bool(result.rowcount)

    async def tags(self, repository_id: int, limit: int | None, last: str | None) -> list[str]:
        query = (
            select(tag_events.c.tag)
            .where(tag_events.c.repository_id == repository_id)
            .group_by(tag_events.c.tag)
            .order_by(tag_events.c.tag)
        )
        if last:
            query = query.where(tag_events.c.tag > last)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.read() as conn:
            return list((await conn.scalars(query)).all())

    async def catalog(self, limit: int | None, last: str | None) -> list[str]:
        query = select(repositories.c.name).order_by(repositories.c.name)
        if last:
            query = query.where(repositories.c.name > last)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.read() as conn:
            return list((await conn.scalars(query)).all())

    async def referrers(self, repository_id: int, subject: str) -> Sequence[Referrer]:
        query = (
            select(
                manifests.c.digest,
                manifests.c.media_type,
                func.length(manifests.c.payload).label("size"),
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
            .where(
                repository_manifests.c.repository_id == repository_id,
                manifests.c.subject == subject,
            )
            .order_by(manifests.c.digest)
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return [
                Referrer(
                    r.digest,
                    r.media_type,
                    r.size,
                    r.artifact_type,
                    json.loads(r.annotations) if r.annotations else {},
                )
                for r in rows
            ]


def _artifact_type(manifest: ParsedManifest) -> str | None:
    # The referrers API reports artifactType, falling back to the config's media type.
    if manifest.artifact_type:
        return manifest.artifact_type
    return manifest.config.mediaType if manifest.config else None
