"""What podman tells a user whose push is refused: that they may not push to that project, that
the project does not exist when it does not, and that they may not create the image stream when
only that is missing; never "authentication required" to a user who logged in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.clients import NO_TLS, BuiltImage, Clients, Result, Storage
from tests.support.cluster import Cluster, integrated_cluster, unique, user_subject

pytestmark = pytest.mark.clients


@dataclass
class World:
    cluster: Cluster
    clients: Clients
    storage: Storage
    image: BuiltImage
    project: str  # owned by somebody else; the pusher may view it


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("denied-push")
    with integrated_cluster(base) as cluster:
        clients = Clients(base / "clients")
        try:
            storage = clients.storage("pusher")
            image = clients.build(storage, "app", [{"/app/hello.txt": b"hello\n"}])
            owner = cluster.user("owner")
            project = cluster.new_project(owner.api)
            yield World(cluster, clients, storage, image, project)
        finally:
            clients.close()


def podman_as(world: World, name: str, token: str) -> None:
    login = world.clients.podman(
        world.storage, "login", NO_TLS, "-u", name, "-p", token, world.cluster.wharf.host
    )
    assert login.stdout.strip() == "Login Succeeded!", login


def push(world: World, target: str) -> Result:
    destination = f"{world.cluster.wharf.host}/{target}"
    pushed = world.clients.podman(
        world.storage, "push", NO_TLS, world.image.reference, destination, check=False
    )
    return pushed


def error_line(result: Result) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_viewer_is_told_they_may_not_push_to_the_project(world: World) -> None:
    viewer = world.cluster.user("viewer")
    world.cluster.bind(world.project, "view", user_subject(viewer.name))
    podman_as(world, viewer.name, viewer.token)
    line = error_line(push(world, f"{world.project}/app:1.0"))
    assert line.endswith(f"unauthorized: {viewer.name} may not push to project {world.project}")
    assert "authentication required" not in line


def test_a_user_without_any_role_there_is_told_the_same(world: World) -> None:
    # Not even allowed to pull: the blob checks must not end the push with "authentication
    # required" (a HEAD answer carries no message).
    stranger = world.cluster.user("stranger")
    podman_as(world, stranger.name, stranger.token)
    line = error_line(push(world, f"{world.project}/app:1.0"))
    assert line.endswith(f"unauthorized: {stranger.name} may not push to project {world.project}")


def test_a_project_that_does_not_exist_is_named_as_such(world: World) -> None:
    user = world.cluster.user("lost")
    podman_as(world, user.name, user.token)
    nowhere = unique("nowhere")
    line = error_line(push(world, f"{nowhere}/app:1.0"))
    assert line.endswith(
        f"unauthorized: {user.name} may not push to project {nowhere}: the project does not exist"
    )


def test_a_pusher_who_may_not_create_streams_is_told_so(world: World) -> None:
    pusher = world.cluster.user("pusher")
    world.cluster.bind(world.project, "system:image-pusher", user_subject(pusher.name))
    podman_as(world, pusher.name, pusher.token)
    name = unique("new")
    line = error_line(push(world, f"{world.project}/{name}:1.0"))
    assert line.endswith(
        f"denied: {pusher.name} may not create image stream {name} in project {world.project}"
    )


def test_without_a_login_podman_asks_for_one(world: World) -> None:
    world.clients.podman(world.storage, "logout", "--all")
    line = error_line(push(world, f"{world.project}/app:1.0"))
    assert line.endswith("authentication required")
