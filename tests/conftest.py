from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.lanes import database_lane, runs_alone
from tests.support.oci import Registry
from tests.support.postgres import stop_shared_cluster
from tests.support.s3 import s3_args
from tests.support.s3_fixtures import moto  # noqa: F401  (the S3 lanes' server)
from tests.support.server import WharfProcess, running_wharf

# Test modules whose `wharf` runs on S3 too: "s3" redirects blob GETs to presigned URLs,
# "s3-streamed" (disableRedirect) streams them through Wharf. The protocol tests check the
# registry's own answers to blob GETs, so they take the streamed lane; the S3 redirects have
# tests of their own (test_registry_s3.py).
STORAGE_LANES = {
    "test_protocol_": ("filesystem", "s3-streamed"),
    "test_clients_": ("filesystem", "s3", "s3-streamed"),
}


# Every test runs in both database lanes (WHARF_TEST_DATABASE: sqlite, postgresql), but for
# the modules and tests below (a module's name, or `module::test` for every parameter of one):
# - what starts no Wharf and uses no database of the lane's (parsers and their properties, the
#   storage backends on their own, the CLI's rendering): what it finds cannot differ by lane;
# - the benchmarks' smoke runs, which test the benchmark programs: each runs once, with its
#   lane's database, so that between them both are used.
# Those run in one lane (in each, when a lane runs alone). Storage and database are seams of
# their own, not crossed: what runs on S3 (mark s3) runs in SQLite's lane, but for the
# streamed S3 storage lane ("s3-streamed" above), which runs in PostgreSQL's; and tests of
# PostgreSQL itself (replicas on one database, its faults) skip in SQLite's.
# Generated-request runs send each lane a share of their inputs (tests/support/lanes.py:
# generated_share).
ONE_LANE = {
    "test_cli_gotemplate": "postgresql",
    "test_cli_help": "postgresql",
    "test_cli_serve_script": "postgresql",
    "test_cli_units": "postgresql",
    "test_db_prepared": "postgresql",
    "test_sqlite_write_turns": "postgresql",
    "test_dependency_lock": "postgresql",
    "test_import_units": "postgresql",
    "test_log_lines": "postgresql",
    "test_properties_jsonpath": "postgresql",
    "test_properties_manifests": "postgresql",
    "test_properties_names": "postgresql",
    "test_properties_ranges": "postgresql",
    "test_properties_times": "postgresql",
    "test_protobuf": "postgresql",
    "test_upstream_parsers": "postgresql",
    # With their S3 halves, which run in SQLite's lane only.
    "test_storage_contract": "sqlite",
    "test_storage_s3": "sqlite",
    "test_benchmarks_smoke::test_smoke_run_prints_every_line_with_positive_figures": "sqlite",
    "test_benchmarks_smoke::test_smoke_workers_phase_compares_one_worker_with_two_under_wrk": (
        "postgresql"
    ),
    "test_benchmarks_api_smoke": "postgresql",
    # A minute of the clock, waiting for the schedule's next minute: what it prunes, and how,
    # the other pruning tests show in both lanes.
    "test_prune_images::test_the_image_pruner_prunes_on_its_schedule": "sqlite",
}


def _storage_lane(item: pytest.Item) -> str | None:
    """The database lane of a test on S3, or None for one on local disk."""
    if item.get_closest_marker("s3") is None:
        return None
    callspec = getattr(item, "callspec", None)
    streamed = callspec is not None and callspec.params.get("storage") == "s3-streamed"
    return "postgresql" if streamed else "sqlite"


def _in_lane(item: pytest.Item, lane: str) -> bool:
    name = getattr(item, "originalname", item.name)
    own = ONE_LANE.get(f"{item.path.stem}::{name}", ONE_LANE.get(item.path.stem))
    return runs_alone() or (own or _storage_lane(item) or lane) == lane


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
