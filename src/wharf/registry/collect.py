"""Removing blobs while the registry serves: online garbage collection, and the pruner's
`DELETE /admin/blobs/<digest>`. No read-only window: every deletion is a conditional statement
that any number of processes may race, and the database decides who wins.

A blob is *referenced* while a manifest that some repository links names it (`manifest_blobs`).
An unreferenced blob is collected once its `touched_at` is older than the grace delay: a push,
a mount and a manifest naming the blob touch it, and so does a manifest naming it going away,
so a push in progress (layers first, the manifest last) keeps its layers.

Deleting one blob:
1. claim it: one UPDATE that sets `deleting_until` (a lease) only where the blob is still
   unreferenced, untouched since the cutoff and claimed by nobody live; the repository links go
   in the same transaction. Whoever's UPDATE changed the row owns the deletion.
2. delete the bytes from storage;
3. drop the row, only if the claim is still ours.
An upload of the same digest first *pins* the row (`pin`): it waits while a live claim stands,
so it never stores bytes that a collector is about to delete, and it takes over a lapsed claim
(its collector died). Bytes without any row (a crash between commit and link) are claimed by
inserting a row that is being deleted, which a pin then waits for in the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import structlog
from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    bindparam,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..db.database import Database
from ..db.prepared import Prepared
from ..db.schema import blobs, manifest_blobs, manifests, repository_blobs, repository_manifests
from ..db.statements import insert_ignore
from ..storage.base import BlobStore, StorageUnavailable

log = structlog.get_logger("wharf.registry.gc")

# How long a collector may take to delete one blob's bytes before another may take over.
LEASE = timedelta(minutes=5)
# How many candidates one round of a pass looks at.
BATCH = 200
# The longest a pin waits for a collector deleting the same digest.
PIN_WAIT = LEASE + timedelta(seconds=5)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Collecting(Exception):
    """The blob is being deleted by a collector right now: try again when it is gone."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"a collector deletes this blob until {until.isoformat()}")
        self.until = until


