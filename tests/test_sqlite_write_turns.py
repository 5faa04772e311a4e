"""Processes sharing an SQLite file take turns on a lock beside it (wharf.db.sqlite.WriteTurns):
a writer waits while another holds it, goes on the moment it is let go, and reports an outage,
not a hang, when it is held past SQLite's own busy timeout (the URL's `timeout`, or 30 s)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import make_url

from wharf.db.database import DatabaseUnavailable
from wharf.db.sqlite import BUSY_SECONDS, SQLiteDatabase, WriteTurns, busy_seconds


@pytest.fixture
def turns(tmp_path: Path) -> Iterator[WriteTurns]:
    found = WriteTurns(str(tmp_path / "wharf.db.write-lock"))
    yield found
    found.close()


@pytest.fixture
def other_holder(tmp_path: Path) -> Iterator[int]:
    """Another open file of the lock, as another process has: flock tells the two apart."""
    fd = os.open(tmp_path / "wharf.db.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def test_a_turn_waits_for_the_holder_and_goes_on_when_it_lets_go(
    turns: WriteTurns, other_holder: int
) -> None:
    fcntl.flock(other_holder, fcntl.LOCK_EX)
    entered = threading.Event()

    def write() -> None:
        with turns.turn():
            entered.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not entered.wait(0.2), "the turn was taken while another held the lock"
    fcntl.flock(other_holder, fcntl.LOCK_UN)
    assert entered.wait(5), "the turn was not taken once the lock was let go"
    writer.join(5)
    # And let go after it: the other holder gets it at once.
    fcntl.flock(other_holder, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_lock_held_past_the_busy_timeout_is_an_outage(
    turns: WriteTurns, other_holder: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(turns, "wait_seconds", 0.3)
    fcntl.flock(other_holder, fcntl.LOCK_EX)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="held the database's write lock"), turns.turn():
        pytest.fail("the turn was taken while another held the lock")
    assert 0.3 <= time.monotonic() - started < 5
    fcntl.flock(other_holder, fcntl.LOCK_UN)
    with turns.turn():
        pass


def test_a_failing_write_lets_go_of_its_turn(turns: WriteTurns, other_holder: int) -> None:
    with pytest.raises(RuntimeError), turns.turn():
        raise RuntimeError("the write failed")
    fcntl.flock(other_holder, fcntl.LOCK_EX | fcntl.LOCK_NB)


@given(st.text(max_size=12) | st.floats(allow_nan=True).map(str) | st.integers().map(str))
def test_a_urls_timeout_is_seconds_in_range_or_a_clear_error(given_value: str) -> None:
    query = make_url("sqlite:///w.db").update_query_dict({"timeout": given_value}).query
    try:
        seconds = busy_seconds(query)
    except ValueError as exc:
        assert "timeout is seconds" in str(exc)
    else:
        assert 0 < seconds <= 3600
        assert seconds == float(given_value)


def test_the_busy_timeout_comes_from_the_url(tmp_path: Path) -> None:
    async def busy(query: str) -> tuple[object, float]:
        database = SQLiteDatabase(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}{query}")
        try:
            pragma = await database.run_read(
                lambda conn: conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            )
            return pragma, database._turns.wait_seconds
        finally:
            await database.dispose()

    assert asyncio.run(busy("")) == (round(BUSY_SECONDS * 1000), BUSY_SECONDS)
    assert asyncio.run(busy("?timeout=2.5")) == (2500, 2.5)


def test_a_write_refused_at_its_begin_leaves_later_writes_working(tmp_path: Path) -> None:
    """A write whose BEGIN IMMEDIATE meets another program's lock past the busy timeout is an
    outage; the shared transaction's connection goes back to the pool, so that the next
    writes, of both kinds, neither fail nor wait for it."""
    path = tmp_path / "w.db"

    async def writes() -> list[tuple[int]]:
        database = SQLiteDatabase(f"sqlite+aiosqlite:///{path}?timeout=0.2")
        try:
            async with database.write() as conn:
                await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            other = sqlite3.connect(path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(DatabaseUnavailable, match="SQLITE_BUSY"):
                async with database.write() as conn:
                    await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            other.execute("ROLLBACK")
            other.close()
            async with asyncio.timeout(10):
                async with database.write() as conn:
                    await conn.exec_driver_sql("INSERT INTO t VALUES (2)")
                await database.run_write(
                    lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES (3)")
                )
            return await database.run_read(
                lambda conn: list(conn.exec_driver_sql("SELECT x FROM t ORDER BY x"))
            )
        finally:
            await database.dispose()

    assert asyncio.run(writes()) == [(2,), (3,)]
