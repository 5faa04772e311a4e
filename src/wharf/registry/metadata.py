"""The registry's records in the database: repositories, blob links, manifests, tags, uploads.

Each operation is one plain function of a connection, run whole in a database thread
(`Database.run_read`, `Database.run_write`): one hop per request rather than one per statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

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
from ..db.statements import insert_ignore
from ..images.history import ensure_repository
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


def _head_query(repository_id: int, tag: str) -> Any:
    return (
        select(tag_events.c.digest)
        .where(tag_events.c.repository_id == repository_id, tag_events.c.tag == tag)
        .order_by(tag_events.c.id.desc())
        .limit(1)
    )


class RegistryMetadata:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Repositories are never renamed or removed, so their ids can be remembered for good.
        self._repository_ids: dict[str, int] = {}

    def remember(self, name: str, repository_id: int) -> None:
        """Note a repository id once the transaction that made it has committed."""
        self._repository_ids[name] = repository_id

    # Repositories

    async def repository_id(self, name: str) -> int | None:
        known = self._repository_ids.get(name)
        if known is not None:
            return known
        query = select(repositories.c.id).where(repositories.c.name == name)
        found: int | None = await self.db.run_read(lambda conn: conn.scalar(query), small=True)
        if found is not None:
            self._repository_ids[name] = found
        return found

    async def ensure_repository(self, name: str) -> int:
        known = await self.repository_id(name)
        if known is not None:
            return known
        found = await self.db.run_write(lambda conn: self._ensure_repository(conn, name))
        self.remember(name, found)
        return found

    def _ensure_repository(self, conn: Connection, name: str) -> int:
        """The repository's id, creating it in `conn`'s transaction (remembered by the caller
        only once that commits, so a write that fails leaves no repository behind)."""
        known = self._repository_ids.get(name)
        return known if known is not None else ensure_repository(conn, name)

    # Blobs

    async def linked_blob_size(self, repository_id: int, digest: str) -> int | None:
        query = (
            select(blobs.c.size)
            .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
            .where(repository_blobs.c.repository_id == repository_id, blobs.c.digest == digest)
        )
        size: int | None = await self.db.run_read(lambda conn: conn.scalar(query), small=True)
        return size

    async def link_blob(self, repository_id: int, digest: str, size: int) -> None:
        await self.db.run_write(lambda conn: self._link_blob(conn, repository_id, digest, size))

    def _link_blob(self, conn: Connection, repository_id: int, digest: str, size: int) -> None:
        conn.execute(insert_ignore(conn, blobs, digest=digest, size=size, created_at=utcnow()))
        conn.execute(
            insert_ignore(conn, repository_blobs, repository_id=repository_id, digest=digest)
        )

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        statement = delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id,
            repository_blobs.c.digest == digest,
        )
        return await self.db.run_write(lambda conn: bool(conn.execute(statement).rowcount))

    # Upload sessions

    async def create_upload(self, repository_id: int, upload_id: str) -> str:
        now = utcnow()
        statement = insert(uploads).values(
            id=upload_id, repository_id=repository_id, size=0, created_at=now, updated_at=now
        )
        await self.db.run_write(lambda conn: conn.execute(statement))
        return upload_id

    async def upload_size(self, upload_id: str, repository_id: int) -> int | None:
        query = select(uploads.c.size).where(
            uploads.c.id == upload_id, uploads.c.repository_id == repository_id
        )
        size: int | None = await self.db.run_read(lambda conn: conn.scalar(query), small=True)
        return size

    async def advance_upload(self, upload_id: str, old_size: int, new_size: int) -> bool:
        """Record that the upload grew from `old_size`; False if another request moved it."""
        statement = (
            update(uploads)
            .where(uploads.c.id == upload_id, uploads.c.size == old_size)
            .values(size=new_size, updated_at=utcnow())
        )
        return await self.db.run_write(lambda conn: bool(conn.execute(statement).rowcount))

    async def finish_upload(
        self, upload_id: str, repository_id: int, digest: str, size: int
    ) -> None:
        def finish(conn: Connection) -> None:
            conn.execute(delete(uploads).where(uploads.c.id == upload_id))
            self._link_blob(conn, repository_id, digest, size)

        await self.db.run_write(finish)

    async def add_blob(self, name: str, digest: str, size: int) -> None:
        """Link a verified blob to repository `name`, which this creates if it must."""

        def add(conn: Connection) -> int:
            repository_id = self._ensure_repository(conn, name)
            self._link_blob(conn, repository_id, digest, size)
            return repository_id

        self.remember(name, await self.db.run_write(add))

    async def delete_upload(self, upload_id: str) -> bool:
        statement = delete(uploads).where(uploads.c.id == upload_id)
        return await self.db.run_write(lambda conn: bool(conn.execute(statement).rowcount))

    async def known_uploads(self, upload_ids: set[str]) -> set[str]:
        """Which of `upload_ids` are live sessions."""
        if not upload_ids:
            return set()
        query = select(uploads.c.id).where(uploads.c.id.in_(upload_ids))
        return await self.db.run_read(lambda conn: set(conn.scalars(query)))

    async def stale_uploads(self, before: datetime) -> list[str]:
        query = select(uploads.c.id).where(uploads.c.updated_at < before)
        return await self.db.run_read(lambda conn: list(conn.scalars(query)))

    # Manifests and tags

    def store_manifest(self, conn: Connection, name: str, manifest: ParsedManifest) -> int:
        """Store the manifest in repository `name` (made if it must be) within `conn`'s
        transaction, after checking that everything it refers to is there; return the
        repository's id (for `remember` once committed)."""
        digest = str(manifest.digest)
        repository_id = self._ensure_repository(conn, name)
        self._check_references(conn, repository_id, manifest)
        now = utcnow()
        conn.execute(
            insert_ignore(
                conn,
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
        conn.execute(
            insert_ignore(
                conn,
                repository_manifests,
                repository_id=repository_id,
                digest=digest,
                created_at=now,
            )
        )
        return repository_id

    def _check_references(
        self, conn: Connection, repository_id: int, manifest: ParsedManifest
    ) -> None:
        if manifest.blobs:
            wanted = {d.digest for d in manifest.blobs}
            rows = conn.execute(
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
            found = set(
                conn.scalars(
                    select(manifests.c.digest)
                    .join(
                        repository_manifests,
                        repository_manifests.c.digest == manifests.c.digest,
                    )
                    .where(
                        repository_manifests.c.repository_id == repository_id,
                        manifests.c.digest.in_(wanted),
                    )
                )
            )
            for descriptor in manifest.children:
                if descriptor.digest not in found:
                    raise RegistryError(
                        "MANIFEST_BLOB_UNKNOWN", detail={"digest": descriptor.digest}
                    )

    async def manifest(
        self, repository_id: int, reference: str, by_digest: bool
    ) -> StoredManifest | None:
        def read(conn: Connection) -> StoredManifest | None:
            digest = reference if by_digest else conn.scalar(_head_query(repository_id, reference))
            if digest is None:
                return None
            row = conn.execute(
                select(manifests.c.media_type, manifests.c.payload)
                .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
                .where(
                    repository_manifests.c.repository_id == repository_id,
                    manifests.c.digest == digest,
                )
            ).first()
            return StoredManifest(digest, row.media_type, row.payload) if row else None

        return await self.db.run_read(read, small=True)

    async def delete_manifest(self, repository_id: int, digest: str) -> bool:
        """Remove the manifest from the repository, with every tag whose head it is."""

        def remove(conn: Connection) -> bool:
            result = conn.execute(
                delete(repository_manifests).where(
                    repository_manifests.c.repository_id == repository_id,
                    repository_manifests.c.digest == digest,
                )
            )
            if not result.rowcount:
                return False
            heads = self._heads(conn, repository_id)
            doomed = [tag for tag, head in heads.items() if head == digest]
            if doomed:
                conn.execute(
                    delete(tag_events).where(
                        tag_events.c.repository_id == repository_id, tag_events.c.tag.in_(doomed)
                    )
                )
            # Older history that named it can no longer be served either.
            conn.execute(
                delete(tag_events).where(
                    tag_events.c.repository_id == repository_id, tag_events.c.digest == digest
                )
            )
            return True

        return await self.db.run_write(remove)

    def _heads(self, conn: Connection, repository_id: int) -> dict[str, str]:
        newest = (
            select(tag_events.c.tag, func.max(tag_events.c.id).label("id"))
            .where(tag_events.c.repository_id == repository_id)
            .group_by(tag_events.c.tag)
            .subquery()
        )
        rows = conn.execute(
            select(tag_events.c.tag, tag_events.c.digest).join(
                newest, and_(tag_events.c.id == newest.c.id)
            )
        )
        return {row.tag: row.digest for row in rows}

    async def delete_tag(self, repository_id: int, tag: str) -> bool:
        statement = delete(tag_events).where(
            tag_events.c.repository_id == repository_id, tag_events.c.tag == tag
        )
        return await self.db.run_write(lambda conn: bool(conn.execute(statement).rowcount))

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
        return await self.db.run_read(lambda conn: list(conn.scalars(query)), small=True)

    async def catalog(self, limit: int | None, last: str | None) -> list[str]:
        query = select(repositories.c.name).order_by(repositories.c.name)
        if last:
            query = query.where(repositories.c.name > last)
        if limit is not None:
            query = query.limit(limit)
        return await self.db.run_read(lambda conn: list(conn.scalars(query)))

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

        def read(conn: Connection) -> list[Referrer]:
            return [
                Referrer(
                    r.digest,
                    r.media_type,
                    r.size,
                    r.artifact_type,
                    json.loads(r.annotations) if r.annotations else {},
                )
                for r in conn.execute(query)
            ]

        return await self.db.run_read(read)


def _artifact_type(manifest: ParsedManifest) -> str | None:
    # The referrers API reports artifactType, falling back to the config's media type.
    if manifest.artifact_type:
        return manifest.artifact_type
    return manifest.config.mediaType if manifest.config else None