def referenced() -> Exists:
    """Whether a manifest some repository links names the blob (of the statement's row)."""
    return exists().where(
        manifest_blobs.c.blob_digest == blobs.c.digest,
        repository_manifests.c.digest == manifest_blobs.c.manifest_digest,
    )


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Nobody deletes the blob, or whoever did let the lease lapse (died)."""
    return or_(blobs.c.deleting_until.is_(None), blobs.c.deleting_until < now)


# Pins and touches


# The statements of every pushed blob, compiled once (wharf.db.prepared).
_PIN_ROW = Prepared(
    lambda dialect: insert_ignore(dialect, blobs), ["digest", "size", "created_at", "touched_at"]
)
_PIN = Prepared(
    update(blobs)
    .where(
        blobs.c.digest == bindparam("blob"),
        or_(blobs.c.deleting_until.is_(None), blobs.c.deleting_until < bindparam("at")),
    )
    .values(touched_at=bindparam("at"), deleting_until=None, size=bindparam("blob_size"))
)
_TOUCH = Prepared(
    update(blobs)
    .where(blobs.c.digest == bindparam("blob"), blobs.c.deleting_until.is_(None))
    .values(touched_at=bindparam("at"))
)


def pin_in(conn: Connection, digest: str, size: int, now: datetime) -> None:
    """Before storing an upload's bytes as `digest`: make sure the blob's row exists and was
    touched now, so that no collector claims it until the bytes are linked; take over a lapsed
    claim. Raises Collecting while a live one stands."""
    _PIN_ROW.run(conn, digest=digest, size=size, created_at=now, touched_at=now)
    if not _PIN.run(conn, blob=digest, at=now, blob_size=size):
        until = conn.execute(
            select(blobs.c.deleting_until).where(blobs.c.digest == digest)
        ).scalar()
        raise Collecting(until or now)


async def pin(db: Database, digest: str, size: int) -> None:
    """`pin_in`, waiting (bounded) while a collector deletes the same digest: the bytes it is
    about to store must not be the ones being deleted."""
    deadline = utcnow() + PIN_WAIT
    while True:
        try:
            await db.run_write(lambda conn: pin_in(conn, digest, size, utcnow()))
            return
        except Collecting as exc:
            if utcnow() > deadline:
                # Answered 503 with Retry-After: the client pushes the blob again later.
                raise StorageUnavailable(str(exc)) from None
            await asyncio.sleep(0.05)


def touch_in(conn: Connection, digests: set[str], now: datetime) -> int:
    """Touch the blobs `digests` that no collector holds; how many were touched (fewer than
    asked: some are gone or going, and must not be used)."""
    # One at a time, in order: a few digests, and every writer locks them in the same order.
    return sum(_TOUCH.run(conn, blob=digest, at=now) for digest in sorted(digests))


def touch_named_by_in(conn: Connection, manifest_digests: list[str], now: datetime) -> None:
    """A manifest is going away from a repository: the blobs it names get the grace delay."""
    if not manifest_digests:
        return
    named = select(manifest_blobs.c.blob_digest).where(
        manifest_blobs.c.manifest_digest.in_(manifest_digests)
    )
    conn.execute(
        update(blobs)
        .where(blobs.c.digest.in_(named), blobs.c.deleting_until.is_(None))
        .values(touched_at=now)
    )


# Claims


def _claim_in(conn: Connection, digest: str, cutoff: datetime, now: datetime) -> int | None:
    """Claim the blob for deletion if it is unreferenced and untouched since `cutoff`; its
    size, or None when it is not (any more) to be collected."""
    until = now + LEASE
    changed = conn.execute(
        update(blobs)
        .where(
            blobs.c.digest == digest,
            _claimable(now),
            or_(blobs.c.touched_at.is_(None), blobs.c.touched_at < cutoff),
            ~referenced(),
        )
        .values(deleting_until=until)
    ).rowcount
    if not changed:
        return None
    conn.execute(delete(repository_blobs).where(repository_blobs.c.digest == digest))
    size: int = conn.execute(select(blobs.c.size).where(blobs.c.digest == digest)).scalar_one()
    return size


def _claim_orphan_in(conn: Connection, digest: str, now: datetime) -> bool:
    """Claim stored bytes that no row names, by inserting a row that is being deleted."""
    from ..db.statements import insert_ignore

    return bool(
        conn.execute(
            insert_ignore(
                conn.dialect,
                blobs,
                digest=digest,
                size=0,
                created_at=now,
                touched_at=now,
                deleting_until=now + LEASE,
            )
        ).rowcount
    )


def _release_in(conn: Connection, digest: str, until: datetime) -> None:
    """The bytes are gone: drop the row, if the claim is still the one we made."""
    conn.execute(delete(blobs).where(blobs.c.digest == digest, blobs.c.deleting_until == until))


@dataclass
class Collected:
    """What one pass removed: blobs (rows and bytes), bytes by their recorded size, stray
    stored blobs that no row named, and manifests that no repository links any more."""

    blobs: int = 0
    bytes: int = 0
    strays: int = 0
    manifests: int = 0
    digests: list[str] = field(default_factory=list)


class Collector:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store

    async def _delete_claimed(self, digest: str, claimed_at: datetime) -> None:
        await self.store.delete(digest)
        until = claimed_at + LEASE
        await self.db.run_write(lambda conn: _release_in(conn, digest, until))

    async def delete_blob(self, digest: str, cutoff: datetime | None = None) -> int | None:
        """Delete one blob if no linked manifest names it (and, with `cutoff`, nothing touched
        it since); its size, or None when it was not deleted."""
        now = utcnow()
        size = await self.db.run_write(
            lambda conn: _claim_in(conn, digest, cutoff or now + LEASE, now)
        )
        if size is None:
            return None
        await self._delete_claimed(digest, now)
        return size

    async def blob_state(self, digest: str) -> str:
        """ "missing", "referenced" or "unreferenced": why `delete_blob` declined."""

        def read(conn: Connection) -> str:
            row = conn.execute(
                select(blobs.c.digest, referenced().label("used")).where(
                    blobs.c.digest == digest, blobs.c.deleting_until.is_(None)
                )
            ).first()
            if row is None:
                return "missing"
            return "referenced" if row.used else "unreferenced"

        return await self.db.run_read(read)

    async def run(self, delay: timedelta) -> Collected:
        """One pass: unreferenced blobs untouched for `delay`, stray stored blobs older than
        `delay`, and manifests no repository links, created more than `delay` ago."""
        done = Collected()
        cutoff = utcnow() - delay
        await self._manifests(cutoff, done)
        seen: set[str] = set()
        while True:
            now = utcnow()
            batch = await self.db.run_read(partial(_candidates, cutoff=cutoff, now=now, seen=seen))
            if not batch:
                break
            seen.update(batch)
            for digest in batch:
                size = await self.delete_blob(digest, cutoff)
                if size is not None:
                    done.blobs += 1
                    done.bytes += size
                    done.digests.append(digest)
        await self._strays(cutoff, done)
        return done

    async def _manifests(self, cutoff: datetime, done: Collected) -> None:
        orphans = await self.db.run_read(lambda conn: _orphan_manifests(conn, cutoff))
        for digest in orphans:
            try:
                removed = await self.db.run_write(partial(_remove_manifest_in, digest=digest))
            except IntegrityError:
                removed = False  # linked again meanwhile (the link's foreign key says so)
            done.manifests += int(removed)

    async def _strays(self, cutoff: datetime, done: Collected) -> None:
        stored = await self.store.stored_before(cutoff)
        if not stored:
            return
        named = await self.db.run_read(lambda conn: _known(conn, stored))
        for digest in sorted(set(stored) - named):
            now = utcnow()
            if not await self.db.run_write(partial(_claim_orphan_in, digest=digest, now=now)):
                continue
            await self._delete_claimed(digest, now)
            done.strays += 1
            done.digests.append(digest)


def _candidates(conn: Connection, cutoff: datetime, now: datetime, seen: set[str]) -> list[str]:
    query = (
        select(blobs.c.digest)
        .where(
            _claimable(now),
            or_(blobs.c.touched_at.is_(None), blobs.c.touched_at < cutoff),
            ~referenced(),
        )
        .order_by(blobs.c.digest)
        .limit(BATCH + len(seen))
    )
    return [d for d in conn.scalars(query) if d not in seen][:BATCH]


def _known(conn: Connection, digests: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(digests), 500):
        chunk = digests[start : start + 500]
        found.update(conn.scalars(select(blobs.c.digest).where(blobs.c.digest.in_(chunk))))
    return found


def _orphan_manifests(conn: Connection, cutoff: datetime) -> list[str]:
    linked = exists().where(repository_manifests.c.digest == manifests.c.digest)
    query = select(manifests.c.digest).where(~linked, manifests.c.created_at < cutoff)
    return list(conn.scalars(query.limit(1000)))


def _remove_manifest_in(conn: Connection, digest: str) -> bool:
    linked = exists().where(repository_manifests.c.digest == digest)
    removed = conn.execute(delete(manifests).where(manifests.c.digest == digest, ~linked)).rowcount
    if removed:
        touch_named_by_in(conn, [digest], utcnow())
        conn.execute(delete(manifest_blobs).where(manifest_blobs.c.manifest_digest == digest))
    return bool(removed)
