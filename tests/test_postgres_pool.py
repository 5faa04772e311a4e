"""A Wharf on PostgreSQL keeps the connections it opens: under a load of concurrent pulls it
opens at most its two pools' worth (10 each), where overflow connections, closed as they came
back, cost a new server process dozens of times a second."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.lanes import database_lane
from tests.support.oci import Registry
from tests.support.postgres import shared_cluster
from tests.support.server import running_wharf

pytestmark = pytest.mark.skipif(
    database_lane() != "postgresql", reason="counts a PostgreSQL database's sessions"
)


def test_concurrent_pulls_open_no_more_connections_than_the_pools_hold(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data") as wharf:
        name = wharf.database_name
        assert name is not None

        def sessions() -> int:
            query = f"SELECT sessions FROM pg_stat_database WHERE datname = '{name}'"
            return int(shared_cluster().sql(query))

        clients = [Registry(wharf.url, requests.Session()) for _ in range(24)]
        images = [
            client.push_image(f"team/app{n}", "v1", seed=n) for n, client in enumerate(clients)
        ]
        before = sessions()

        def pull(number: int) -> None:
            client, image = clients[number], images[number]
            for _ in range(40):
                answer = client.get_manifest(f"team/app{number}", "v1")
                assert answer.content == image.payload
                for digest in image.blobs:
                    assert client.blob(f"team/app{number}", digest).status_code == 200

        with ThreadPoolExecutor(len(clients)) as pool:
            list(pool.map(pull, range(len(clients))))
        # 2,880 requests, 24 at a time.
        assert sessions() - before <= 20
