"""PostgreSQL (through asyncpg) as the metadata database, shared by any number of processes.

Writers run concurrently in READ COMMITTED; the resourceVersion counter's row lock orders
those that write objects, so versions become visible in commit order (`wharf.db.objects`). A
transaction that PostgreSQL aborts to break a deadlock or a serialization conflict is run again.
Reads that must see one moment (a list and its version) run in REPEATABLE READ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from .database import Database, DatabaseUnavailable
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


class PostgresDatabase(Database):
    def __init__(self, url: str, pool_size: int = 10) -> None:
        parsed = make_url(url).set(drivername="postgresql+asyncpg")
        super().__init__(parsed.render_as_string(hide_password=False))
        self._engine = create_async_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        self._snapshots = self._engine.execution_options(isolation_level="REPEATABLE READ")

    async def _read(self, fn: Callable[[Connection], T], small: bool, snapshot: bool) -> T:
        engine = self._snapshots if snapshot else self._engine
        async with engine.connect() as conn:
            return await conn.run_sync(fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
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

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._engine.begin()

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
            name = f"{type(exc).__module__}.{type(exc).__qualname__}"
            raise DatabaseUnavailable(f"postgresql: {name}") from None

    async def dispose(self) -> None:
        await self._engine.dispose()
