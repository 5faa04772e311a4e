"""Three registry replicas on one PostgreSQL and one S3 bucket (moto), behind Debian's haproxy
balancing every request round robin, with the API on a process of its own: what a platform
team runs. podman pushes and pulls through the balancer while consecutive requests land on
different replicas; a replica killed mid-push costs nothing acknowledged; a revoked token is
refused by every replica within a second."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.clients import Clients, Images, ToolError
from tests.support.cluster import Cluster, User
from tests.support.haproxy import running_haproxy
from tests.support.lanes import database_lane
from tests.support.oci import OCTET, Registry, digest_of, random_bytes, with_query
from tests.support.postgres import shared_cluster
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import WharfProcess, running_wharf, wait_until

pytest_plugins = ("tests.support.client_fixtures",)
pytestmark = [
    pytest.mark.slow,
    # The replicas share PostgreSQL whatever the lane: the PostgreSQL lane runs them once.
    pytest.mark.skipif(database_lane() != "postgresql", reason="runs in the PostgreSQL lane"),
]

REPLICAS = 3


@dataclass
class Fleet:
    api: WharfProcess
    replicas: list[WharfProcess]
    balancer: str  # host:port of haproxy
    cluster: Cluster

    def uploads_served(self, replica: WharfProcess) -> int:
        """How many requests of blob uploads `replica` answered so far."""
        return len(
            re.findall(r"request \[wharf.access\].*path=/v2/\S*/blobs/uploads", replica.log())
        )

    def served_by(self, replica: WharfProcess) -> int:
        """How many /v2/ requests `replica` answered so far."""
        return len(re.findall(r"request \[wharf.access\].*path=/v2/", replica.log()))


@pytest.fixture(scope="module")
def fleet(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    base = tmp_path_factory.mktemp("fleet")
    # One PostgreSQL database and one bucket for all; one folder for the CA and kubeadmin's
    # password, as a shared volume (or a secret) would hold them.
    url = shared_cluster().new_database()
    storage = s3_args(moto, moto.new_bucket(), "--s3-disable-redirect")
    shared = base / "shared"
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(
            running_wharf(shared, database_url=url, role="api", integrated=True)
        )
        replicas = [
            stack.enter_context(
                running_wharf(shared, "--auth", *storage, database_url=url, role="registry")
            )
            for _ in range(REPLICAS)
        ]
        balancer = stack.enter_context(running_haproxy(base, [r.port for r in replicas]))
        yield Fleet(api, replicas, balancer, Cluster(api, base))


@pytest.fixture(scope="module")
def pusher(fleet: Fleet) -> User:
    """A user who may push to a project of their own."""
    user = fleet.cluster.user("pusher")
    fleet.cluster.new_project(user.api, f"fleet-{user.name}")
    return user


def creds(user: User) -> str:
    return f"--creds={user.name}:{user.token}"


def test_podman_pushes_and_pulls_through_the_balancer(
    fleet: Fleet, pusher: User, clients: Clients, images: Images
) -> None:
    before = [fleet.served_by(r) for r in fleet.replicas]
    target = f"{fleet.balancer}/fleet-{pusher.name}/app:1.0"
    digest = clients.push(images.storage, images.app.reference, target, creds(pusher))
    # Every replica answered part of the push.
    assert all(fleet.served_by(r) > n for r, n in zip(fleet.replicas, before, strict=True))
    storage = clients.storage()
    clients.pull(storage, target, "--tls-verify=false", creds(pusher))
    pulled = clients.image_inspect(storage, target)
    assert pulled["Digest"] == digest
    # The image stream recorded the push once.
    stream = pusher.api.get(
        f"/apis/image.openshift.io/v1/namespaces/fleet-{pusher.name}/imagestreams/app"
    ).json()
    (tag,) = stream["status"]["tags"]
    assert [item["image"] for item in tag["items"]] == [digest]


def test_a_chunked_upload_whose_chunks_land_on_every_replica(fleet: Fleet, pusher: User) -> None:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {registry_token(fleet, pusher)}"
    reg = Registry(f"http://{fleet.balancer}", http)
    repo = f"fleet-{pusher.name}/chunks"
    data = random_bytes(6 * 1024 * 1024 + 17, seed=3)
    location = reg.start_upload(repo).headers["Location"]
    chunk = 1024 * 1024
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        answer = http.patch(
            absolute(reg.url, location),
            data=part,
            headers={"Content-Type": OCTET, "Content-Range": f"{start}-{start + len(part) - 1}"},
        )
        assert answer.status_code == 202, answer.text
        location = answer.headers["Location"]
    digest = digest_of(data)
    done = http.put(with_query(absolute(reg.url, location), digest=digest))
    assert done.status_code == 201, done.text
    for replica in fleet.replicas:  # each one serves what the others stored
        got = http.get(f"http://{replica.host}/v2/{repo}/blobs/{digest}")
        assert got.content == data


def test_a_replica_killed_mid_push_costs_nothing(
    fleet: Fleet, pusher: User, clients: Clients
) -> None:
    # Layers big enough that the push is still going when a replica dies.
    storage = clients.storage("fleet-big")
    big = clients.build(
        storage, "big", [{f"/data/{n}.bin": random_bytes(24 * 1024 * 1024, seed=n)} for n in (1, 2)]
    )
    victim = fleet.replicas[-1]
    target = f"{fleet.balancer}/fleet-{pusher.name}/survivor:1.0"
    pushed: dict[str, str] = {}

    def push() -> None:
        # podman retries what fails on the network; a request cut on the dying replica comes
        # back from haproxy as a 502, which podman does not retry: then the push is run again,
        # as a user or a pipeline would, and must complete.
        for attempt in (1, 2):
            try:
                pushed["digest"] = clients.push(storage, big.reference, target, creds(pusher))
                return
            except ToolError as exc:
                pushed[f"failure {attempt}"] = str(exc)[-2000:]

    before = fleet.uploads_served(victim)
    worker = threading.Thread(target=push)
    worker.start()
    # As soon as the victim has taken part in an upload, it dies, the push still going.
    wait_until(lambda: fleet.uploads_served(victim) > before, timeout=60)
    victim.process.send_signal(signal.SIGKILL)
    assert worker.is_alive(), "the push ended before the replica was killed"
    worker.join(timeout=300)
    assert "digest" in pushed, pushed  # on the others
    pulled = clients.storage()
    clients.pull(pulled, target, "--tls-verify=false", creds(pusher))
    assert clients.image_inspect(pulled, target)["Digest"] == pushed["digest"]
    stream = pusher.api.get(
        f"/apis/image.openshift.io/v1/namespaces/fleet-{pusher.name}/imagestreams/survivor"
    ).json()
    (tag,) = stream["status"]["tags"]
    assert [item["image"] for item in tag["items"]] == [pushed["digest"]]


def test_a_revoked_token_is_refused_by_every_replica_within_a_second(fleet: Fleet) -> None:
    user = fleet.cluster.user("revoked")
    token = registry_token(fleet, user)
    live = [r for r in fleet.replicas if r.process.poll() is None]
    for replica in live:
        assert v2(replica, token) == 200
    from wharf.auth.tokens import stored_name

    gone = fleet.cluster.admin.delete(
        f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{stored_name(user.token)}"
    )
    assert gone.status_code == 200, gone.text
    wait_until(lambda: all(v2(r, token) == 401 for r in live), timeout=1.0)


def registry_token(fleet: Fleet, user: User) -> str:
    """The registry's bearer token for `user`, from /openshift/token through the balancer."""
    answer = requests.get(
        f"http://{fleet.balancer}/openshift/token", auth=(user.name, user.token), timeout=10
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def v2(replica: WharfProcess, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"http://{replica.host}/v2/", headers=headers, timeout=5).status_code


def absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else f"{base}{location}"
