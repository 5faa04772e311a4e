"""Engines for the metadata database, and bringing its schema up to date."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .group_commit import GroupCommit, ThreadWriter

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'wharf.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so that BEGIN is ours to emit (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL syncs the WAL at every commit: a 201 answer promises the metadata survives a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """A reader engine and a writer engine over one database.

    On SQLite every write transaction starts with BEGIN IMMEDIATE: a deferred transaction that
    later wants to write fails at once with SQLITE_BUSY instead of waiting its turn, which would
    break concurrent pushes from several processes.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        # Told how long each read and write took ("read" or "write", seconds): metrics.
        self.timed: Callable[[str, float], None] = _untimed
        self._group: GroupCommit | None
        self._thread_writer: ThreadWriter | None = None
        self._sync_reader: Engine | None = None
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.reader = create_async_engine(url, pool_size=8, max_overflow=8)
            self.writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
            for engine, begin in ((self.reader, "BEGIN"), (self.writer, "BEGIN IMMEDIATE")):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
                event.listen(engine.sync_engine, "begin", _beginner(begin))
            self._group = GroupCommit(self.writer)
            self._setup_threads(url.replace("+aiosqlite", "", 1), self._group)
        else:
            # PostgreSQL runs concurrent writers and groups their commits by itself.
            self.reader = create_async_engine(url, pool_size=10, max_overflow=20)
            self.writer = self.reader
            self._group = None

    def _setup_threads(self, url: str, group: GroupCommit) -> None:
        """Sync engines for whole operations run in threads: one hop per operation."""
        args = {"check_same_thread": False}
        # Reads run in autocommit: a single statement needs no BEGIN and no ROLLBACK.
        self._sync_reader = create_engine(
            url, connect_args=args, pool_size=4, max_overflow=4, pool_reset_on_return=None
        )
        event.listen(self._sync_reader, "connect", _sqlite_pragmas)
        writer = create_engine(url, connect_args=args, pool_size=1, max_overflow=0)
        event.listen(writer, "connect", _sqlite_pragmas)
        event.listen(writer, "begin", _beginner("BEGIN IMMEDIATE"))
        self._thread_writer = ThreadWriter(writer, group)
        self._read_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="db-read")

    async def run_read(self, fn: Callable[[Connection], T], *, small: bool = False) -> T:
        """`fn(connection)` in a reader thread. A `small` read (one indexed lookup) runs right
        here instead: SQLite answers it in microseconds from the page cache (a WAL reader never
        waits for writers), less than handing it to a thread would cost."""
        began = time.perf_counter()
        try:
            return await self._read(fn, small)
        finally:
            self.timed("read", time.perf_counter() - began)

    async def _read(self, fn: Callable[[Connection], T], small: bool) -> T:
        reader = self._sync_reader
        if reader is None:
            async with self.reader.connect() as conn:
                return await conn.run_sync(fn)
        if small:
            with reader.connect() as here:
                return fn(here)

        def call() -> T:
            with reader.connect() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._read_threads, call)

    async def run_write(self, fn: Callable[[Connection], T]) -> T:
        """`fn(connection)` in a write transaction; durable once this returns."""
        began = time.perf_counter()
        try:
            if self._thread_writer is not None:
                return await self._thread_writer.run(fn)
            async with self.writer.begin() as conn:
                return await conn.run_sync(fn)
        finally:
            self.timed("write", time.perf_counter() - began)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; when the block returns, what it wrote is durable."""
        began = time.perf_counter()
        try:
            if self._group is not None:
                async with self._group.write() as conn:
                    yield conn
            else:
                async with self.writer.begin() as conn:
                    yield conn
        finally:
            self.timed("write", time.perf_counter() - began)

    async def migrate(self) -> None:
        async with self.writer.begin() as conn:
            await conn.run_sync(_upgrade)

    async def dispose(self) -> None:
        if self._thread_writer is not None:
            self._thread_writer.close()
            self._thread_writer.engine.dispose()
            self._read_threads.shutdown(wait=True)
        if self._sync_reader is not None:
            self._sync_reader.dispose()
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def _untimed(_kind: str, _seconds: float) -> None:
    return None


def _beginner(statement: str) -> Any:
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql(statement)

    return begin


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
