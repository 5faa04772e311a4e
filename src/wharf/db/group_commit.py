"""Group commit: concurrent writers share one transaction, and so one fsync.

SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for the
disk. Rather than one commit per request, each writer runs its statements inside a savepoint of
a shared transaction, one writer at a time; the transaction commits once nobody is queued
behind it, and every writer returns only after that commit. A writer that fails rolls back its
own savepoint and leaves the others' work alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction


class GroupCommit:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._lock = asyncio.Lock()
        self._conn: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self._committer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with self._lock:
            if self._conn is None:
                self._conn = await self.engine.connect()
                self._transaction = await self._conn.begin()
            conn = self._conn
            savepoint = await conn.begin_nested()
            try:
                yield conn
            except BaseException:
                await savepoint.rollback()
                raise
            await savepoint.commit()
            self._waiting.append(done)
            if self._committer is None or self._committer.done():
                # Queued behind the lock: it commits after the writers already waiting.
                self._committer = asyncio.create_task(self._commit())
        await done

    async def _commit(self) -> None:
        async with self._lock:
            conn, transaction, waiting = self._conn, self._transaction, self._waiting
            self._conn, self._transaction, self._waiting = None, None, []
            if conn is None or transaction is None:
                return
            try:
                await transaction.commit()
            except BaseException as exc:
                for future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                await conn.close()
                if not isinstance(exc, Exception):
                    raise
                return
            await conn.close()
            for future in waiting:
                if not future.done():
                    future.set_result(None)
