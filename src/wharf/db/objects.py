"""A Kubernetes-style object store: JSON objects with one global resourceVersion, and the event
log that feeds watch.

Every write takes the next value of a single counter as its resourceVersion, inside the same
transaction that writes the object and appends its event, so the log is totally ordered and a
watcher that resumes from a resourceVersion misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .engine import Database
from .schema import object_events, objects, resource_version_counter

Object = dict[str, Any]


class StoreError(Exception):
    """Base of the store's refusals; the API maps each to a Kubernetes Status."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class Conflict(StoreError):
    pass


class Expired(StoreError):
    """The resourceVersion asked for is older than the retained event log."""


@dataclass(frozen=True, slots=True)
class Key:
    resource: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    resource_version: int
    key: Key
    object: Object


def _dump(body: Object) -> str:
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def _set_version(body: Object, version: int) -> Object:
    body.setdefault("metadata", {})["resourceVersion"] = str(version)
    return body


class Transaction:
    """Writes that commit together; their events are announced after the commit."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.events: list[Event] = []

    async def _next_version(self) -> int:
        value = await self.conn.scalar(
            update(resource_version_counter)
            .where(resource_version_counter.c.id == 1)
            .values(value=resource_version_counter.c.value + 1)
            .returning(resource_version_counter.c.value)
        )
        assert value is not None
        return int(value)

    async def _log(self, kind: str, key: Key, body: Object, version: int) -> None:
        await self.conn.execute(
            insert(object_events).values(
                resource_version=version,
                resource=key.resource,
                namespace=key.namespace,
                name=key.name,
                type=kind,
                body=_dump(body),
            )
        )
        self.events.append(Event(kind, version, key, body))

    async def get(self, key: Key) -> Object | None:
        return await _get(self.conn, key)

    async def create(self, key: Key, body: Object) -> Object:
        version = await self._next_version()
        _set_version(body, version)
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(objects).values(
                        resource=key.resource,
                        namespace=key.namespace,
                        name=key.name,
                        resource_version=version,
                        body=_dump(body),
                    )
                )
        except IntegrityError:
            raise AlreadyExists(key) from None
        await self._log("ADDED", key, body, version)
        return body

    async def update(self, key: Key, body: Object, expected_version: int | None = None) -> Object:
        """Replace the object; with `expected_version`, only if nobody changed it since."""
        current = await self.conn.scalar(select(objects.c.resource_version).where(*_match(key)))
        if current is None:
            raise NotFound(key)
        if expected_version is not None and current != expected_version:
            raise Conflict(key)
        version = await self._next_version()
        _set_version(body, version)
        await self.conn.execute(
            update(objects).where(*_match(key)).values(resource_version=version, body=_dump(body))
        )
        await self._log("MODIFIED", key, body, version)
        return body

    async def delete(self, key: Key, expected_version: int | None = None) -> Object:
        body = await _get(self.conn, key)
        if body is None:
            raise NotFound(key)
        if expected_version is not None and _version_of(body) != expected_version:
            raise Conflict(key)
        version = await self._next_version()
        await self.conn.execute(delete(objects).where(*_match(key)))
        _set_version(body, version)
        await self._log("DELETED", key, body, version)
        return body

    async def delete_namespace_contents(self, namespace: str) -> int:
        """Delete every object in `namespace`; return how many."""
        rows = await self.conn.execute(
            select(objects.c.resource, objects.c.name).where(objects.c.namespace == namespace)
        )
        keys = [Key(row.resource, namespace, row.name) for row in rows]
        for key in keys:
            await self.delete(key)
        return len(keys)


def _match(key: Key) -> Sequence[Any]:
    return (
        objects.c.resource == key.resource,
        objects.c.namespace == key.namespace,
        objects.c.name == key.name,
    )


def _version_of(body: Object) -> int:
    return int(body.get("metadata", {}).get("resourceVersion", "0"))


async def _get(conn: AsyncConnection, key: Key) -> Object | None:
    text = await conn.scalar(select(objects.c.body).where(*_match(key)))
    return json.loads(text) if text is not None else None


class ObjectStore:
    # How long the event log is kept, counted in events; older resourceVersions get 410 Gone.
    RETAINED_EVENTS = 100_000
    # Watchers also poll, so that writes of other processes reach them within this time.
    POLL_SECONDS = 0.5

    def __init__(self, db: Database, retained_events: int | None = None) -> None:
        self.db = db
        self.retained_events = retained_events or self.RETAINED_EVENTS
        self._changed = asyncio.Condition()
        self._writes = 0  # local commits so far: a watcher that saw none since it read can wait
        self._compacted_at = 0  # the value of _writes at the last compaction

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.db.write() as conn:
            tx = Transaction(conn)
            yield tx
        if tx.events:
            async with self._changed:
                self._writes += 1
                self._changed.notify_all()
            # Keep the event log near its window: compact after every tenth of it written.
            if self._writes - self._compacted_at >= max(1, self.retained_events // 10):
                self._compacted_at = self._writes
                await self.compact()

    async def get(self, key: Key) -> Object | None:
        async with self.db.read() as conn:
            return await _get(conn, key)

    async def items(self, resource: str, namespace: str | None = None) -> tuple[list[Object], int]:
        """The objects of `resource` (in `namespace`, or everywhere), and the list's version."""
        query = select(objects.c.body).where(objects.c.resource == resource)
        if namespace is not None:
            query = query.where(objects.c.namespace == namespace)
        query = query.order_by(objects.c.namespace, objects.c.name)
        # One read transaction: the version matches exactly the rows listed.
        async with self.db.read() as conn, conn.begin():
            version = await conn.scalar(select(resource_version_counter.c.value))
            rows = await conn.scalars(query)
            items = [json.loads(text) for text in rows]
        return items, int(version or 0)

    @property
    def local_writes(self) -> int:
        """How many transactions this process committed: a cheap hint that something changed."""
        return self._writes

    async def latest_version(self, resources: Sequence[str]) -> int:
        """The resourceVersion of the newest event of `resources` (0 when none)."""
        async with self.db.read() as conn:
            value = await conn.scalar(
                select(func.max(object_events.c.resource_version)).where(
                    object_events.c.resource.in_(resources)
                )
            )
        return int(value or 0)

    async def current_version(self) -> int:
        async with self.db.read() as conn:
            return int(await conn.scalar(select(resource_version_counter.c.value)) or 0)

    async def events_since(
        self, version: int, resources: Sequence[str], limit: int = 1000
    ) -> tuple[list[Event], int]:
        """Events of `resources` after `version`, and the version up to which all were read."""
        async with self.db.read() as conn, conn.begin():
            # Read in the same snapshot as the events: nothing can slip in between.
            newest = int(await conn.scalar(select(resource_version_counter.c.value)) or 0)
            oldest = await conn.scalar(select(func.min(object_events.c.resource_version)))
            if oldest is not None and version < oldest - 1:
                raise Expired(version)
            rows = await conn.execute(
                select(object_events)
                .where(
                    object_events.c.resource_version > version,
                    object_events.c.resource.in_(resources),
                )
                .order_by(object_events.c.resource_version)
                .limit(limit)
            )
            events = [
                Event(
                    row.type,
                    row.resource_version,
                    Key(row.resource, row.namespace, row.name),
                    json.loads(row.body),
                )
                for row in rows
            ]
        if len(events) == limit:
            newest = events[-1].resource_version
        return events, newest

    async def watch(self, version: int, resources: Sequence[str]) -> AsyncIterator[Event]:
        """Every event of `resources` after `version`, as they happen; never ends by itself."""
        while True:
            seen = self._writes
            events, newest = await self.events_since(version, resources)
            for event in events:
                yield event
            version = max(version, newest)
            if not events:
                async with self._changed:
                    if self._writes == seen:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._changed.wait(), self.POLL_SECONDS)

    async def compact(self) -> None:
        """Drop events beyond the retained window."""
        async with self.db.write() as conn:
            newest = await conn.scalar(select(func.max(object_events.c.resource_version)))
            if newest is not None:
                await conn.execute(
                    delete(object_events).where(
                        object_events.c.resource_version <= newest - self.retained_events
                    )
                )
