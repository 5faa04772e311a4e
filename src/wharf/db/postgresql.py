"""PostgreSQL (through asyncpg) as the metadata database, shared by any number of processes.

Writers run concurrently in READ COMMITTED; the resourceVersion counter's row lock orders
those that write objects, so versions become visible in commit order (`wharf.db.objects`). A
transaction that PostgreSQL aborts to break a deadlock or a serialization conflict is run again.
Reads that must see one moment (a list and its version) run in REPEATABLE READ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .database import Database, DatabaseFull, DatabaseUnavailable
from .migrate import upgrade

T = TypeVar("T")

log = structlog.get_logger("wharf.db")

# SQLSTATEs after which the whole transaction may simply run again.
_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_ATTEMPTS = 5
# Constants of our own: the advisory locks of start-up work and of migrations.
_START_LOCK = 0x77686172  # "whar"
_MIGRATION_LOCK = 0x77686173


def _sqlstate(error: DBAPIError) -> str | None:
    original: Any = error.orig
    for candidate in (original, getattr(original, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if state:
            return str(state)
    return None


# SQLSTATE classes of a server that is not there for us: connection exceptions, an
# administrator's or a crash's shutdown ("57P01" and the like), and a server out of a
# resource (disk, memory, connection slots: "53300" when every replica's pools together want
# more connections than max_connections allows).
_GONE_CLASSES = ("08", "57", "53")
_DISK_FULL = "53100"


@contextmanager
def _unavailable_as_such() -> Iterator[None]:
    """A server that cannot be reached or went away raises DatabaseUnavailable, which every
    request answers with 503 and Retry-After; any other error stays what it is."""
    try:
        yield
    except DBAPIError as error:
        state = _sqlstate(error) or ""
        if not error.connection_invalidated and not state.startswith(_GONE_CLASSES):
            raise
        outage = DatabaseFull if state == _DISK_FULL else DatabaseUnavailable
        raise outage(f"postgresql: {_name(error.orig)} {state}".strip()) from None
    except ConnectionError as error:  # refused or reset before the driver could say more
        raise DatabaseUnavailable(f"postgresql: {_name(error)}") from None


def _name(error: object) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}"


class PostgresDatabase(Database):
    def __init__(self, url: str, pool_size: int = 10) -> None:
        parsed = make_url(url).set(drivername="postgresql+asyncpg")
        super().__init__(parsed.render_as_string(hide_password=False))
        # Two pools of `pool_size` connections each, opened as needed and kept. No overflow:
        # its connections are closed as they come back, and under load a process opened and
        # closed dozens a second (for PostgreSQL each is a server process forked and set up).
        # Writes (and snapshot reads): each connection pinged when taken from the pool, so
        # that a transaction never starts on a connection the server closed (it restarted):
        # once sent, a commit that fails cannot tell whether it happened.
        self._engine = create_async_engine(
            parsed, pool_size=pool_size, max_overflow=0, pool_pre_ping=True
        )
        self._snapshots = self._engine.execution_options(isolation_level="REPEATABLE READ")
        # Other reads, in autocommit: each statement reads committed data as it would in a
        # READ COMMITTED transaction, without the BEGIN and ROLLBACK round trips; unpinged
        # (a ping outside autocommit is three round trips more), and run again on a fresh
        # connection when the one taken was closed by the server.
        self._reads = create_async_engine(
            parsed, pool_size=pool_size, max_overflow=0, isolation_level="AUTOCOMMIT"
        )

    async def _read(self, fn: Callable[[Connection], T], small: bool, snapshot: bool) -> T:
        with _unavailable_as_such():
            if snapshot:
                async with self._snapshots.connect() as conn:
                    return await conn.run_sync(fn)
            try:
                async with self._reads.connect() as conn:
                    return await conn.run_sync(fn)
            except DBAPIError as error:
                if not error.connection_invalidated:
                    raise
            # The server closed the connection (it restarted): so it did all it had before.
            await self._reads.dispose()
            async with self._reads.connect() as conn:
                return await conn.run_sync(fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        with _unavailable_as_such():
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    async with self._engine.begin() as conn:
                        return await conn.run_sync(fn)
                except DBAPIError as error:
                    if _sqlstate(error) not in _RETRYABLE or attempt == _ATTEMPTS:
                        raise
                    log.debug("transaction retried", sqlstate=_sqlstate(error), attempt=attempt)
                    await asyncio.sleep(0.01 * attempt)
            raise AssertionError("unreachable")

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        with _unavailable_as_such():
            async with self._engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        # A session lock on a connection of its own, held for the block: processes starting
        # together migrate and bootstrap one after another, and the later ones find it done.
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _START_LOCK})
            await conn.commit()
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _START_LOCK})
                await conn.commit()

    async def migrate(self) -> None:
        async with self._engine.begin() as conn:
            # Also alone (`wharf migrate` beside running servers): the same lock, for this
            # transaction; a session lock already held by this process is no obstacle to it.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            await conn.run_sync(upgrade)

    async def probe(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except TimeoutError:
            raise DatabaseUnavailable(f"no answer within {timeout:g}s") from None
        except Exception as exc:  # the driver's own errors, whichever it raises
            raise DatabaseUnavailable(f"postgresql: {_name(exc)}") from None

    async def dispose(self) -> None:
        await self._engine.dispose()
        await self._reads.dispose()
