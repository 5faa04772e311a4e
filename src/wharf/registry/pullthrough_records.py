"""What pull-through reads and writes in the registry's tables: which blobs and manifests a
repository's imported images name, where its tags were imported from, and the manifests it
fetched. Each operation is one function of a connection, run whole in a database thread."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from ..db.database import Database
from ..db.prepared import Prepared
from ..db.schema import manifest_blobs, manifests, repository_manifests, tag_events
from ..images import history
from ..oci import mediatypes
from ..oci.manifest import InvalidManifest, ParsedManifest, parse_manifest
from .metadata import insert_manifest_in

# A manifest linked to the repository that names the blob: its size is the descriptor's.
_NAMING_MANIFEST = Prepared(
    select(manifests.c.media_type, manifests.c.payload)
    .join(manifest_blobs, manifest_blobs.c.manifest_digest == manifests.c.digest)
    .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
    .where(
        repository_manifests.c.repository_id == bindparam("repository_id"),
        manifest_blobs.c.blob_digest == bindparam("digest"),
    )
    .limit(1)
)
_IN_HISTORY = Prepared(
    select(tag_events.c.digest)
    .where(
        tag_events.c.repository_id == bindparam("repository_id"),
        tag_events.c.digest == bindparam("digest"),
    )
    .limit(1)
)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """A tag event that was imported: its tag, and the pull spec it was imported from."""

    tag: str
    reference: str


def _parsed(media_type: str, payload: bytes) -> ParsedManifest | None:
    try:
        return parse_manifest(bytes(payload), media_type)
    except InvalidManifest:
        return None  # stored manifests were valid when stored


def referenced_size(conn: Connection, repository_id: int, digest: str) -> int | None:
    """The size that a manifest linked to the repository gives blob `digest`; None when none
    of them names it."""
    row = _NAMING_MANIFEST.first(conn, repository_id=repository_id, digest=digest)
    parsed = _parsed(row[0], row[1]) if row else None
    if parsed is None:
        return None
    return next((d.size for d in parsed.blobs if d.digest == digest), None)


def image_digest(
    conn: Connection, repository_id: int, reference: str, by_digest: bool
) -> str | None:
    """The manifest a pull of `reference` means by the repository's tag history: a tag's
    newest image; a digest in any tag's history, or a child of an index there."""
    if not by_digest:
        return history.head(conn, repository_id, reference)
    if _IN_HISTORY.first(conn, repository_id=repository_id, digest=reference) is not None:
        return reference
    # The indexes of the tag history that the repository holds: their children are its images.
    indexes = (
        select(manifests.c.media_type, manifests.c.payload)
        .join(repository_manifests, repository_manifests.c.digest == manifests.c.digest)
        .where(
            repository_manifests.c.repository_id == repository_id,
            manifests.c.media_type.in_(sorted(mediatypes.INDEXES)),
            manifests.c.digest.in_(
                select(tag_events.c.digest).where(tag_events.c.repository_id == repository_id)
            ),
        )
    )
    for row in conn.execute(indexes):
        parsed = _parsed(row[0], row[1])
        if parsed is not None and any(c.digest == reference for c in parsed.children):
            return reference
    return None


def source_events(conn: Connection, repository_id: int) -> list[SourceEvent]:
    """The repository's imported tag events, newest first."""
    rows = conn.execute(
        select(tag_events.c.tag, tag_events.c.reference)
        .where(tag_events.c.repository_id == repository_id, tag_events.c.reference.is_not(None))
        .order_by(tag_events.c.id.desc())
    )
    return [SourceEvent(row.tag, row.reference) for row in rows]


class PullThroughRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def referenced_size(self, repository_id: int, digest: str) -> int | None:
        return await self.db.run_read(
            lambda conn: referenced_size(conn, repository_id, digest), small=True
        )

    async def image_digest(self, repository_id: int, reference: str, by_digest: bool) -> str | None:
        return await self.db.run_read(
            lambda conn: image_digest(conn, repository_id, reference, by_digest), small=True
        )

    async def source_events(self, repository_id: int) -> list[SourceEvent]:
        return await self.db.run_read(lambda conn: source_events(conn, repository_id), small=True)

    async def store_fetched(self, repository_id: int, manifest: ParsedManifest) -> None:
        """Keep a manifest fetched from upstream, linked to the repository. Its blobs stay
        upstream until they are pulled (and are then kept from the collector by this)."""
        await self.db.run_write(lambda conn: insert_manifest_in(conn, repository_id, manifest))
