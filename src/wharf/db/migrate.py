"""Bringing a database's schema up to date with Alembic, on a connection the engine holds
(inside whatever lock the engine takes so that concurrent starts migrate once)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaTooNew(Exception):
    """The database was migrated by a newer Wharf: this one would misread it."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest schema revision this Wharf knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def current(connection: Connection) -> str | None:
    """The database's schema revision (None: an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Migrate to this Wharf's head; refuse a database whose schema is newer than it knows."""
    found = current(connection)
    scripts = ScriptDirectory.from_config(_config())
    if found is not None and found not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaTooNew(
            f"the database's schema is at revision {found}, newer than this Wharf knows "
            f"(up to {head()}): run the Wharf version that migrated it, or a newer one"
        )
    command.upgrade(_config(connection), "head")
