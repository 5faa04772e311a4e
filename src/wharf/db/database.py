"""The database seam: what the object store and the registry need of a metadata database.

Each engine is one module behind this class (`sqlite`, `postgresql`); `open_database` picks
one from the URL, and nothing else in Wharf asks which engine it runs on."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database did not answer; the message says how, without any statement or value."""

    # What a request that met it is told: "the database is <state>", try again after this
    # many seconds.
    state = "unavailable"
    RETRY_SECONDS = 5


class DatabaseFull(DatabaseUnavailable):
    """The database has no room for what a write adds (its disk is full)."""

    state = "full"


class Database(ABC):
    """Reads and write transactions over one metadata database.

    Reads see one snapshot when asked (`snapshot=True`): a list and its resourceVersion, or
    events and the newest version, must come from the same moment. Writes are durable once
    they return, and each takes its resourceVersions in commit order (`wharf.db.objects`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Told how long each read and write took ("read" or "write", seconds): metrics.
        self.timed: Callable[[str, float], None] = _untimed

    async def run_read(
        self, fn: Callable[[Connection], T], *, small: bool = False, snapshot: bool = False
    ) -> T:
        """`fn(connection)` in a read. `small`: one indexed lookup, which an engine may answer
        without a hop to a thread; `snapshot`: all of `fn`'s statements see one moment."""
        began = time.perf_counter()
        try:
            return await self._read(fn, small, snapshot)
        finally:
            self.timed("read", time.perf_counter() - began)

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in a write transaction; durable once this returns. `fn` may run
        more than once (an engine retries a transaction its concurrency control aborted), so it
        changes nothing but the database."""
        began = time.perf_counter()
        try:
            return await self._write(fn)
        finally:
            self.timed("write", time.perf_counter() - began)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; when the block returns, what it wrote is durable."""
        began = time.perf_counter()
        try:
            async with self._transaction() as conn:
                yield conn
        finally:
            self.timed("write", time.perf_counter() - began)

    @abstractmethod
    async def _read(self, fn: Callable[[Connection], T], small: bool, snapshot: bool) -> T: ...

    @abstractmethod
    async def _write(self, fn: Callable[[Connection], T]) -> T: ...

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Held by one process at a time among all that share the database: start-up work
        (migrations, default objects) runs in it. One process alone needs no lock."""
        yield

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    @abstractmethod
    async def migrate(self) -> None:
        """Bring the schema up to date; safe when several processes start at once."""

    @abstractmethod
    async def probe(self, timeout: float) -> None:
        """Return when the database answers within `timeout` seconds; otherwise raise
        DatabaseUnavailable saying how it failed."""

    @abstractmethod
    async def dispose(self) -> None: ...


def _untimed(_kind: str, _seconds: float) -> None:
    return None


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'wharf.db'}"


def database_backend(url: str) -> str:
    """ "sqlite" or "postgresql", the engine a database URL names, with its options checked;
    ValueError if it names none (saying nothing of the URL past its scheme: the rest may hold
    a password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL: use sqlite:// or postgresql://") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")
    if backend == "sqlite":
        from .sqlite import busy_seconds

        busy_seconds(parsed.query)
    return backend


def open_database(url: str) -> Database:
    """The engine a database URL names: sqlite+aiosqlite:// or postgresql+asyncpg://."""
    if database_backend(url) == "sqlite":
        from .sqlite import SQLiteDatabase

        return SQLiteDatabase(url)
    from .postgresql import PostgresDatabase

    return PostgresDatabase(url)
