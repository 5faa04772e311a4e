"""Fixtures of the real-client tests (tests/test_clients_*.py name this module in
`pytest_plugins`): the configured tools, and images built once per session and shared."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from tests.support.clients import ENV, LABELS, Clients, Images, RegistryHTTP, Storage
from tests.support.server import WharfProcess


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    tools = Clients(tmp_path_factory.mktemp("clients"))
    yield tools
    tools.close()


@pytest.fixture(scope="session")
def images(clients: Clients) -> Images:
    storage = clients.storage("build")
    base = clients.build(
        storage,
        "base",
        [
            {"/etc/wharf/base.txt": b"the base layer\n"},
            # Incompressible, and more than one of the registry's 4 MiB write batches.
            {"/data/random.bin": os.urandom(5 * 1024 * 1024)},
        ],
    )
    app_files = {"/app/hello.txt": b"hello from wharf\n", "/app/version": b"1.0\n"}
    app = clients.build(storage, "app", [app_files], base=base, env=ENV, labels=LABELS)
    app_docker = clients.build(
        storage, "app-docker", [app_files], base=base, env=ENV, labels=LABELS, format="docker"
    )
    arm = clients.build(
        storage,
        "arm",
        [{"/app/arch": b"arm64\n"}],
        base=base,
        architecture="arm64",
        variant="v8",
        env=ENV,
        labels=LABELS,
    )
    index = "localhost/app-list"
    clients.buildah(storage, "manifest", "create", index)
    for image in (app, arm):
        clients.buildah(storage, "manifest", "add", index, f"containers-storage:{image.reference}")
    return Images(storage, base, app, app_docker, arm, index)


@pytest.fixture
def clean_storage(clients: Clients) -> Storage:
    """An empty storage to pull into, so that nothing comes from the build storage."""
    return clients.storage()


@pytest.fixture
def registry_http(wharf: WharfProcess, http: requests.Session) -> RegistryHTTP:
    return RegistryHTTP(wharf, http)
