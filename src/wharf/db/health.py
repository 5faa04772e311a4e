"""Whether the metadata database answers now: the database's part of /readyz."""

from __future__ import annotations

import asyncio
import sqlite3
from urllib.parse import quote

from sqlalchemy import make_url, text

from .engine import Database


class DatabaseUnavailable(Exception):
    """The database did not answer; the message says how, without any statement or value."""


async def check(database: Database, timeout: float = 2.0) -> None:
    """Return when the database answers a read and would take a write within `timeout` seconds;
    raise DatabaseUnavailable otherwise."""
    if database.is_sqlite:
        path = make_url(database.url).database
        assert path is not None
        await asyncio.to_thread(_probe_sqlite, path, timeout)
        return
    try:
        async with asyncio.timeout(timeout):
            async with database.reader.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUnavailable(f"no answer within {timeout:g}s") from None
    except Exception as exc:  # the driver's own errors, whichever it raises
        raise DatabaseUnavailable(f"{type(exc).__module__}.{type(exc).__qualname__}") from None


def _probe_sqlite(path: str, timeout: float) -> None:
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
