"""The registry's records of what its storage holds (blobs, manifests, their links, uploads in
progress), forgotten when the operator empties that storage (managementState Removed).

The tag history and the Image objects stay: they are the cluster's record, as OpenShift keeps
image streams in etcd when the registry's storage goes. A tag whose manifest went answers
MANIFEST_UNKNOWN, and a push of the same image stores it again from scratch."""

from __future__ import annotations

from sqlalchemy import Connection, delete

from ..db.database import Database
from ..db.schema import (
    blobs,
    manifest_blobs,
    manifests,
    repository_blobs,
    repository_manifests,
    uploads,
)

# Links before what they link to: the foreign keys hold at every statement.
_IN_ORDER = (uploads, manifest_blobs, repository_manifests, manifests, repository_blobs, blobs)


def _forget_in(conn: Connection) -> None:
    for table in _IN_ORDER:
        conn.execute(delete(table))


async def forget_stored(db: Database) -> None:
    """Forget every blob, manifest and upload, in one transaction."""
    await db.run_write(_forget_in)
