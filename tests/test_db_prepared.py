"""Prepared statements (wharf.db.prepared) against a real SQLite database: the rows they write
read back through SQLAlchemy exactly as SQLAlchemy's own statements would have written them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
)

from wharf.db.prepared import Prepared
from wharf.db.statements import insert_ignore

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

ADD = Prepared(insert(things), ["name", "created_at"])
ADD_IGNORE = Prepared(lambda dialect: insert_ignore(dialect, things), ["name", "created_at"])
NAMES_AFTER = Prepared(
    select(things.c.name)
    .where(things.c.name > bindparam("last"))
    .order_by(things.c.name)
    .limit(bindparam("limit"))
)
CREATED = Prepared(select(things.c.created_at).where(things.c.name == bindparam("name")))

MOMENT = datetime(2026, 12, 2, 14, 10, 7, 123456)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Connection]:
    engine = create_engine(f"sqlite:///{tmp_path / 'things.db'}")
    metadata.create_all(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


@pytest.mark.parametrize("moment", [MOMENT, MOMENT.replace(microsecond=0)])
def test_rows_are_stored_as_sqlalchemy_stores_them(conn: Connection, moment: datetime) -> None:
    assert ADD.run(conn, name="prepared", created_at=moment) == 1
    conn.execute(insert(things).values(name="core", created_at=moment))
    stored = {
        str(name): str(text)
        for name, text in conn.exec_driver_sql("SELECT name, created_at FROM things").all()
    }
    # The same text as SQLAlchemy's own statement wrote (its bind processor ran), which its
    # reader parses back to the same moment.
    assert stored["prepared"] == stored["core"]
    assert conn.scalar(select(things.c.created_at).where(things.c.name == "prepared")) == moment


def test_insert_ignore_reports_no_row_for_a_duplicate(conn: Connection) -> None:
    assert ADD_IGNORE.run(conn, name="a", created_at=MOMENT) == 1
    assert ADD_IGNORE.run(conn, name="a", created_at=MOMENT) == 0
    assert conn.scalar(select(things.c.id).where(things.c.name == "a")) is not None


def test_scalar_first_and_scalars(conn: Connection) -> None:
    for name in ("a", "b", "c", "d"):
        ADD.run(conn, name=name, created_at=MOMENT)
    # LIMIT with the OFFSET SQLite's compiler adds on its own: a parameter we never pass.
    assert NAMES_AFTER.scalars(conn, last="a", limit=2) == ["b", "c"]
    assert NAMES_AFTER.scalar(conn, last="c", limit=10) == "d"
    assert NAMES_AFTER.first(conn, last="d", limit=10) is None
    assert CREATED.scalar(conn, name="missing") is None


def test_a_failing_statement_raises_and_writes_nothing(conn: Connection) -> None:
    ADD.run(conn, name="a", created_at=MOMENT)
    with pytest.raises(Exception, match="UNIQUE"):
        ADD.run(conn, name="a", created_at=MOMENT)
    assert conn.scalar(select(things.c.id).where(things.c.name == "a")) == 1
