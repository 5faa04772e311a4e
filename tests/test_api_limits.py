"""Limits in time: OAuth access tokens expire, and a watch cannot resume from a
resourceVersion older than the event log keeps (410 Gone). The server runs with the hidden
`wharf serve` options that shorten both."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes import watch as kube_watch

from tests.support.cluster import (
    CHALLENGING_CLIENT,
    Api,
    Cluster,
    assert_status,
    unique,
    watch_events,
)
from tests.support.server import running_wharf, wait_until

LIFETIME = 4  # seconds a token lasts
RETAINED = 20  # events the log keeps
ME = "/apis/user.openshift.io/v1/users/~"


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("limits")
    args = ("--token-lifetime", str(LIFETIME), "--retained-events", str(RETAINED))
    with running_wharf(base / "data", *args) as process:
        yield Cluster(process, base)


def admin(cluster: Cluster) -> tuple[str, Api]:
    """kubeadmin, logged in afresh: tokens here do not last long."""
    token = cluster.login("kubeadmin", cluster.wharf.kubeadmin_password)
    return token, cluster.api(token)


@pytest.fixture(scope="module")
def robot(short: Cluster) -> tuple[str, Api]:
    """A cluster-admin service account: its tokens outlive the short OAuth tokens, for tests
    that take longer than one of those lasts."""
    _, api = admin(short)
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    assert api.post("/api/v1/namespaces/default/serviceaccounts", json=account).ok
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "robot-admin"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "namespace": "default", "name": "robot"}],
    }
    assert api.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json=binding).ok
    response = api.post(
        "/api/v1/namespaces/default/serviceaccounts/robot/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert response.status_code == 201, response.text
    token = response.json()["status"]["token"]
    return token, short.api(token)


def secret(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}


def test_the_login_says_how_long_the_token_lasts(short: Cluster) -> None:
    name, password = short.add_user(unique("u"))
    response = requests.get(
        f"{short.url}/oauth/authorize",
        params={"client_id": CHALLENGING_CLIENT, "response_type": "token"},
        headers={"X-CSRF-Token": "1"},
        auth=(name, password),
        allow_redirects=False,
        verify=str(short.wharf.ca_file),
        timeout=30,
    )
    fragment = parse_qs(urlsplit(response.headers["Location"]).fragment)
    assert fragment["expires_in"] == [str(LIFETIME)]
    assert fragment["token_type"] == ["Bearer"]
    from wharf.auth.tokens import stored_name

    _, api = admin(short)
    record = api.get(
        f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{stored_name(fragment['access_token'][0])}"
    ).json()
    assert record["expiresIn"] == LIFETIME
    assert record["userName"] == name


def test_an_expired_token_is_401(short: Cluster) -> None:
    name, password = short.add_user(unique("u"))
    token = short.login(name, password)
    api = short.api(token)
    assert api.get(ME).status_code == 200
    wait_until(lambda: api.get(ME).status_code == 401, timeout=LIFETIME + 10, interval=0.25)
    assert_status(api.get(ME), 401, "Unauthorized")
    # A new login gives a token that works again.
    assert short.api(short.login(name, password)).get(ME).status_code == 200


def test_service_account_tokens_keep_their_own_expiry(short: Cluster) -> None:
    _, api = admin(short)
    response = api.post(
        "/api/v1/namespaces/default/serviceaccounts/default/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    assert response.status_code == 201, response.text
    robot = short.api(response.json()["status"]["token"])
    assert robot.get(ME).json()["metadata"]["name"] == "system:serviceaccount:default:default"


def test_a_watch_from_a_version_older_than_the_log_is_410(
    short: Cluster, robot: tuple[str, Api]
) -> None:
    _, api = robot
    namespace = short.new_project(api, unique("gone"))
    path = f"/api/v1/namespaces/{namespace}/secrets"
    start = api.get(path).json()["metadata"]["resourceVersion"]
    for index in range(RETAINED + 5):
        assert api.post(path, json=secret(f"s{index}")).status_code == 201
    events = watch_events(api, path, {"resourceVersion": start}, 1)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] in ("Expired", "Gone")
    # A recent version still resumes, and sees what follows in order.
    recent = api.get(path).json()["metadata"]["resourceVersion"]
    assert api.post(path, json=secret("after")).status_code == 201
    assert api.delete(f"{path}/s0").status_code == 200
    events = watch_events(api, path, {"resourceVersion": recent}, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "after"),
        ("DELETED", "s0"),
    ]


def test_the_python_client_sees_410_as_an_api_exception(
    short: Cluster, robot: tuple[str, Api]
) -> None:
    token, api = robot
    namespace = short.new_project(api, unique("gone"))
    path = f"/api/v1/namespaces/{namespace}/secrets"
    start = api.get(path).json()["metadata"]["resourceVersion"]
    for index in range(RETAINED + 5):
        assert api.post(path, json=secret(f"s{index}")).status_code == 201
    config = short.kubeconfig(token, "limits-python")
    core = kube_client.CoreV1Api(kube_config.new_client_from_config(config_file=str(config)))
    watcher = kube_watch.Watch()
    with pytest.raises(kube_client.ApiException) as caught:
        for _event in watcher.stream(
            core.list_namespaced_secret, namespace, resource_version=start, timeout_seconds=10
        ):
            break
    assert caught.value.status == 410
