"""Statements that differ by database but mean the same everywhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

# Each engine's INSERT that knows ON CONFLICT.
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_ignore(dialect: Dialect, table: Table, **values: Any) -> Any:
    """INSERT that does nothing when the row is there already."""
    statement: Any = _INSERTS[dialect.name](table)
    if values:
        statement = statement.values(**values)
    return statement.on_conflict_do_nothing()
