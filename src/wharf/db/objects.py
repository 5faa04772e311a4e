"""A Kubernetes-style object store: JSON objects with one global resourceVersion, and the event
log that feeds watch.

Every write takes the next value of a single counter as its resourceVersion, inside the same
transaction that writes the object and appends its event, so the log is totally ordered and a
watcher that resumes from a resourceVersion misses nothing.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .database import Database
from .prepared import Prepared
from .schema import object_events, objects, resource_version_counter
from .statements import insert_ignore
from .watch_cache import WatchCache

Object = dict[str, Any]


class StoreError(Exception):
    """Base of the store's refusals; the API maps each to a Kubernetes Status."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    pass


class _RolledBack(Exception):
    """Ends a dry run's transaction: raised out of the block, so it is rolled back."""


class Expired(StoreError):
    """The resourceVersion asked for is older than the retained event log."""


@dataclass(frozen=True, slots=True)
class Key:
    resource: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Page:
    """Some objects of a list, the list's resourceVersion, and whether more follow; `encoded`,
    when known, the items as stored (JSON, in order): a list of objects served as they are
    stored is written from these, encoded once when written rather than once per request."""

    items: list[Object]
    version: int
    more: bool
    encoded: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One change. Shared by every watcher of a process (wharf.db.watch_cache): nobody changes
    `object`, and what a watcher encodes of it is kept in `encoded` for the others."""

    type: str  # ADDED, MODIFIED, DELETED
    resource_version: int
    key: Key
    object: Object
    encoded: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


def _dump(body: Object) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def _set_version(body: Object, version: int) -> Object:
    body.setdefault("metadata", {})["resourceVersion"] = str(version)
    return body


# The statements of every object write and single read, prepared once (wharf.db.prepared).
_WHERE_KEY = (
    objects.c.resource == bindparam("k_resource"),
    objects.c.namespace == bindparam("k_namespace"),
    objects.c.name == bindparam("k_name"),
)
_BODY = Prepared(select(objects.c.body).where(*_WHERE_KEY))
_VERSION = Prepared(select(objects.c.resource_version).where(*_WHERE_KEY))
_CREATE = Prepared(
    lambda dialect: insert_ignore(dialect, objects),
    ["resource", "namespace", "name", "resource_version", "body"],
)
_UPDATE = Prepared(
    update(objects)
    .where(*_WHERE_KEY)
    .values(resource_version=bindparam("version"), body=bindparam("body"))
)
_DELETE = Prepared(delete(objects).where(*_WHERE_KEY))
_LOG = Prepared(
    insert(object_events), ["resource_version", "resource", "namespace", "name", "type", "body"]
)
_EVENT_BODY = Prepared(
    update(object_events)
    .where(object_events.c.resource_version == bindparam("version"))
    .values(body=bindparam("body"))
)
_NEWEST_EVENT = Prepared(
    select(func.max(object_events.c.resource_version)).where(
        object_events.c.resource == bindparam("resource")
    )
)
_COUNTER = Prepared(select(resource_version_counter.c.value))
_NEXT_VERSION = Prepared(
    update(resource_version_counter)
    .where(resource_version_counter.c.id == 1)
    .values(value=resource_version_counter.c.value + 1)
    .returning(resource_version_counter.c.value)
)


class SyncTransaction:
    """Writes that commit together, as plain calls on a connection in a database thread;
    their events are announced after the commit."""

    def __init__(
        self, conn: Connection, events: list[Event], created: dict[Key, int] | None = None
    ) -> None:
        self.conn = conn
        self.events = events
        # Objects this transaction created, and their version: changing one again rewrites
        # its creation (one ADDED event with the final body), as nobody saw it in between.
        self._created = {} if created is None else created

    def _next_version(self) -> int:
        value = _NEXT_VERSION.scalar(self.conn)
        assert value is not None
        return int(value)

    def _log(self, kind: str, key: Key, body: Object, version: int, text: str) -> None:
        """Append the event; `text` is `body` as stored (encoded once for both rows)."""
        _LOG.run(
            self.conn,
            resource_version=version,
            resource=key.resource,
            namespace=key.namespace,
            name=key.name,
            type=kind,
            body=text,
        )
        self.events.append(Event(kind, version, key, body))

    def get(self, key: Key) -> Object | None:
        return _get(self.conn, key)

    def exists(self, key: Key) -> bool:
        return _VERSION.scalar(self.conn, **_match(key)) is not None

    def create(self, key: Key, body: Object) -> Object:
        version = self._next_version()
        _set_version(body, version)
        text = _dump(body)
        created = _CREATE.run(
            self.conn,
            resource=key.resource,
            namespace=key.namespace,
            name=key.name,
            resource_version=version,
            body=text,
        )
        if not created:
            raise AlreadyExists(key)
        self._log("ADDED", key, body, version, text)
        self._created[key] = version
        return body

    def get_or_create(self, key: Key, body: Object) -> Object:
        """The object at `key`, made from `body` unless it exists. Writers race for it on
        PostgreSQL: the INSERT of the later one waits for the earlier one's commit, finds the
        row there, and this returns what the earlier one made."""
        try:
            return self.create(key, body)
        except AlreadyExists:
            found = self.get(key)
            if found is None:  # made and deleted again meanwhile
                raise Conflict(key) from None
            return found

    def update(self, key: Key, body: Object, expected_version: int | None = None) -> Object:
        """Replace the object; with `expected_version`, only if nobody changed it since."""
        current = _VERSION.scalar(self.conn, **_match(key))
        if current is None:
            raise NotFound(key)
        if expected_version is not None and current != expected_version:
            raise Conflict(key)
        if key in self._created:
            return self._rewrite_creation(key, body)
        version = self._next_version()
        # Again under the counter's row lock, which every writer takes: a writer that committed
        # while this one waited for it is seen now (PostgreSQL reads each statement afresh),
        # and its change is not overwritten.
        if (
            expected_version is not None
            and _VERSION.scalar(self.conn, **_match(key)) != expected_version
        ):
            raise Conflict(key)
        _set_version(body, version)
        text = _dump(body)
        _UPDATE.run(self.conn, version=version, body=text, **_match(key))
        self._log("MODIFIED", key, body, version, text)
        return body

    def _rewrite_creation(self, key: Key, body: Object) -> Object:
        version = self._created[key]
        _set_version(body, version)
        text = _dump(body)
        _UPDATE.run(self.conn, version=version, body=text, **_match(key))
        _EVENT_BODY.run(self.conn, version=version, body=text)
        self.events[:] = [
            Event("ADDED", version, key, body) if e.resource_version == version else e
            for e in self.events
        ]
        return body

    def delete(self, key: Key, expected_version: int | None = None) -> Object:
        self._created.pop(key, None)
        body = _get(self.conn, key)
        if body is None:
            raise NotFound(key)
        if expected_version is not None and _version_of(body) != expected_version:
            raise Conflict(key)
        version = self._next_version()
        _DELETE.run(self.conn, **_match(key))
        _set_version(body, version)
        self._log("DELETED", key, body, version, _dump(body))
        return body

    def delete_namespace_contents(self, namespace: str) -> int:
        """Delete every object in `namespace`; return how many."""
        rows = self.conn.execute(
            select(objects.c.resource, objects.c.name).where(objects.c.namespace == namespace)
        )
        keys = [Key(row.resource, namespace, row.name) for row in rows]
        for key in keys:
            self.delete(key)
        return len(keys)


T = TypeVar("T")


class Transaction:
    """The same writes from async code (the API's handlers), one call at a time."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.events: list[Event] = []
        self._created: dict[Key, int] = {}

    async def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sync_transaction, *args)` within this transaction."""
        return await self.conn.run_sync(
            lambda c: fn(SyncTransaction(c, self.events, self._created), *args)
        )

    async def get(self, key: Key) -> Object | None:
        return await self.run_sync(SyncTransaction.get, key)

    async def create(self, key: Key, body: Object) -> Object:
        return await self.run_sync(SyncTransaction.create, key, body)

    async def get_or_create(self, key: Key, body: Object) -> Object:
        return await self.run_sync(SyncTransaction.get_or_create, key, body)

    async def update(self, key: Key, body: Object, expected_version: int | None = None) -> Object:
        return await self.run_sync(SyncTransaction.update, key, body, expected_version)

    async def delete(self, key: Key, expected_version: int | None = None) -> Object:
        return await self.run_sync(SyncTransaction.delete, key, expected_version)

    async def delete_namespace_contents(self, namespace: str) -> int:
        return await self.run_sync(SyncTransaction.delete_namespace_contents, namespace)


def _match(key: Key) -> dict[str, str]:
    """The parameters of _WHERE_KEY."""
    return {"k_resource": key.resource, "k_namespace": key.namespace, "k_name": key.name}


def _version_of(body: Object) -> int:
    return int(body.get("metadata", {}).get("resourceVersion", "0"))


def _get(conn: Connection, key: Key) -> Object | None:
    text = _BODY.scalar(conn, **_match(key))
    return json.loads(text) if text is not None else None


class ObjectStore:
    # How long the event log is kept, counted in events; older resourceVersions get 410 Gone.
    RETAINED_EVENTS = 100_000

    def __init__(self, db: Database, retained_events: int | None = None) -> None:
        self.db = db
        self.retained_events = retained_events or self.RETAINED_EVENTS
        # Set (and replaced) at every local commit: watchers wait on it without any lock.
        self._changed = asyncio.Event()
        self._writes = 0  # local commits so far: a watcher that saw none since it read can wait
        self._compacted_at = 0  # the value of _writes at the last compaction
        self._resource_writes: collections.Counter[str] = collections.Counter()
        self.watch_cache = WatchCache(self)

    @asynccontextmanager
    async def transaction(self, *, dry_run: bool = False) -> AsyncIterator[Transaction]:
        """A write transaction. A dry run makes every write and check of a real one, then rolls
        them all back: it fails where the real one would, and stores and announces nothing."""
        try:
            async with self.db.write() as conn:
                tx = Transaction(conn)
                yield tx
                if dry_run:
                    raise _RolledBack
        except _RolledBack:
            return
        await self._announce(tx.events)

    async def run(self, fn: Callable[[SyncTransaction], T]) -> T:
        """`fn` in a write transaction, whole in the database's writer thread (one hop)."""
        events: list[Event] = []

        def attempt(conn: Connection) -> T:
            events.clear()  # the engine may run an aborted transaction again
            return fn(SyncTransaction(conn, events))

        result = await self.db.run_write(attempt)
        await self._announce(events)
        return result

    async def _announce(self, events: list[Event]) -> None:
        if not events:
            return
        self._resource_writes.update({event.key.resource for event in events})
        self._writes += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        # Keep the event log near its window: compact after every tenth of it written.
        if self._writes - self._compacted_at >= max(1, self.retained_events // 10):
            self._compacted_at = self._writes
            await self.compact()

    async def get(self, key: Key) -> Object | None:
        # One indexed lookup: right here, cheaper than a thread (Database.run_read).
        return await self.db.run_read(lambda conn: _get(conn, key), small=True)

    async def items(self, resource: str, namespace: str | None = None) -> tuple[list[Object], int]:
        """The objects of `resource` (in `namespace`, or everywhere), and the list's version."""
        query = select(objects.c.body).where(objects.c.resource == resource)
        if namespace is not None:
            query = query.where(objects.c.namespace == namespace)
        query = query.order_by(objects.c.namespace, objects.c.name)

        def read(conn: Connection) -> tuple[list[Object], int]:
            version = conn.scalar(select(resource_version_counter.c.value))
            found = [json.loads(text) for text in conn.scalars(query)]
            return found, int(version or 0)

        return await self.db.run_read(read, snapshot=True)

    async def page(
        self,
        resource: str,
        namespace: str | None,
        *,
        after: tuple[str, str] | None = None,
        limit: int = 0,
        matches: Callable[[Object], bool] | None = None,
    ) -> Page:
        """Objects of `resource` in (namespace, name) order after the position `after`, those
        that `matches`, at most `limit` of them (0: all), read in one snapshot. Rows are read
        in batches by the primary key, so a page costs what it returns, not the whole list."""
        batch = max(limit + 1, 100) if limit else 1000
        where = [objects.c.resource == resource]
        if namespace is not None:
            where.append(objects.c.namespace == namespace)
        base = (
            select(objects.c.namespace, objects.c.name, objects.c.body)
            .where(*where)
            .order_by(objects.c.namespace, objects.c.name)
            .limit(batch)
        )

        def read(conn: Connection) -> Page:
            version = int(conn.scalar(select(resource_version_counter.c.value)) or 0)
            found: list[Object] = []
            encoded: list[str] = []
            cursor = after
            while True:
                query = base
                if cursor is not None:
                    query = query.where(tuple_(objects.c.namespace, objects.c.name) > cursor)
                rows = conn.execute(query).all()
                for row in rows:
                    obj = json.loads(row.body)
                    if matches is not None and not matches(obj):
                        continue
                    if limit and len(found) == limit:
                        return Page(found, version, True, encoded)
                    found.append(obj)
                    encoded.append(row.body)
                if len(rows) < batch:
                    return Page(found, version, False, encoded)
                cursor = (rows[-1].namespace, rows[-1].name)

        return await self.db.run_read(read, snapshot=True)

    async def oldest_version(self) -> int | None:
        """The resourceVersion of the oldest event kept; older versions have been compacted."""
        return await self.db.run_read(
            lambda conn: conn.scalar(select(func.min(object_events.c.resource_version))),
            small=True,
        )

    def writes_to(self, resources: Sequence[str]) -> int:
        """How many local transactions wrote any of `resources`: a cheap hint of change."""
        return sum(self._resource_writes[resource] for resource in resources)

    async def latest_version(self, resources: Sequence[str]) -> int:
        """The resourceVersion of the newest event of `resources`; when none is kept, the
        newest of all: a watch from the answer misses nothing and never gets 410."""

        def read(conn: Connection) -> int:
            # One indexed max per resource: a max over an IN list walks every matching event.
            found = max(int(_NEWEST_EVENT.scalar(conn, resource=r) or 0) for r in resources)
            return found or int(_COUNTER.scalar(conn) or 0)

        return await self.db.run_read(read, small=True)

    async def events_since(
        self, version: int, resources: Sequence[str] | None, limit: int = 1000
    ) -> tuple[list[Event], int]:
        """Events of `resources` (None: of all) after `version`, and the version up to which
        all were read."""

        def read(conn: Connection) -> tuple[list[Event], int]:
            newest = int(conn.scalar(select(resource_version_counter.c.value)) or 0)
            oldest = conn.scalar(select(func.min(object_events.c.resource_version)))
            if oldest is not None and version < oldest - 1:
                raise Expired(version)
            query = select(object_events).where(object_events.c.resource_version > version)
            if resources is not None:
                query = query.where(object_events.c.resource.in_(resources))
            rows = conn.execute(query.order_by(object_events.c.resource_version).limit(limit))
            found = [
                Event(
                    row.type,
                    row.resource_version,
                    Key(row.resource, row.namespace, row.name),
                    json.loads(row.body),
                )
                for row in rows
            ]
            return found, newest

        events, newest = await self.db.run_read(read, snapshot=True)
        if len(events) == limit:
            newest = events[-1].resource_version
        return events, newest

    async def watch(self, version: int, resources: Sequence[str]) -> AsyncIterator[Event]:
        """Every event of `resources` after `version`, as they happen; never ends by itself.
        Served from the process's one watch cache (wharf.db.watch_cache)."""
        async for batch in self.watch_cache.watch_batches(version, resources):
            for event in batch:
                yield event

    def watch_batches(self, version: int, resources: Sequence[str]) -> AsyncIterator[list[Event]]:
        """What `watch` gives, in batches as they arrive (never empty)."""
        return self.watch_cache.watch_batches(version, resources)

    def next_local_commit(self) -> asyncio.Event:
        """Set at the next commit of this process that wrote objects. An event rather than
        its wait(): a caller that ends up not waiting leaves no coroutine never awaited."""
        return self._changed

    async def newest_version(self) -> int:
        """The newest resourceVersion given out."""
        return await self.db.run_read(lambda conn: int(_COUNTER.scalar(conn) or 0), small=True)

    async def compact(self) -> None:
        """Drop events beyond the retained window."""

        def drop(conn: Connection) -> None:
            newest = conn.scalar(select(func.max(object_events.c.resource_version)))
            if newest is not None:
                conn.execute(
                    delete(object_events).where(
                        object_events.c.resource_version <= newest - self.retained_events
                    )
                )

        await self.db.run_write(drop)
