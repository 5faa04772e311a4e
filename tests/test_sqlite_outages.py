"""What a user of a Wharf on SQLite gets when another program holds the database's write lock
for longer than the busy timeout (30 s, or the URL's `timeout`: 1 s here): a clear 503 with
Retry-After in each protocol's form, a line in the log and no traceback, reads served all
along; once the lock is let go, the same writes succeed. (A full disk: test_disk_full.py.)"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, bearer, registry_session
from tests.support.lanes import database_lane
from tests.support.oci import Registry, assert_error
from tests.support.server import running_wharf

pytestmark = pytest.mark.skipif(database_lane() != "sqlite", reason="holds an SQLite file's lock")


def test_a_write_lock_held_past_the_busy_timeout_is_a_503(tmp_path: Path) -> None:
    database = tmp_path / "data" / "wharf.db"
    url = f"sqlite+aiosqlite:///{database}?timeout=1"
    with running_wharf(tmp_path / "data", integrated=True, database_url=url) as wharf:
        cluster = Cluster(wharf, tmp_path)
        cluster.new_project(cluster.admin, "team")
        session = registry_session(wharf, bearer(cluster.admin_token))
        registry = Registry(wharf.url, session)
        first = registry.push_image("team/app", "v1", seed=1)

        other = sqlite3.connect(database, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # held, as a backup tool or a shell might
            # The registry's write and the API's: each waits out the busy timeout.
            with ThreadPoolExecutor(2) as pool:
                opening = pool.submit(
                    session.post, registry.v2("team/app/blobs/uploads/"), timeout=30
                )
                creating = pool.submit(
                    cluster.admin.post,
                    "/api/v1/namespaces/team/configmaps",
                    json={"metadata": {"name": "during"}, "data": {}},
                    timeout=30,
                )
                opened, created = opening.result(), creating.result()
            assert_error(opened, 503, "UNAVAILABLE")
            assert int(opened.headers["Retry-After"]) > 0
            assert created.status_code == 503, created.text
            assert created.json()["reason"] == "ServiceUnavailable"
            assert int(created.headers["Retry-After"]) > 0
            # Reads do not wait for writers.
            assert registry.get_manifest("team/app", "v1").content == first.payload
        finally:
            other.execute("ROLLBACK")
            other.close()

        second = registry.push_image("team/app", "v2", seed=2)
        assert registry.get_manifest("team/app", "v2").content == second.payload
        answer = cluster.admin.post(
            "/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "after"}, "data": {}}
        )
        assert answer.status_code == 201, answer.text
        log = wharf.log()
    assert "Traceback" not in log
    assert "SQLITE_BUSY" in log
