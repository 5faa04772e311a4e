from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.lanes import database_lane, runs_alone, shard
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
# the modules below, which start no Wharf and use no database of the lane's: parsers and their
# properties, the storage backends on their own, the CLI's rendering. What they find cannot
# differ by lane, so they run in one (in each, when a lane runs alone). Storage and database
# are seams of their own, not crossed: the S3 storage lanes (mark s3) run in SQLite's lane
# (scripts/test), and tests of PostgreSQL itself (replicas on one database, its faults) skip
# in SQLite's. Generated-request runs send each lane a share of their inputs
# (tests/support/lanes.py: generated_share).
ONE_LANE = {
    "test_cli_gotemplate": "postgresql",
    "test_cli_help": "postgresql",
    "test_cli_serve_script": "postgresql",
    "test_cli_units": "postgresql",
    "test_db_prepared": "postgresql",
    "test_sqlite_write_turns": "sqlite",
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
}


def _in_lane(item: pytest.Item, lane: str) -> bool:
    return runs_alone() or ONE_LANE.get(item.path.stem, lane) == lane


# A lane's shards (WHARF_TEST_SHARD) divide its modules, whole, so that a module's fixtures
# start once: the longest first, each to the shard with the least work so far, by the seconds
# each module took in a recorded run (module_seconds.json; a module not in it counts a third of
# a second a test). Refresh the record with a lane run alone and unsharded:
# WHARF_TEST_TIMES=tests/module_seconds.json WHARF_TEST_LANES=sqlite WHARF_TEST_SHARDS=1
# ./scripts/test
MODULE_SECONDS = Path(__file__).with_name("module_seconds.json")


def _in_shard(items: list[pytest.Item]) -> list[pytest.Item]:
    k, n = shard()
    if n == 1:
        return items
    recorded: dict[str, float] = json.loads(MODULE_SECONDS.read_text())
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.path.stem, []).append(item)
    seconds = {name: recorded.get(name, len(found) / 3) for name, found in modules.items()}
    loads = [0.0] * n
    mine = set()
    for name in sorted(modules, key=lambda name: (-seconds[name], name)):
        lightest = loads.index(min(loads))
        loads[lightest] += seconds[name]
        if lightest == k - 1:
            mine.add(name)
    return [item for item in items if item.path.stem in mine]


_times: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "WHARF_TEST_TIMES" in os.environ:
        module = Path(report.nodeid.split("::", 1)[0]).stem
        _times[module] = _times.get(module, 0.0) + report.duration


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lane = database_lane()
    kept = _in_shard([item for item in items if _in_lane(item, lane)])
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_shared_cluster()
    record = os.environ.get("WHARF_TEST_TIMES")
    if record and _times:
        path = Path(record)
        known = json.loads(path.read_text()) if path.exists() else {}
        known |= {name: round(seconds, 1) for name, seconds in _times.items()}
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")


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
