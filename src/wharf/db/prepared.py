"""Statements compiled once and run straight on the driver's cursor.

SQLAlchemy spends about 50 µs on every execution of a Core statement (cache key, execution
context, result object) where SQLite itself needs 5. A registry push runs a dozen tiny
statements per image, so its hot ones are built with Core as usual, compiled once per dialect,
and executed on the DB-API connection underneath the SQLAlchemy `Connection`: inside whatever
transaction that connection holds, with the same SQL SQLAlchemy would have sent.

Parameters pass through the types' bind processors, as SQLAlchemy would pass them (datetimes
become SQLite's text, for example). Results come back as the driver gives them, so prepared
statements read only integers, strings and bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Builder = Callable[[Dialect], ClauseElement]
_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional paramstyle wants them
    processors: tuple[_Processor, ...]
    positional: bool
    defaults: dict[str, Any]  # parameters the statement gives values of its own

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.defaults:
            values = {**self.defaults, **values}
        converted = [
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name in self.names), self.processors, strict=True
            )
        ]
        if self.positional:
            return tuple(converted)
        return dict(zip(self.names, converted, strict=True))


class Prepared:
    """One statement, given as a Core construct or as a function of the dialect (for SQL that
    differs by database), with named `bindparam`s for its parameters. An INSERT names its
    `columns` instead: their values are the parameters, under the columns' names."""

    def __init__(
        self, statement: ClauseElement | Builder, columns: Sequence[str] | None = None
    ) -> None:
        self._statement = statement
        self._columns = list(columns) if columns is not None else None
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self._statement
        if not isinstance(statement, ClauseElement):
            statement = statement(dialect)
        compiled = statement.compile(dialect=dialect, column_keys=self._columns)
        assert isinstance(compiled, SQLCompiler)
        binds = compiled.binds
        names = tuple(compiled.positiontup or binds)
        processors = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        defaults = {name: bind.value for name, bind in binds.items() if not bind.required}
        found = _Compiled(compiled.string, names, processors, compiled.positional, defaults)
        self._compiled[dialect.name, dialect.driver] = found
        return found

    def _execute(self, conn: Connection, **values: Any) -> Any:
        """Run the statement in `conn`'s transaction; return the DB-API cursor."""
        dialect = conn.dialect
        compiled = self._compiled.get((dialect.name, dialect.driver)) or self._compile(dialect)
        raw = cast(Any, conn.connection.dbapi_connection)
        cursor = raw.cursor()
        parameters = compiled.parameters(values)
        try:
            cursor.execute(compiled.sql, parameters)
        except dialect.loaded_dbapi.Error as error:
            # Past SQLAlchemy, so told here what it would have said: that the connection is
            # lost (the server restarted), which the engine answers by taking a fresh one.
            if not dialect.is_disconnect(error, raw, cursor):
                raise
            conn.invalidate()
            raise DBAPIError.instance(
                compiled.sql,
                parameters,
                error,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,  # values are the caller's data, never for a log
                connection_invalidated=True,
                dialect=dialect,
            ) from error
        return cursor

    def first(self, conn: Connection, **values: Any) -> Any:
        """The first row, as the driver gives it, or None when there is none."""
        cursor = self._execute(conn, **values)
        try:
            return cursor.fetchone()
        finally:
            cursor.close()

    def scalar(self, conn: Connection, **values: Any) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.first(conn, **values)
        return None if row is None else row[0]

    def run(self, conn: Connection, **values: Any) -> int:
        """Run a statement that returns no rows; return how many rows it changed."""
        cursor = self._execute(conn, **values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def scalars(self, conn: Connection, **values: Any) -> list[Any]:
        """The first column of every row."""
        cursor = self._execute(conn, **values)
        try:
            return [row[0] for row in cursor.fetchall()]
        finally:
            cursor.close()
