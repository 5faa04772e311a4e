"""Statements that differ by database but mean the same everywhere."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignore(conn: Connection, table: Table, **values: Any) -> Any:
    """INSERT that does nothing when the row is there already (SQLite and PostgreSQL)."""
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    return insert(table).values(**values).on_conflict_do_nothing()
