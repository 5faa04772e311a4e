from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.oci import Registry
from tests.support.postgres import stop_shared_cluster
from tests.support.s3 import s3_args
from tests.support.s3_fixtures import moto  # noqa: F401  (the S3 lanes' server)
from tests.support.server import WharfProcess, database_lane, running_wharf

# Test modules whose `wharf` runs on S3 too: "s3" redirects blob GETs to presigned URLs,
# "s3-streamed" (disableRedirect) streams them through Wharf. The protocol tests check the
# registry's own answers to blob GETs, so they take the streamed lane; the S3 redirects have
# tests of their own (test_registry_s3.py).
STORAGE_LANES = {
    "test_protocol_": ("filesystem", "s3-streamed"),
    "test_clients_": ("filesystem", "s3", "s3-streamed"),
}


# The PostgreSQL lane (WHARF_TEST_DATABASE=postgresql) runs the tests of what Wharf stores and
# how: objects, lists and watches, upload sessions and leases, manifests and tags, collection
# and pruning, quotas, migrations, several processes and replicas, and the API's bad input (a
# string SQLite stores may be one PostgreSQL refuses: NUL, an over-long name). The rest (the
# CLI's rendering, client compatibility, storage backends, generated requests) has no part that
# differs by database, and runs in the SQLite lane only: two whole lanes would not fit the
# suite's time on two cores.
POSTGRESQL_LANE = {
    "test_api_auth",
    "test_api_bad_input",
    "test_api_conventions",
    "test_api_kinds",
    "test_api_limits",
    "test_api_paging",
    "test_api_unusual_requests",
    "test_image_streams_served",
    "test_image_watch",
    "test_operator_config",
    "test_operator_leadership",
    "test_postgres_faults",
    "test_protocol_listing",
    "test_protocol_manifests",
    "test_protocol_storage",
    "test_protocol_uploads",
    "test_prune_images",
    "test_quotas",
    "test_readiness",
    "test_registry_crashes",
    "test_registry_gc",
    "test_registry_pins",
    "test_replicas",
    "test_token_lookups",
    "test_watch_cache",
    "test_watch_consistency",
    "test_workers",
    "test_workflow",
}


# Generated-request runs cost minutes of CPU each, and the scheduled prune waits for a minute of
# the clock: they are shared out between the lanes, which run side by side, so that neither lane
# takes much longer than the other (the whole suite must stay within 20 minutes on two cores).
# A key is a test (`file::name`, every parameter of it) or a whole file.
LANE_OF = {
    "test_api_generative.py::test_as_cluster_admin_with_every_delete": "postgresql",
    "test_api_generative.py::test_anonymously": "postgresql",
    "test_registry_fuzz.py": "postgresql",
    "test_prune_images.py::test_the_image_pruner_prunes_on_its_schedule": "postgresql",
    "test_pull_through.py": "postgresql",
    "test_image_import.py": "postgresql",
    "test_readme_tidy.py": "postgresql",
    # The CLI's tests run `wharf` hundreds of times against one server, whichever database it has.
    "test_cli_get.py": "postgresql",
    "test_cli_projects.py": "postgresql",
    "test_cli_registry.py": "postgresql",
    "test_cli_login.py": "postgresql",
}


def _in_lane(item: pytest.Item, lane: str) -> bool:
    name = getattr(item, "originalname", item.name)
    own = LANE_OF.get(f"{item.path.name}::{name}", LANE_OF.get(item.path.name))
    if own is not None:
        return own == lane
    return lane == "sqlite" or item.path.stem in POSTGRESQL_LANE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lane = database_lane()
    kept = [item for item in items if _in_lane(item, lane)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_shared_cluster()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wharf" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    for prefix, lanes in STORAGE_LANES.items():
        if module.startswith(prefix):
            params = [
                pytest.param(lane, marks=[pytest.mark.s3] if lane != "filesystem" else [])
                for lane in lanes
            ]
            metafunc.parametrize("storage", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def storage(request: pytest.FixtureRequest) -> str:
    """Where the shared Wharf keeps blobs: "filesystem" unless a lane above says otherwise."""
    return str(getattr(request, "param", "filesystem"))


@pytest.fixture(scope="session")
def wharf(
    storage: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WharfProcess]:
    """One Wharf shared by the tests that each work in repositories of their own."""
    args: tuple[str, ...] = ()
    if storage != "filesystem":
        server = request.getfixturevalue("moto")
        redirects = ("--s3-disable-redirect",) if storage == "s3-streamed" else ()
        args = s3_args(server, server.new_bucket(), *redirects)
    with running_wharf(tmp_path_factory.mktemp("wharf") / "data", *args) as process:
        yield process


@pytest.fixture(scope="module")
def integrated_wharf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    """A Wharf of this test module's own, run as users run it: TLS, cluster logins and
    permissions, image streams."""
    with running_wharf(tmp_path_factory.mktemp("integrated") / "data", integrated=True) as w:
        yield w


@pytest.fixture
def fresh_wharf(tmp_path: Path) -> Iterator[WharfProcess]:
    """A Wharf of this test's own, for tests that look at the whole registry."""
    with running_wharf(tmp_path / "data") as process:
        yield process


@pytest.fixture
def repo() -> str:
    """A repository name no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def reg(wharf: WharfProcess, http: requests.Session) -> Registry:
    """The registry protocol, spoken to the module's `wharf` (the shared one unless the module
    has its own)."""
    return Registry(wharf.url, http)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Wharf of this test module's own, seen through its control plane: kubeadmin logged in,
    users made on demand, kubectl and kubeconfigs (tests/test_api_*.py)."""
    base = tmp_path_factory.mktemp("cluster")
    with running_wharf(base / "data") as process:
        yield Cluster(process, base)
