"""Upload sessions in the database: size, backend state and the lease of the request writing.

Only the request holding an upload's lease may write its bytes: two requests writing one upload
at once would each overwrite the other's bytes (or S3 parts). A lease is a row update, so it
holds across every process sharing the database; it lapses at `held_until` if its process dies,
and a request writing for long renews it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from ..db.database import Database
from ..db.prepared import Prepared
from ..db.schema import uploads
from .metadata import RegistryMetadata, utcnow

# A lease lapses this long after it was taken or last renewed.
LEASE = timedelta(seconds=60)

_CREATE = Prepared(
    insert(uploads), ["id", "repository_id", "size", "state", "created_at", "updated_at"]
)
_SIZE = Prepared(
    select(uploads.c.size).where(
        uploads.c.id == bindparam("upload_id"),
        uploads.c.repository_id == bindparam("repository_id"),
    )
)
_CLAIM = Prepared(
    update(uploads)
    .where(
        uploads.c.id == bindparam("upload_id"),
        uploads.c.repository_id == bindparam("repository_id"),
        or_(uploads.c.holder.is_(None), uploads.c.held_until < bindparam("now")),
    )
    .values(holder=bindparam("claimant"), held_until=bindparam("until"))
)
_CLAIMED = Prepared(
    select(uploads.c.size, uploads.c.state, uploads.c.holder).where(
        uploads.c.id == bindparam("upload_id"),
        uploads.c.repository_id == bindparam("repository_id"),
    )
)
_HELD = and_(uploads.c.id == bindparam("upload_id"), uploads.c.holder == bindparam("lease_holder"))
_RENEW = Prepared(update(uploads).where(_HELD).values(held_until=bindparam("until")))
_RECORD = Prepared(
    update(uploads)
    .where(_HELD, uploads.c.size == bindparam("old_size"))
    .values(
        size=bindparam("new_size"),
        state=bindparam("new_state"),
        updated_at=bindparam("now"),
        holder=bindparam("next_holder"),
    )
)
_RELEASE = Prepared(update(uploads).where(_HELD).values(holder=None))
_FINISH = Prepared(delete(uploads).where(_HELD))
# An upload nobody wrote yet, taken whole by the request that brings all of its bytes.
_FINISH_EMPTY = Prepared(
    delete(uploads).where(
        uploads.c.id == bindparam("upload_id"),
        uploads.c.repository_id == bindparam("repository_id"),
        uploads.c.size == 0,
        or_(uploads.c.holder.is_(None), uploads.c.held_until < bindparam("now")),
    )
)
_STATE = Prepared(select(uploads.c.state).where(uploads.c.id == bindparam("upload_id")))
_DELETE = Prepared(delete(uploads).where(uploads.c.id == bindparam("upload_id")))


@dataclass(frozen=True, slots=True)
class Claim:
    """An upload as a request found it: `held` is False when another request holds it."""

    size: int
    state: str
    held: bool


class UploadRecords:
    def __init__(self, metadata: RegistryMetadata, lease: timedelta = LEASE) -> None:
        self.metadata = metadata
        self.db: Database = metadata.db
        self.lease = lease

    async def create(self, repository_id: int, upload_id: str, state: str) -> None:
        now = utcnow()
        await self.db.run_write(
            lambda conn: _CREATE.run(
                conn,
                id=upload_id,
                repository_id=repository_id,
                size=0,
                state=state,
                created_at=now,
                updated_at=now,
            )
        )

    async def size(self, upload_id: str, repository_id: int) -> int | None:
        size: int | None = await self.db.run_read(
            lambda conn: _SIZE.scalar(conn, upload_id=upload_id, repository_id=repository_id),
            small=True,
        )
        return size

    async def claim(self, upload_id: str, repository_id: int, holder: str) -> Claim | None:
        """Take the upload's lease for `holder`; None when there is no such upload."""
        now = utcnow()

        def claim(conn: Connection) -> Claim | None:
            values = {"upload_id": upload_id, "repository_id": repository_id}
            _CLAIM.run(conn, **values, claimant=holder, until=now + self.lease, now=now)
            row = _CLAIMED.first(conn, **values)
            return None if row is None else Claim(row[0], row[1], row[2] == holder)

        return await self.db.run_write(claim)

    async def renew(self, upload_id: str, holder: str) -> bool:
        until = utcnow() + self.lease
        return bool(
            await self.db.run_write(
                lambda conn: _RENEW.run(conn, upload_id=upload_id, lease_holder=holder, until=until)
            )
        )

    async def record(
        self, upload_id: str, holder: str, old_size: int, new_size: int, state: str, *, keep: bool
    ) -> bool:
        """Record that the upload grew from `old_size` to `new_size` with backend `state`, and
        release the lease unless `keep`; False when `holder` no longer held it."""
        now = utcnow()
        return bool(
            await self.db.run_write(
                lambda conn: _RECORD.run(
                    conn,
                    upload_id=upload_id,
                    lease_holder=holder,
                    old_size=old_size,
                    new_size=new_size,
                    new_state=state,
                    now=now,
                    next_holder=holder if keep else None,
                )
            )
        )

    async def release(self, upload_id: str, holder: str) -> None:
        await self.db.run_write(
            lambda conn: _RELEASE.run(conn, upload_id=upload_id, lease_holder=holder)
        )

    async def finish(
        self, upload_id: str, holder: str, repository_id: int, digest: str, size: int
    ) -> bool:
        """Forget the upload and link its blob, in one transaction; False (and nothing
        written) when `holder` no longer held it."""

        def finish(conn: Connection) -> bool:
            if not _FINISH.run(conn, upload_id=upload_id, lease_holder=holder):
                return False
            self.metadata.link_blob_in(conn, repository_id, digest, size)
            return True

        return await self.db.run_write(finish)

    async def finish_empty(
        self, upload_id: str, repository_id: int, digest: str, size: int
    ) -> bool:
        """Forget an upload that had no bytes and no writer, and link the blob its one request
        stored elsewhere, in one transaction; False (and nothing written) when another request
        wrote or holds it meanwhile."""
        now = utcnow()

        def finish(conn: Connection) -> bool:
            values = {"upload_id": upload_id, "repository_id": repository_id, "now": now}
            if not _FINISH_EMPTY.run(conn, **values):
                return False
            self.metadata.link_blob_in(conn, repository_id, digest, size)
            return True

        return await self.db.run_write(finish)

    async def delete(self, upload_id: str) -> str | None:
        """Forget the upload; return its backend state, None when there was no such upload."""

        def remove(conn: Connection) -> str | None:
            state: str | None = _STATE.scalar(conn, upload_id=upload_id)
            if state is not None:
                _DELETE.run(conn, upload_id=upload_id)
            return state

        return await self.db.run_write(remove)

    async def known(self, upload_ids: set[str]) -> set[str]:
        """Which of `upload_ids` are live sessions."""
        if not upload_ids:
            return set()
        query = select(uploads.c.id).where(uploads.c.id.in_(upload_ids))
        return await self.db.run_read(lambda conn: set(conn.scalars(query)))

    async def lapsed(self) -> list[tuple[str, str]]:
        """(upload, holder) of the sessions whose lease was taken and lapsed without being
        released: the request writing them died with its process (kill -9, a power cut)."""
        now = utcnow()
        query = select(uploads.c.id, uploads.c.holder).where(
            uploads.c.holder.is_not(None), uploads.c.held_until < now
        )
        return await self.db.run_read(lambda conn: [(r[0], r[1]) for r in conn.execute(query)])

    async def latest_lease_end(self) -> datetime | None:
        """When the last lease held now lapses, unless renewed; None when none is held."""
        now = utcnow()
        query = select(func.max(uploads.c.held_until)).where(
            uploads.c.holder.is_not(None), uploads.c.held_until >= now
        )
        end: datetime | None = await self.db.run_read(lambda conn: conn.scalar(query))
        return end

    async def delete_lapsed(self, upload_id: str, holder: str) -> str | None:
        """Forget the upload if `holder`'s lease on it is still the lapsed one (nobody took it
        meanwhile); return its backend state, None when it was not removed."""
        now = utcnow()
        held = and_(
            uploads.c.id == upload_id, uploads.c.holder == holder, uploads.c.held_until < now
        )

        def remove(conn: Connection) -> str | None:
            state: str | None = conn.scalar(select(uploads.c.state).where(held))
            if state is not None:
                conn.execute(delete(uploads).where(held))
            return state

        return await self.db.run_write(remove)

    async def stale(self, before: datetime) -> list[str]:
        """Sessions nobody wrote since `before`, and that no live lease holds."""
        query = select(uploads.c.id).where(
            uploads.c.updated_at < before,
            or_(uploads.c.holder.is_(None), uploads.c.held_until < utcnow()),
        )
        return await self.db.run_read(lambda conn: list(conn.scalars(query)))
