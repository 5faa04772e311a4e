"""Group commit: concurrent writers share one transaction, and so one fsync.

SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for the
disk. Rather than one commit per request, writers run inside savepoints of a shared
transaction, one writer at a time, and return only after the commit that includes them.
A writer that fails rolls back its own savepoint and leaves the others' work alone.

Two kinds of writer share the one connection's turn:
- `GroupCommit.write()`: an async block on the async engine (the control plane's object store);
- `ThreadWriter.run(fn)`: a plain function run in the writer thread on a sync connection, so that
  a whole write costs one hop to a thread instead of one per statement (the registry's writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

T = TypeVar("T")


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
                opened = await self.engine.connect()
                try:
                    self._transaction = await opened.begin()
                except BaseException:
                    # Refused (another program's lock past the busy timeout): the pool's one
                    # connection goes back, and the next writer begins afresh.
                    await opened.close()
                    raise
                self._conn = opened
            conn = self._conn
            savepoint = await conn.begin_nested()
            try:
                yield conn
            except BaseException:
                await savepoint.rollback()
                # Ended even when nobody else wrote: an open transaction holds SQLite's write
                # lock, and other processes would wait on it until the next write here.
                self._schedule_commit()
                raise
            await savepoint.commit()
            self._waiting.append(done)
            self._schedule_commit()
        await done

    def _schedule_commit(self) -> None:
        if self._committer is None or self._committer.done():
            # Queued behind the lock: it commits after the writers already waiting.
            self._committer = asyncio.create_task(self._commit())

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The writer's turn, with no shared transaction left open (it is committed first)."""
        async with self._lock:
            await self._commit_locked()
            yield

    async def _commit(self) -> None:
        async with self._lock:
            await self._commit_locked()

    async def _commit_locked(self) -> None:
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


Outcome = tuple[bool, Any]


class ThreadWriter:
    """Write functions run in one thread, as many per transaction as are waiting."""

    def __init__(
        self,
        engine: Engine,
        group: GroupCommit,
        turn: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self.engine = engine
        self.group = group
        # Held around each transaction, in the writer thread: what orders this process's
        # writers with other processes' (SQLite's file lock beside the database).
        self._turn = turn
        self._pending: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in a write transaction; once this returns, its writes are durable."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            async with self.group.exclusive():
                # Taken only now: whoever queued while we waited for the turn joins this batch.
                batch, self._pending = self._pending, []
                outcomes = await loop.run_in_executor(
                    self._executor, self._run_batch, [fn for fn, _ in batch]
                )
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _run_batch(self, functions: list[Callable[[Connection], Any]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        try:
            with self._turn(), self.engine.connect() as conn, conn.begin():
                # Savepoints straight on the driver: SQLAlchemy's cost 40 times as much, and a
                # batch has one per write.
                cursor = cast(Any, conn.connection.dbapi_connection).cursor()
                for fn in functions:
                    cursor.execute("SAVEPOINT wharf_write")
                    try:
                        value = fn(conn)
                    except Exception as exc:
                        cursor.execute("ROLLBACK TO SAVEPOINT wharf_write")
                        outcomes.append((False, exc))
                    else:
                        outcomes.append((True, value))
                    cursor.execute("RELEASE SAVEPOINT wharf_write")
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            return [(False, exc)] * len(functions)
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=True)
