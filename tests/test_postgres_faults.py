"""What a user of a Wharf on PostgreSQL gets when the database restarts, stops or runs out of
connection slots: after a restart, reads and writes go on at once (no request fails on a
connection the server closed); while it is down or full, a clear 503 with Retry-After in each
protocol's form (OCI errors on /v2/, a Kubernetes Status on the API), one line in the log, the
server up; once it is back, everything acknowledged is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import Cluster, bearer, registry_session
from tests.support.lanes import database_lane
from tests.support.oci import Registry
from tests.support.postgres import PostgresCluster
from tests.support.server import running_wharf, wait_until

pytestmark = pytest.mark.skipif(
    database_lane() != "postgresql", reason="stops a PostgreSQL server of its own"
)


def test_a_restart_goes_unnoticed_and_an_outage_is_a_clear_503(tmp_path: Path) -> None:
    postgres = PostgresCluster().start()
    try:
        url = postgres.new_database()
        with running_wharf(tmp_path / "data", integrated=True, database_url=url) as wharf:
            cluster = Cluster(wharf, tmp_path)
            cluster.new_project(cluster.admin, "team")
            session = registry_session(wharf, bearer(cluster.admin_token))
            registry = Registry(wharf.url, session)
            first = registry.push_image("team/app", "v1", seed=1)

            postgres.halt()
            postgres.resume()  # every connection Wharf had is gone
            assert registry.get_manifest("team/app", "v1").content == first.payload
            second = registry.push_image("team/app", "v2", seed=2)

            postgres.halt()
            for answer in (
                registry.get_manifest("team/app", "v1"),
                registry.http.post(registry.v2("team/app/blobs/uploads/")),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"
                assert int(answer.headers["Retry-After"]) > 0
            listed = cluster.admin.get("/api/v1/namespaces/team/configmaps")
            assert listed.status_code == 503, listed.text
            assert (listed.json()["kind"], listed.json()["reason"]) == (
                "Status",
                "ServiceUnavailable",
            )
            assert int(listed.headers["Retry-After"]) > 0
            assert session.get(f"{wharf.url}/healthz", timeout=10).status_code == 200
            assert session.get(f"{wharf.url}/readyz", timeout=30).status_code == 503

            postgres.resume()
            wait_until(lambda: registry.get_manifest("team/app", "v2").status_code == 200, 30)
            for tag, image in (("v1", first), ("v2", second)):
                assert registry.get_manifest("team/app", tag).content == image.payload
            assert cluster.admin.get("/api/v1/namespaces/team/configmaps").status_code == 200
            assert session.get(f"{wharf.url}/readyz", timeout=30).status_code == 200
            log = wharf.log()
        assert "Traceback" not in log
        assert "database unavailable" in log
    finally:
        postgres.stop()


def test_connection_slots_running_out_is_a_clear_503(tmp_path: Path) -> None:
    """Every replica's pools together may want more connections than the server allows
    (`max_connections`, a role's limit): a request that needs a new one is answered 503, as
    when the server is down, and served again once slots are free."""
    postgres = PostgresCluster().start()
    try:
        # Limits on connections bind roles other than superusers: Wharf logs in as its own.
        postgres.sql("CREATE ROLE wharf LOGIN")
        postgres.sql("CREATE DATABASE wharf_slots OWNER wharf")
        url = f"postgresql+asyncpg://wharf@127.0.0.1:{postgres.port}/wharf_slots"
        with running_wharf(tmp_path / "data", integrated=True, database_url=url) as wharf:
            cluster = Cluster(wharf, tmp_path)
            cluster.new_project(cluster.admin, "team")
            registry = Registry(wharf.url, registry_session(wharf, bearer(cluster.admin_token)))
            first = registry.push_image("team/app", "v1", seed=1)

            postgres.sql("ALTER ROLE wharf CONNECTION LIMIT 0")
            # Wharf's connections end: every request now needs a new one.
            postgres.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'wharf'"
            )
            for answer in (
                registry.get_manifest("team/app", "v1"),
                registry.http.post(registry.v2("team/app/blobs/uploads/")),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"
                assert int(answer.headers["Retry-After"]) > 0
            listed = cluster.admin.get("/api/v1/namespaces/team/configmaps")
            assert listed.status_code == 503, listed.text
            assert listed.json()["reason"] == "ServiceUnavailable"

            postgres.sql("ALTER ROLE wharf CONNECTION LIMIT -1")
            wait_until(lambda: registry.get_manifest("team/app", "v1").status_code == 200, 30)
            assert registry.get_manifest("team/app", "v1").content == first.payload
            second = registry.push_image("team/app", "v2", seed=2)
            assert registry.get_manifest("team/app", "v2").content == second.payload
            assert cluster.admin.get("/api/v1/namespaces/team/configmaps").status_code == 200
            log = wharf.log()
        assert "Traceback" not in log
        assert "53300" in log
    finally:
        postgres.stop()
