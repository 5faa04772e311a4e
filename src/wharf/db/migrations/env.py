"""Alembic environment: runs on the connection that `wharf.db.migrate.upgrade` is given."""

from alembic import context

from wharf.db.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
