"""An ObjectStore in this process, on the lane's database: for tests of what it does without a
server around it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.server import database_for_new_wharf
from wharf.db.database import open_database
from wharf.db.objects import ObjectStore


@contextlib.asynccontextmanager
async def object_store(tmp_path: Path) -> AsyncIterator[ObjectStore]:
    url = database_for_new_wharf() or f"sqlite+aiosqlite:///{tmp_path / 'wharf.db'}"
    database = open_database(url)
    await database.migrate()
    objects = ObjectStore(database)
    try:
        yield objects
    finally:
        await objects.watch_cache.close()
        await database.dispose()
