"""SQLite (WAL) as the metadata database: the embedded default.

SQLite allows one writer at a time and syncs at every commit, so writers share commits
(`group_commit`), and whole operations run in threads on plain connections: one hop per
operation rather than one per statement. Several processes may share the file; SQLite's own
locks order them."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Connection, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .database import Database, DatabaseFull, DatabaseUnavailable
from .group_commit import GroupCommit, ThreadWriter
from .migrate import upgrade

T = TypeVar("T")


# How long a write waits for another process's (or program's) write lock before it is an
# outage: the URL's `timeout` (seconds, as the driver names it), else this.
BUSY_SECONDS = 30.0


def busy_seconds(query: Any) -> float:
    given = query.get("timeout", BUSY_SECONDS)
    try:
        seconds = float(given)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"an SQLite URL's timeout is seconds, above 0 and at most 3600: {given!r}")
    return seconds


def _pragmas(busy_seconds: float) -> Callable[[Any, Any], None]:
    def apply(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to emit (_beginner).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL at every commit: a 201 promises the metadata survives a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_seconds * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return apply


# Result codes of a database that cannot be used now, whatever the statement (their extended
# codes too: SQLITE_IOERR_FSYNC, SQLITE_READONLY_DBMOVED...): another program holding the
# write lock past the busy timeout, the file's disk failing, or the file made read-only or
# taken away. Anything else stays what it is.
_OUTAGES = ("SQLITE_BUSY", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")


class _OutagesAsSuch:
    """A full disk raises DatabaseFull, another outage DatabaseUnavailable: every request
    answers them with 503 and Retry-After. A class, not a generator: it wraps every read,
    the inline lookups of a pull's path included, and costs a sixth as much."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, error: BaseException | None, _trace: object) -> None:
        if not isinstance(error, sqlite3.Error | DBAPIError):
            return
        cause = error.orig if isinstance(error, DBAPIError) else error
        name = getattr(cause, "sqlite_errorname", "") or ""
        if name == "SQLITE_FULL":
            raise DatabaseFull("sqlite: SQLITE_FULL, no space left on its device") from None
        if name.startswith(_OUTAGES):
            raise DatabaseUnavailable(f"sqlite: {name}") from None


_outages_as_such = _OutagesAsSuch()


def _beginner(statement: str) -> Any:
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql(statement)

    return begin


class SQLiteDatabase(Database):
    """Every write transaction starts with BEGIN IMMEDIATE: a deferred transaction that later
    wants to write fails at once with SQLITE_BUSY instead of waiting its turn, which would break
    concurrent pushes from several processes."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url).set(drivername="sqlite+aiosqlite")
        super().__init__(parsed.render_as_string(hide_password=False))
        assert parsed.database, "an SQLite URL names its file"
        self.path: str = parsed.database
        busy = busy_seconds(parsed.query)
        pragmas = _pragmas(busy)
        self._writer = create_async_engine(self.url, pool_size=1, max_overflow=0, pool_timeout=60)
        event.listen(self._writer.sync_engine, "connect", pragmas)
        event.listen(self._writer.sync_engine, "begin", _beginner("BEGIN IMMEDIATE"))
        self._group = GroupCommit(self._writer)

        sync_url = parsed.set(drivername="sqlite")
        args = {"check_same_thread": False}
        # Reads run in autocommit: a single statement needs no BEGIN and no ROLLBACK.
        self._reader = create_engine(
            sync_url, connect_args=args, pool_size=4, max_overflow=4, pool_reset_on_return=None
        )
        event.listen(self._reader, "connect", pragmas)
        writer = create_engine(sync_url, connect_args=args, pool_size=1, max_overflow=0)
        event.listen(writer, "connect", pragmas)
        event.listen(writer, "begin", _beginner("BEGIN IMMEDIATE"))
        self._turns = WriteTurns(f"{self.path}.write-lock", busy)
        self._thread_writer = ThreadWriter(writer, self._group, self._turns.turn)
        self._read_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="db-read")

    async def _read(self, fn: Callable[[Connection], T], small: bool, snapshot: bool) -> T:
        def call() -> T:
            with _outages_as_such, self._reader.connect() as conn:
                if snapshot:
                    # A WAL reader's snapshot lasts from its first read to the end of its
                    # transaction: without one, each statement would see its own moment.
                    conn.exec_driver_sql("BEGIN")
                return fn(conn)

        if small and not snapshot:
            # One indexed lookup: SQLite answers it in microseconds from the page cache (a WAL
            # reader never waits for writers), less than handing it to a thread would cost.
            return call()
        return await asyncio.get_running_loop().run_in_executor(self._read_threads, call)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        with _outages_as_such:
            return await self._thread_writer.run(fn)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        with _outages_as_such:
            async with self._group.write() as conn:
                yield conn

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        # Processes sharing the file (workers, or servers started side by side) take turns
        # on a lock beside it; the kernel drops the lock of a process that dies.
        fd = os.open(f"{self.path}.start-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    async def migrate(self) -> None:
        # BEGIN IMMEDIATE holds SQLite's write lock: a second process starting waits for it.
        with _outages_as_such:
            async with self._group.exclusive(), self._writer.begin() as conn:
                await conn.run_sync(upgrade)

    async def probe(self, timeout: float) -> None:
        await asyncio.to_thread(_probe, self.path, timeout)

    async def dispose(self) -> None:
        self._thread_writer.close()
        self._thread_writer.engine.dispose()
        self._turns.close()
        self._read_threads.shutdown(wait=True)
        self._reader.dispose()
        await self._writer.dispose()


class WriteTurns:
    """Processes writing to one SQLite file take turns on an flock of a file beside it. SQLite's
    own lock makes a loser sleep 1, 2, 5, 10... ms between tries, so with two busy processes
    the lock sits idle much of the time; a loser here tries again every half millisecond. The
    kernel lets go of a dead process's lock; one held by a live process past SQLite's own busy
    timeout is an outage, as SQLite's lock would be."""

    POLL_SECONDS = 0.0005

    def __init__(self, path: str, wait_seconds: float = BUSY_SECONDS) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.wait_seconds = wait_seconds  # as PRAGMA busy_timeout

    @contextmanager
    def turn(self) -> Iterator[None]:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"another process has held the database's write lock for "
                        f"{self.wait_seconds:g} s"
                    ) from None
                time.sleep(self.POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def _probe(path: str, timeout: float) -> None:
    """A connection of its own, with a short busy timeout: the pool's connections wait 30 s
    for a lock, and a probe must not take one of them. `mode=rw` fails on a missing file
    instead of making an empty database; reading the migration table fails on a file that is
    not Wharf's; BEGIN IMMEDIATE fails while another program holds the write lock."""
    try:
        conn = sqlite3.connect(
            f"file:{quote(path)}?mode=rw", uri=True, timeout=timeout, isolation_level=None
        )
        try:
            conn.execute("SELECT version_num FROM alembic_version").fetchall()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        raise DatabaseUnavailable(f"sqlite: {name}") from None
