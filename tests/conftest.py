from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.server import WharfProcess, running_wharf


@pytest.fixture(scope="session")
def wharf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    """One Wharf shared by the tests that each work in repositories of their own."""
    with running_wharf(tmp_path_factory.mktemp("wharf") / "data") as process:
        yield process


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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Wharf of this test module's own, seen through its control plane: kubeadmin logged in,
    users made on demand, kubectl and kubeconfigs (tests/test_api_*.py)."""
    base = tmp_path_factory.mktemp("cluster")
    with running_wharf(base / "data") as process:
        yield Cluster(process, base)
