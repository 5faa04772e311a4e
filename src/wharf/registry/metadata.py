"""The registry's records in the database: repositories, blob links, manifests, tags
(upload sessions: upload_records).

Each operation is one plain function of a connection, run whole in a database thread
(`Database.run_read`, `Database.run_write`): one hop per request rather than one per statement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, or_, select

from ..db.database import Database
from ..db.prepared import Prepared
from ..db.schema import (
    blobs,
    manifest_blobs,
    manifests,
    repositories,
    repository_blobs,
    repository_manifests,
    tag_events,
)
from ..db.statements import insert_ignore
from ..images import history
from ..oci.manifest import ParsedManifest
from .collect import touch_in, touch_named_by_in
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


_LINKED_BLOB_SIZE = Prepared(
    select(blobs.c.size)
    .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
    .where(
        repository_blobs.c.repository_id == bindparam("repository_id"),
        blobs.c.digest == bindparam("digest"),
    )
)
_LINK_BLOB = Prepared(
    lambda dialect: insert_ignore(dialect, repository_blobs), ["repository_id", "digest"]
)
_NAME_BLOB = Prepared(
    lambda dialect: insert_ignore(dialect, manifest_blobs), ["manifest_digest", "blob_digest"]
)
_ADD_MANIFEST = Prepared(
    lambda dialect: insert_ignore(dialect, manifests),
    ["digest", "media_type", "payload", "subject", "artifact_type", "annotations", "created_at"],
)
_LINK_MANIFEST = Prepared(
    lambda dialect: insert_ignore(dialect, repository_manifests),
    ["repository_id", "digest", "created_at"],
)
# A repository's link row is enough: it names a stored manifest (foreign key).
_MANIFEST_IS_LINKED = Prepared(
    select(repository_manifests.c.digest).where(
        repository_manifests.c.repository_id == bindparam("repository_id"),
        repository_manifests.c.digest == bindparam("digest"),
    )
)
_LINKED_MANIFEST = Prepared(
    select(manifests.c.media_type, manifests.c.payload)
    .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
    .where(
        repository_manifests.c.repository_id == bindparam("repository_id"),
        manifests.c.digest == bindparam("digest"),
    )
)

_ALL_TAGS_QUERY = (
    select(tag_events.c.tag)
    .where(tag_events.c.repository_id == bindparam("repository_id"))
    .where(tag_events.c.tag > bindparam("last"))
    .group_by(tag_events.c.tag)
    .order_by(tag_events.c.tag)
)
_ALL_TAGS = Prepared(_ALL_TAGS_QUERY)
_TAGS_PAGE = Prepared(_ALL_TAGS_QUERY.limit(bindparam("limit")))


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
        found = await self.db.run_read(lambda conn: history.repository_id(conn, name), small=True)
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
        return known if known is not None else history.ensure_repository(conn, name)

    # Blobs

    async def linked_blob_size(self, repository_id: int, digest: str) -> int | None:
        size: int | None = await self.db.run_read(
            lambda conn: _LINKED_BLOB_SIZE.scalar(conn, repository_id=repository_id, digest=digest),
            small=True,
        )
        return size

    async def mount_blob(self, repository_id: int, digest: str) -> bool:
        """Link a stored blob to the repository; False when it is gone or being collected."""

        def mount(conn: Connection) -> bool:
            if not touch_in(conn, {digest}, utcnow()):
                return False
            _LINK_BLOB.run(conn, repository_id=repository_id, digest=digest)
            return True

        return await self.db.run_write(mount)

    def link_blob_in(self, conn: Connection, repository_id: int, digest: str, size: int) -> None:
        """Link the blob just stored (its row pinned before its bytes were: wharf.registry.
        collect) to the repository, in `conn`'s transaction."""
        if not touch_in(conn, {digest}, utcnow()):
            # Collected between the pin and now: only if storing took longer than the grace
            # delay. Its bytes may be gone, so nothing may link it.
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", "the blob was collected while it was stored: push it again"
            )
        _LINK_BLOB.run(conn, repository_id=repository_id, digest=digest)

    async def unlink_blob(self, repository_id: int, digest: str) -> bool:
        statement = delete(repository_blobs).where(
            repository_blobs.c.repository_id == repository_id,
            repository_blobs.c.digest == digest,
        )
        return await self.db.run_write(lambda conn: bool(conn.execute(statement).rowcount))

    async def add_blob(self, name: str, digest: str, size: int) -> None:
        """Link a verified blob to repository `name`, which this creates if it must."""

        def add(conn: Connection) -> int:
            repository_id = self._ensure_repository(conn, name)
            self.link_blob_in(conn, repository_id, digest, size)
            return repository_id

        self.remember(name, await self.db.run_write(add))

    # Manifests and tags

    def store_manifest(self, conn: Connection, name: str, manifest: ParsedManifest) -> int:
        """Store the manifest in repository `name` (made if it must be) within `conn`'s
        transaction, after checking that everything it refers to is there; return the
        repository's id (for `remember` once committed)."""
        repository_id = self._ensure_repository(conn, name)
        self._check_references(conn, repository_id, manifest)
        insert_manifest_in(conn, repository_id, manifest)
        return repository_id

    def _check_references(
        self, conn: Connection, repository_id: int, manifest: ParsedManifest
    ) -> None:
        # One indexed lookup per reference: a manifest names a handful.
        for descriptor in manifest.blobs:
            size = _LINKED_BLOB_SIZE.scalar(
                conn, repository_id=repository_id, digest=descriptor.digest
            )
            if size is None:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": descriptor.digest})
            if size != descriptor.size:
                raise RegistryError(
                    "MANIFEST_INVALID",
                    f"size of {descriptor.digest} is {size}, not {descriptor.size}",
                )
        # Touched in this transaction: a collector's claim either came first (and the touch
        # finds the blob going) or waits for this one and then sees it in use.
        named = {d.digest for d in manifest.blobs}
        if touch_in(conn, named, utcnow()) != len(named):
            gone = sorted(named)[0]
            raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": gone})
        for descriptor in manifest.children:
            if (
                _MANIFEST_IS_LINKED.first(
                    conn, repository_id=repository_id, digest=descriptor.digest
                )
                is None
            ):
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": descriptor.digest})

    async def manifest(
        self, repository_id: int, reference: str, by_digest: bool
    ) -> StoredManifest | None:
        def read(conn: Connection) -> StoredManifest | None:
            digest = reference if by_digest else history.head(conn, repository_id, reference)
            if digest is None:
                return None
            row = _LINKED_MANIFEST.first(conn, repository_id=repository_id, digest=digest)
            return StoredManifest(digest, row[0], bytes(row[1])) if row else None

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
            # The blobs it named get the grace delay before any collector may take them.
            touch_named_by_in(conn, [digest], utcnow())
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
        statement = _ALL_TAGS if limit is None else _TAGS_PAGE
        values = {"repository_id": repository_id, "last": last or ""}  # every tag is > ""
        if limit is not None:
            values["limit"] = limit
        return await self.db.run_read(lambda conn: statement.scalars(conn, **values), small=True)

    async def catalog(self, limit: int | None, last: str | None) -> list[str]:
        """Repositories that hold something: opening an upload makes a repository row, but it
        is listed only once a blob or a manifest is stored in it."""
        holds = or_(
            exists().where(repository_blobs.c.repository_id == repositories.c.id),
            exists().where(repository_manifests.c.repository_id == repositories.c.id),
        )
        query = select(repositories.c.name).where(holds).order_by(repositories.c.name)
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


def insert_manifest_in(conn: Connection, repository_id: int, manifest: ParsedManifest) -> None:
    """Store the manifest, link it to the repository and record the blobs it names, in
    `conn`'s transaction; nothing it refers to is checked (the caller did, or will fetch it)."""
    digest = str(manifest.digest)
    now = utcnow()
    _ADD_MANIFEST.run(
        conn,
        digest=digest,
        media_type=manifest.media_type,
        payload=manifest.payload,
        subject=manifest.subject.digest if manifest.subject else None,
        artifact_type=_artifact_type(manifest),
        annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
        created_at=now,
    )
    _LINK_MANIFEST.run(conn, repository_id=repository_id, digest=digest, created_at=now)
    for blob in {d.digest for d in manifest.blobs}:
        _NAME_BLOB.run(conn, manifest_digest=digest, blob_digest=blob)
