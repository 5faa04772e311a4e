"""The rows online GC decides by (wharf.registry.collect), on a real database: a pin makes or
refreshes a blob's row before its bytes are stored and stands aside for a live collector's
claim, not for a lapsed one; a touch refreshes only the blobs no collector holds."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select, update

from tests.support.stores import object_store
from wharf.db.database import Database
from wharf.db.schema import blobs
from wharf.registry.collect import Collecting, pin_in, touch_in

NOW = datetime(2026, 12, 7, 12, 0, 0)
DIGESTS = [f"sha256:{n:064x}" for n in range(3)]


def row(conn: Connection, digest: str) -> Any:
    return conn.execute(select(blobs).where(blobs.c.digest == digest)).one()


def claim(conn: Connection, digest: str, until: datetime) -> None:
    conn.execute(update(blobs).where(blobs.c.digest == digest).values(deleting_until=until))


def test_pins_and_touches(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with object_store(tmp_path) as objects:
            db: Database = objects.db
            first, second, third = DIGESTS

            def pin_all(conn: Connection) -> None:
                for digest in DIGESTS:
                    pin_in(conn, digest, 10, NOW)

            await db.run_write(pin_all)
            made = await db.run_read(lambda conn: row(conn, first))
            assert (made.size, made.created_at, made.touched_at) == (10, NOW, NOW)
            assert made.deleting_until is None

            # Pinned again later, with the size the stored bytes have: refreshed, not made anew.
            later = NOW + timedelta(minutes=5)
            await db.run_write(lambda conn: pin_in(conn, first, 12, later))
            again = await db.run_read(lambda conn: row(conn, first))
            assert (again.size, again.created_at, again.touched_at) == (12, NOW, later)

            # A collector's live claim: the pin stands aside and says until when.
            until = later + timedelta(minutes=1)
            await db.run_write(lambda conn: claim(conn, second, until))
            with pytest.raises(Collecting) as refused:
                await db.run_write(lambda conn: pin_in(conn, second, 10, later))
            assert refused.value.until == until
            # Touches skip it too.
            assert await db.run_write(lambda conn: touch_in(conn, set(DIGESTS), later)) == 2
            held = await db.run_read(lambda conn: row(conn, second))
            assert (held.touched_at, held.deleting_until) == (NOW, until)

            # A claim that lapsed (its collector died) is taken over.
            await db.run_write(lambda conn: pin_in(conn, second, 10, until + timedelta(seconds=1)))
            taken = await db.run_read(lambda conn: row(conn, second))
            assert taken.deleting_until is None
            assert taken.touched_at == until + timedelta(seconds=1)

            assert await db.run_write(lambda conn: touch_in(conn, set(), later)) == 0
            assert (await db.run_read(lambda conn: row(conn, third))).touched_at == later

    asyncio.run(scenario())
