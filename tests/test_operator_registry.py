"""The operator changes the running registry, as an administrator asks with kubectl patch:
read-only mode (podman's push refused, pulls served), Removed and back, Unmanaged, the default
route, request limits and the log level, each applied without a restart."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.clients import Clients, Storage
from tests.support.cluster import Cluster, Kubectl
from tests.support.operator_admin import RegistryAdmin
from tests.support.server import wait_until

pytestmark = pytest.mark.clients

ROUTE = ("-n", "openshift-image-registry", "route", "default-route")


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl()


@pytest.fixture
def admin(kubectl: Kubectl) -> Iterator[RegistryAdmin]:
    """The administrator; the Config is put back to its defaults after each test."""
    found = RegistryAdmin(kubectl)
    yield found
    found.patch(
        {
            "managementState": "Managed",
            "readOnly": False,
            "defaultRoute": True,
            "logLevel": "Normal",
            "requests": {
                "read": {"maxRunning": 0, "maxInQueue": 0, "maxWaitInQueue": "0s"},
                "write": {"maxRunning": 0, "maxInQueue": 0, "maxWaitInQueue": "0s"},
            },
        }
    )


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    tools = Clients(tmp_path_factory.mktemp("clients"))
    yield tools
    tools.close()


@pytest.fixture(scope="module")
def built(clients: Clients) -> tuple[Storage, str]:
    storage = clients.storage("build")
    image = clients.build(storage, "tiny", [{"/hello.txt": b"hello from the operator test\n"}])
    return storage, image.reference


def registry(cluster: Cluster, path: str, method: str = "GET") -> requests.Response:
    return requests.request(method, f"{cluster.wharf.url}{path}", timeout=10)


def test_read_only_refuses_a_podman_push_and_serves_pulls(
    cluster: Cluster, admin: RegistryAdmin, clients: Clients, built: tuple[Storage, str]
) -> None:
    storage, image = built
    host = cluster.wharf.host
    digest = clients.push(storage, image, f"{host}/ops/before:1")

    admin.patch({"readOnly": True})
    refused = clients.podman(
        storage, "push", "--tls-verify=false", image, f"{host}/ops/during:1", check=False
    )
    assert not refused.ok
    assert "read-only" in refused.stderr, refused.stderr
    # What distribution answers in read-only mode: the write endpoints are not there.
    deleted = registry(cluster, f"/v2/ops/before/manifests/{digest}", "DELETE")
    assert deleted.status_code == 405
    assert deleted.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert clients.pull(clients.storage(), f"{host}/ops/before:1")
    assert registry(cluster, "/v2/ops/during/tags/list").status_code == 404

    admin.patch({"readOnly": False})
    assert clients.push(storage, image, f"{host}/ops/during:1") == digest


def test_removed_stops_serving_and_managed_serves_again(
    cluster: Cluster,
    admin: RegistryAdmin,
    kubectl: Kubectl,
    clients: Clients,
    built: tuple[Storage, str],
) -> None:
    storage, image = built
    host = cluster.wharf.host
    digest = clients.push(storage, image, f"{host}/ops/kept:1")
    blobs = cluster.wharf.data_dir / "blobs"
    assert any(path.is_file() for path in blobs.rglob("*"))

    config = admin.patch({"managementState": "Removed"})
    assert config["status"]["readyReplicas"] == 0
    assert admin.condition("Removed", config)["status"] == "True"
    # Managed local storage is emptied, bytes and records of them alike.
    assert admin.condition("StorageExists", config)["reason"] == "Removed"
    assert not any(path.is_file() for path in blobs.rglob("*"))
    assert admin.condition("Available", config)["reason"] == "Removed"
    answer = registry(cluster, "/v2/")
    assert answer.status_code == 503
    error = answer.json()["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "managementState is Removed" in error["message"]
    assert registry(cluster, "/readyz").status_code == 503
    assert registry(cluster, "/healthz").status_code == 200  # the process itself lives
    assert kubectl.run("get", *ROUTE, check=False).returncode != 0  # its objects went
    operator = kubectl.json("get", "co", "image-registry")
    available = next(c for c in operator["status"]["conditions"] if c["type"] == "Available")
    assert available["reason"] == "Removed"

    config = admin.patch({"managementState": "Managed"})
    assert config["status"]["readyReplicas"] == 1
    assert admin.condition("Removed", config)["status"] == "False"
    kubectl.run(
        "wait",
        "--for=condition=Available",
        "configs.imageregistry.operator.openshift.io/cluster",
        "--timeout=10s",
    )
    assert registry(cluster, "/v2/").status_code == 200
    assert kubectl.json("get", *ROUTE)["spec"]["host"] == host
    # Up again on empty storage: the tag's history outlives it (as image streams outlive
    # OpenShift's registry storage), its manifest does not, and a push stores it all again.
    gone = registry(cluster, "/v2/ops/kept/manifests/1")
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert clients.push(storage, image, f"{host}/ops/kept:1") == digest
    assert clients.pull(clients.storage(), f"{host}/ops/kept:1")


def test_unmanaged_leaves_the_registry_as_it_is(
    cluster: Cluster, admin: RegistryAdmin, clients: Clients, built: tuple[Storage, str]
) -> None:
    storage, image = built
    config = admin.patch({"managementState": "Unmanaged", "readOnly": True, "defaultRoute": False})
    for kind in ("Available", "Progressing", "Degraded"):
        assert admin.condition(kind, config)["reason"] == "Unmanaged"
    # Nothing reconciled: pushes still work and the route is still there.
    clients.push(storage, image, f"{cluster.wharf.host}/ops/unmanaged:1")
    assert admin.kubectl.run("get", *ROUTE).returncode == 0
    config = admin.patch({"managementState": "Managed", "readOnly": False, "defaultRoute": True})
    assert admin.condition("Available", config)["reason"] == "Ready"


def test_default_route_off_and_on(cluster: Cluster, admin: RegistryAdmin, kubectl: Kubectl) -> None:
    admin.patch({"defaultRoute": False})
    gone = kubectl.run("get", *ROUTE, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    admin.patch({"defaultRoute": True})
    route = kubectl.json("get", *ROUTE)
    assert route["spec"]["host"] == cluster.wharf.host
    assert route["metadata"]["annotations"]["imageregistry.openshift.io"] == "true"
    # A route the operator owns comes back when deleted behind its back.
    kubectl.run("delete", *ROUTE)
    wait_until(
        lambda: kubectl.run("get", *ROUTE, check=False).returncode == 0, timeout=10, interval=0.2
    )


def _slow_write(cluster: Cluster) -> socket.socket:
    """A blob upload whose PATCH body never finishes: a write in flight until closed."""
    started = registry(cluster, "/v2/ops/limits/blobs/uploads/", "POST")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    path = location.split(cluster.wharf.host, 1)[-1]
    sock = socket.create_connection(("127.0.0.1", cluster.wharf.port))
    sock.sendall(
        f"PATCH {path} HTTP/1.1\r\nHost: {cluster.wharf.host}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n".encode()
        + b"x" * 10
    )
    return sock


def test_write_limits_answer_429_with_retry_after(cluster: Cluster, admin: RegistryAdmin) -> None:
    admin.patch({"requests": {"write": {"maxRunning": 1, "maxInQueue": 0}}})
    held = _slow_write(cluster)
    try:

        def refused() -> bool:
            answer = registry(cluster, "/v2/ops/limits/blobs/uploads/", "POST")
            return answer.status_code == 429 and answer.headers.get("Retry-After") == "1"

        # Refused once the held PATCH runs: the one write allowed.
        wait_until(refused, timeout=10, interval=0.1)
        assert registry(cluster, "/v2/").status_code == 200  # reads are not limited
        # A queue of one, a wait of a second: the next write waits its second, then is
        # refused, as the held write still runs (new limits count the requests running).
        admin.patch(
            {"requests": {"write": {"maxRunning": 1, "maxInQueue": 1, "maxWaitInQueue": "1s"}}}
        )
        began = time.monotonic()
        answer = registry(cluster, "/v2/ops/limits/blobs/uploads/", "POST")
        waited = time.monotonic() - began
        assert answer.status_code == 429 and waited >= 0.9, (answer.status_code, waited)
        assert answer.text.startswith("Too many requests")
    finally:
        held.close()
    admin.patch({"requests": {"write": {"maxRunning": 0, "maxInQueue": 0, "maxWaitInQueue": "0s"}}})
    assert registry(cluster, "/v2/ops/limits/blobs/uploads/", "POST").status_code == 202


def test_operator_log_level_changes_the_operators_own_log(
    cluster: Cluster, admin: RegistryAdmin
) -> None:
    def reconciling_lines() -> int:
        return cluster.wharf.log().count("reconciling")

    assert reconciling_lines() == 0  # Normal: no debug lines
    admin.patch({"operatorLogLevel": "Debug"})
    admin.patch({"readOnly": True})
    wait_until(lambda: reconciling_lines() > 0, timeout=10, interval=0.1)
    assert cluster.wharf.log().count("config applied") == 0  # the registry's stays Normal
    admin.patch({"operatorLogLevel": "Normal", "readOnly": False})
    seen = reconciling_lines()
    admin.patch({"readOnly": True})
    admin.patch({"readOnly": False})
    assert reconciling_lines() == seen


def test_log_level_changes_live(cluster: Cluster, admin: RegistryAdmin) -> None:
    def applied_lines() -> int:
        return cluster.wharf.log().count("config applied")

    assert applied_lines() == 0  # Normal: no debug lines
    admin.patch({"logLevel": "Debug", "readOnly": True})
    wait_until(lambda: applied_lines() > 0, timeout=10, interval=0.1)
    admin.patch({"logLevel": "Normal"})
    seen = applied_lines()
    admin.patch({"readOnly": False})
    assert applied_lines() == seen
    assert (
        json.loads(
            admin.kubectl.run(
                "get", "configs.imageregistry.operator.openshift.io", "cluster", "-o", "json"
            ).stdout
        )["spec"]["logLevel"]
        == "Normal"
    )
