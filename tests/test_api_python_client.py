"""The official `kubernetes` Python client: the DynamicClient over our discovery, and the
typed CoreV1Api, for reads, writes and watches."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes import dynamic, watch
from kubernetes.dynamic.exceptions import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ResourceNotFoundError,
    UnprocessibleEntityError,
)

from tests.support.cluster import Cluster, User, unique


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> User:
    return cluster.user("alice")


@pytest.fixture(scope="module")
def project(cluster: Cluster, alice: User) -> str:
    return cluster.new_project(alice.api, unique("python"))


@pytest.fixture(scope="module")
def api_client(alice: User) -> kube_client.ApiClient:
    client = kube_config.new_client_from_config(config_file=str(alice.kubeconfig))
    assert isinstance(client, kube_client.ApiClient)
    return client


@pytest.fixture(scope="module")
def dyn(api_client: kube_client.ApiClient) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client)


def route(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "labels": labels},
        "spec": {"to": {"kind": "Service", "name": "web"}},
    }


def test_discovery_finds_our_kinds(dyn: dynamic.DynamicClient) -> None:
    routes = dyn.resources.get(api_version="route.openshift.io/v1", kind="Route")
    assert routes.namespaced and routes.name == "routes"
    projects = dyn.resources.get(api_version="project.openshift.io/v1", kind="Project")
    assert not projects.namespaced
    assert dyn.resources.get(api_version="v1", kind="Namespace").name == "namespaces"
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="v1", kind="Pod")


def test_dynamic_create_get_list_patch_replace_delete(
    dyn: dynamic.DynamicClient, project: str
) -> None:
    routes = dyn.resources.get(api_version="route.openshift.io/v1", kind="Route")
    name = unique("dyn")
    created = routes.create(body=route(name, app="x"), namespace=project)
    assert created.metadata.name == name and created.metadata.uid
    got = routes.get(name=name, namespace=project)
    assert got.metadata.resourceVersion == created.metadata.resourceVersion
    listed = routes.get(namespace=project, label_selector="app=x")
    assert [item.metadata.name for item in listed.items] == [name]
    patched = routes.patch(
        name=name,
        namespace=project,
        body={"spec": {"host": "dyn.example.com"}},
        content_type="application/merge-patch+json",
    )
    assert patched.spec.host == "dyn.example.com"
    assert patched.metadata.generation == 2
    body = patched.to_dict()
    body["spec"]["path"] = "/p"
    replaced = routes.replace(body=body, namespace=project)
    assert replaced.spec.path == "/p"
    stale = dict(
        body, metadata={**body["metadata"], "resourceVersion": created.metadata.resourceVersion}
    )
    with pytest.raises(ConflictError):
        routes.replace(body=stale, namespace=project)
    routes.delete(name=name, namespace=project)
    with pytest.raises(NotFoundError):
        routes.get(name=name, namespace=project)


def test_dynamic_errors_map_to_their_exceptions(dyn: dynamic.DynamicClient, project: str) -> None:
    routes = dyn.resources.get(api_version="route.openshift.io/v1", kind="Route")
    with pytest.raises(UnprocessibleEntityError):
        routes.create(body=route("Not_Valid"), namespace=project)
    with pytest.raises(ForbiddenError):
        routes.get(namespace="default")
    name = unique("dup")
    routes.create(body=route(name), namespace=project)
    with pytest.raises(ConflictError):
        routes.create(body=route(name), namespace=project)


def test_dynamic_watch_of_routes(
    dyn: dynamic.DynamicClient, cluster: Cluster, project: str
) -> None:
    routes = dyn.resources.get(api_version="route.openshift.io/v1", kind="Route")
    start = routes.get(namespace=project).metadata.resourceVersion
    names = [unique("w") for _ in range(2)]
    for name in names:
        routes.create(body=route(name), namespace=project)
    routes.delete(name=names[0], namespace=project)
    seen = []
    for event in routes.watch(namespace=project, resource_version=start, timeout=10):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            break
    assert seen == [("ADDED", names[0]), ("ADDED", names[1]), ("DELETED", names[0])]


def test_dynamic_list_and_watch_of_namespaces_as_admin(cluster: Cluster) -> None:
    client = kube_config.new_client_from_config(
        config_file=str(cluster.kubeconfig(cluster.admin_token, "python-admin"))
    )
    dyn = dynamic.DynamicClient(client)
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    names = [item.metadata.name for item in namespaces.get().items]
    assert "default" in names
    version = namespaces.get().metadata.resourceVersion
    created = cluster.new_project(cluster.admin, unique("nsw"))
    for event in namespaces.watch(resource_version=version, timeout=10):
        assert event["type"] == "ADDED"
        assert event["object"].metadata.name == created
        break
    else:
        pytest.fail("no event")


def metadata_of(item: Any) -> kube_client.V1ObjectMeta:
    """A typed object's metadata, which the client's types allow to be None."""
    assert isinstance(item.metadata, kube_client.V1ObjectMeta), item
    return item.metadata


def test_typed_core_client(api_client: kube_client.ApiClient, project: str) -> None:
    core = kube_client.CoreV1Api(api_client)
    accounts = core.list_namespaced_service_account(project)
    assert {"builder", "default", "deployer"} <= {metadata_of(a).name for a in accounts.items}
    secret = kube_client.V1Secret(
        metadata=kube_client.V1ObjectMeta(name="typed", labels={"a": "b"}),
        string_data={"k": "v"},
    )
    created = core.create_namespaced_secret(project, secret)
    assert created.data == {"k": "dg=="}
    assert created.type == "Opaque"
    read = core.read_namespaced_secret("typed", project)
    assert metadata_of(read).uid == metadata_of(created).uid
    patched = core.patch_namespaced_secret("typed", project, {"metadata": {"labels": {"c": "d"}}})
    assert metadata_of(patched).labels == {"a": "b", "c": "d"}
    core.delete_namespaced_secret("typed", project)
    with pytest.raises(kube_client.ApiException) as caught:
        core.read_namespaced_secret("typed", project)
    assert caught.value.status == 404


def test_typed_watch_sees_a_change_made_meanwhile(
    api_client: kube_client.ApiClient, cluster: Cluster, project: str
) -> None:
    core = kube_client.CoreV1Api(api_client)
    listed = core.list_namespaced_secret(project).metadata
    assert listed is not None
    version = listed.resource_version
    done = threading.Event()
    events: list[tuple[str, str]] = []

    def run() -> None:
        watcher = watch.Watch()
        for event in watcher.stream(
            core.list_namespaced_secret, project, resource_version=version, timeout_seconds=15
        ):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "MODIFIED":
                watcher.stop()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    path = f"/api/v1/namespaces/{project}/secrets"
    assert (
        cluster.admin.post(
            path, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "watched"}}
        ).status_code
        == 201
    )
    assert cluster.admin.patch(
        f"{path}/watched",
        json={"metadata": {"labels": {"x": "y"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).ok
    assert done.wait(20)
    thread.join(5)
    assert events == [("ADDED", "watched"), ("MODIFIED", "watched")]


def test_typed_authentication_and_authorization_clients(
    api_client: kube_client.ApiClient, alice: User, project: str
) -> None:
    authn = kube_client.AuthenticationV1Api(api_client)
    review = authn.create_self_subject_review(kube_client.V1SelfSubjectReview())
    assert review.status is not None and review.status.user_info is not None
    assert review.status.user_info.username == alice.name
    authz = kube_client.AuthorizationV1Api(api_client)
    access = authz.create_self_subject_access_review(
        kube_client.V1SelfSubjectAccessReview(
            spec=kube_client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=kube_client.V1ResourceAttributes(
                    verb="create", resource="secrets", namespace=project
                )
            )
        )
    )
    assert access.status is not None and access.status.allowed is True


def test_image_streams_list_and_watch(
    cluster: Cluster, dyn: dynamic.DynamicClient, project: str
) -> None:
    try:
        streams = dyn.resources.get(api_version="image.openshift.io/v1", kind="ImageStream")
    except ResourceNotFoundError:
        pytest.skip("image.openshift.io is not served")
    assert streams.namespaced
    start = streams.get(namespace=project).metadata.resourceVersion
    name = unique("is")
    streams.create(
        body={
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": name},
        },
        namespace=project,
    )
    assert name in [s.metadata.name for s in streams.get(namespace=project).items]
    for event in streams.watch(namespace=project, resource_version=start, timeout=10):
        assert (event["type"], event["object"].metadata.name) == ("ADDED", name)
        break
    else:
        pytest.fail("no event")
