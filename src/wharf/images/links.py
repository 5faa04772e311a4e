"""Making an image servable from a repository: its manifest, children and blobs linked there.

Tagging an image into another stream (`wharf tag`, ImageStreamTags, ImageStreamMappings) must
make it pullable from the stream's repository, whose reads see only what is linked to it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from ..db.schema import blobs, manifests, repository_blobs, repository_manifests
from ..db.statements import insert_ignore
from ..oci.manifest import InvalidManifest, parse_manifest


def link_image(conn: Connection, repository_id: int, digest: str) -> bool:
    """Link manifest `digest` (with its children and blobs) into the repository; False when
    the registry does not hold that manifest."""
    row = (
        conn.execute(
            select(manifests.c.media_type, manifests.c.payload).where(manifests.c.digest == digest)
        )
    ).first()
    if row is None:
        return False
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(
        insert_ignore(
            conn.dialect,
            repository_manifests,
            repository_id=repository_id,
            digest=digest,
            created_at=now,
        )
    )
    try:
        parsed = parse_manifest(row.payload, row.media_type)
    except InvalidManifest:
        return True  # stored manifests were valid when stored; nothing more to link
    for child in parsed.children:
        link_image(conn, repository_id, child.digest)
    # Blobs a collector is deleting are not linked; the others are touched, so that none
    # starts deleting them before this commits (wharf.registry.collect).
    named = [b.digest for b in parsed.blobs]
    stored = {
        r.digest
        for r in conn.execute(
            select(blobs.c.digest).where(
                blobs.c.digest.in_(named), blobs.c.deleting_until.is_(None)
            )
        )
    }
    if stored:
        conn.execute(
            update(blobs)
            .where(blobs.c.digest.in_(sorted(stored)), blobs.c.deleting_until.is_(None))
            .values(touched_at=now)
        )
    for blob in parsed.blobs:
        if blob.digest in stored:
            conn.execute(
                insert_ignore(
                    conn.dialect, repository_blobs, repository_id=repository_id, digest=blob.digest
                )
            )
    return True
