"""Statements that differ by database but mean the same everywhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


def insert_ignore(dialect: Dialect, table: Table, **values: Any) -> Any:
    """INSERT that does nothing when the row is there already (SQLite and PostgreSQL)."""
    insert = sqlite.insert if dialect.name == "sqlite" else postgresql.insert
    statement = insert(table)
    if values:
        statement = statement.values(**values)
    return statement.on_conflict_do_nothing()
