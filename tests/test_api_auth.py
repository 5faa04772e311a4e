"""Authentication (logins, token format and storage, revocation, bad tokens) and
authorization (401, 403 with the Kubernetes message, RBAC escalation checks)."""

from __future__ import annotations

import re
import stat

import pytest
import requests

from tests.support.cluster import (
    CHALLENGING_CLIENT,
    RBAC,
    Cluster,
    User,
    assert_status,
    rolebinding,
    unique,
    user_subject,
)

ME = "/apis/user.openshift.io/v1/users/~"
RBAC_API = f"/apis/{RBAC}/v1"
TOKEN = re.compile(r"sha256~[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> User:
    return cluster.user("alice")


@pytest.fixture(scope="module")
def project(cluster: Cluster, alice: User) -> str:
    return cluster.new_project(alice.api, unique("alice"))


# Authentication


def test_tokens_look_like_openshift_tokens(alice: User) -> None:
    assert TOKEN.fullmatch(alice.token), alice.token


def test_only_the_hash_of_a_token_is_stored(cluster: Cluster, alice: User, project: str) -> None:
    from wharf.auth.tokens import stored_name

    response = alice.api.post(
        f"/api/v1/namespaces/{project}/serviceaccounts/builder/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert response.status_code == 201, response.text
    account_token = response.json()["status"]["token"]
    stored = cluster.wharf.stored_bytes()
    assert stored_name(alice.token).encode() in stored  # the search does find what is there
    for token in (alice.token, account_token):
        secret = token.split("~", 1)[1]
        assert secret.encode() not in stored
        assert token.encode() not in stored


def test_passwords_are_stored_hashed(cluster: Cluster, alice: User) -> None:
    text = (cluster.wharf.data_dir / "auth" / "htpasswd").read_text()
    assert alice.password not in text
    assert f"{alice.name}:$argon2" in text


def test_kubeadmin_password_file_is_private(cluster: Cluster) -> None:
    path = cluster.wharf.data_dir / "auth" / "kubeadmin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    token = cluster.login("kubeadmin", path.read_text().strip())
    assert cluster.api(token).get(ME).json()["metadata"]["name"] == "kubeadmin"


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_wrong_password_is_a_basic_challenge(
    cluster: Cluster, alice: User, password: str
) -> None:
    response = requests.get(
        f"{cluster.url}/oauth/authorize",
        params={"client_id": CHALLENGING_CLIENT, "response_type": "token"},
        headers={"X-CSRF-Token": "1"},
        auth=(alice.name, password),
        allow_redirects=False,
        verify=str(cluster.wharf.ca_file),
        timeout=30,
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "Location" not in response.headers


def test_an_unknown_user_cannot_log_in_and_gets_no_user(cluster: Cluster) -> None:
    response = requests.get(
        f"{cluster.url}/oauth/authorize",
        params={"client_id": CHALLENGING_CLIENT, "response_type": "token"},
        headers={"X-CSRF-Token": "1"},
        auth=("nobody-here", "pw"),
        allow_redirects=False,
        verify=str(cluster.wharf.ca_file),
        timeout=30,
    )
    assert response.status_code == 401
    assert_status(
        cluster.admin.get("/apis/user.openshift.io/v1/users/nobody-here"), 404, "NotFound"
    )


def test_an_unknown_oauth_client_is_refused(cluster: Cluster, alice: User) -> None:
    response = requests.get(
        f"{cluster.url}/oauth/authorize",
        params={"client_id": "evil", "response_type": "token"},
        auth=(alice.name, alice.password),
        allow_redirects=False,
        verify=str(cluster.wharf.ca_file),
        timeout=30,
    )
    assert response.status_code == 400


def test_each_login_makes_a_new_token(cluster: Cluster, alice: User) -> None:
    again = cluster.login(alice.name, alice.password)
    assert again != alice.token
    assert cluster.api(again).get(ME).json()["metadata"]["name"] == alice.name
    assert alice.api.get(ME).ok


def test_a_revoked_token_stops_working_at_once(cluster: Cluster, alice: User) -> None:
    from wharf.auth.tokens import stored_name

    token = cluster.login(alice.name, alice.password)
    api = cluster.api(token)
    assert api.get(ME).ok
    response = cluster.admin.delete(
        f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{stored_name(token)}"
    )
    assert response.status_code == 200
    assert_status(api.get(ME), 401, "Unauthorized")
    # Any user may delete a token they hold (as `oc logout` does), by its name.
    token = cluster.login(alice.name, alice.password)
    api = cluster.api(token)
    response = api.delete(f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{stored_name(token)}")
    assert response.status_code == 200, response.text
    assert_status(api.get(ME), 401, "Unauthorized")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer garbage",
        "Bearer sha256~" + "A" * 43,
        "Bearer wharfsa~" + "A" * 43,
        "Bearer sha256~has spaces and ! marks",
        "Bearer " + "x" * 5000,
        "Bearer ",
        "Basic " + "a2l0OnNlY3JldA==",
        "Negotiate abc",
        "Bearer sha256~\u00e9t\u00e9",
    ],
)
def test_bad_credentials_are_401(cluster: Cluster, authorization: str) -> None:
    response = cluster.api().get(ME, headers={"Authorization": authorization.encode()})
    assert_status(response, 401, "Unauthorized")


def test_a_token_of_a_deleted_service_account_is_401(cluster: Cluster, project: str) -> None:
    path = f"/api/v1/namespaces/{project}/serviceaccounts"
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "short"}}
    assert cluster.admin.post(path, json=account).status_code == 201
    token = cluster.admin.post(
        f"{path}/short/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    ).json()["status"]["token"]
    assert cluster.api(token).get(ME).ok
    assert cluster.admin.delete(f"{path}/short").ok
    assert cluster.admin.post(path, json=account).status_code == 201  # same name, new uid
    assert_status(cluster.api(token).get(ME), 401, "Unauthorized")


# Authorization


def test_no_credentials_is_401_everywhere(cluster: Cluster, project: str) -> None:
    anonymous = cluster.api()
    for path in (
        ME,
        "/api/v1/namespaces",
        f"/api/v1/namespaces/{project}/secrets",
        "/apis/project.openshift.io/v1/projects",
    ):
        assert_status(anonymous.get(path), 401, "Unauthorized")
    response = anonymous.post(
        "/apis/project.openshift.io/v1/projectrequests",
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": unique("anon")},
        },
    )
    assert_status(response, 401, "Unauthorized")


def test_forbidden_messages_have_the_kubernetes_shape(
    cluster: Cluster, alice: User, project: str
) -> None:
    bob = cluster.user("bob")
    status = assert_status(bob.api.get(f"/api/v1/namespaces/{project}/secrets/s"), 403, "Forbidden")
    assert status["message"] == (
        f'secrets "s" is forbidden: User "{bob.name}" cannot get resource "secrets" in API '
        f'group "" in the namespace "{project}"'
    )
    assert status["details"] == {"name": "s", "group": "", "kind": "secrets"}
    status = assert_status(bob.api.get("/api/v1/namespaces"), 403, "Forbidden")
    assert status["message"] == (
        f'namespaces is forbidden: User "{bob.name}" cannot list resource "namespaces" in API '
        'group "" at the cluster scope'
    )
    status = assert_status(bob.api.delete(f"{RBAC_API}/clusterroles/admin"), 403, "Forbidden")
    assert status["message"] == (
        f'clusterroles.rbac.authorization.k8s.io "admin" is forbidden: User "{bob.name}" '
        'cannot delete resource "clusterroles" in API group "rbac.authorization.k8s.io" at '
        "the cluster scope"
    )


def test_a_project_admin_may_read_their_namespace_and_project(alice: User, project: str) -> None:
    # RBAC sees a namespace (and a project) as being in itself: the admin binding applies.
    assert alice.api.get(f"/api/v1/namespaces/{project}").status_code == 200
    assert alice.api.get(f"/apis/project.openshift.io/v1/projects/{project}").status_code == 200
    assert_status(alice.api.get("/api/v1/namespaces/default"), 403, "Forbidden")


def test_a_user_cannot_read_or_change_another_project(
    cluster: Cluster, alice: User, project: str
) -> None:
    bob = cluster.user("bob")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "private"},
        "stringData": {"k": "v"},
    }
    assert alice.api.post(f"/api/v1/namespaces/{project}/secrets", json=secret).ok
    for response in (
        bob.api.get(f"/api/v1/namespaces/{project}/secrets"),
        bob.api.get(f"/api/v1/namespaces/{project}/secrets/private"),
        bob.api.get(f"/api/v1/namespaces/{project}/secrets", params={"watch": "true"}),
        bob.api.delete(f"/api/v1/namespaces/{project}/secrets/private"),
        bob.api.get(f"/apis/project.openshift.io/v1/projects/{project}"),
        bob.api.get(f"/api/v1/namespaces/{project}"),
        bob.api.delete(f"/apis/project.openshift.io/v1/projects/{project}"),
        bob.api.post(f"/api/v1/namespaces/{project}/secrets", json=secret),
        bob.api.get("/apis/route.openshift.io/v1/routes"),
    ):
        assert_status(response, 403, "Forbidden")
    assert alice.api.get(f"/api/v1/namespaces/{project}/secrets/private").ok


def test_a_project_admin_cannot_bind_cluster_admin_at_cluster_scope(
    cluster: Cluster, alice: User
) -> None:
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": unique("grab")},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [user_subject(alice.name)],
    }
    assert_status(alice.api.post(f"{RBAC_API}/clusterrolebindings", json=binding), 403, "Forbidden")
    assert_status(alice.api.get("/api/v1/namespaces"), 403, "Forbidden")  # and it did not happen


def test_a_project_admin_cannot_bind_a_role_granting_more_than_they_hold(
    cluster: Cluster, alice: User, project: str
) -> None:
    path = f"{RBAC_API}/namespaces/{project}/rolebindings"
    for role in ("cluster-admin", "system:image-pruner", "system:image-signer"):
        response = alice.api.post(path, json=rolebinding(unique("esc"), role, user_subject("x")))
        status = assert_status(response, 403, "Forbidden")
        assert "attempting to grant RBAC permissions not currently held" in status["message"]
    # Roles the admin holds may be granted.
    for role in ("admin", "edit", "view", "system:image-puller", "registry-viewer"):
        response = alice.api.post(path, json=rolebinding(unique("ok"), role, user_subject("x")))
        assert response.status_code == 201, (role, response.text)


def test_a_project_admin_cannot_write_a_role_granting_more_than_they_hold(
    cluster: Cluster, alice: User, project: str
) -> None:
    path = f"{RBAC_API}/namespaces/{project}/roles"
    everything = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "everything"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    assert_status(alice.api.post(path, json=everything), 403, "Forbidden")
    modest = {
        **everything,
        "metadata": {"name": "modest"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
    }
    created = alice.api.post(path, json=modest)
    assert created.status_code == 201, created.text
    grown = created.json()
    grown["rules"] = everything["rules"]
    assert_status(alice.api.put(f"{path}/modest", json=grown), 403, "Forbidden")
    patch = [
        {
            "op": "add",
            "path": "/rules/-",
            "value": {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["delete"]},
        }
    ]
    response = alice.api.patch(
        f"{path}/modest", json=patch, headers={"Content-Type": "application/json-patch+json"}
    )
    assert_status(response, 403, "Forbidden")


def test_a_binding_to_a_missing_role_is_allowed_and_grants_nothing(
    cluster: Cluster, alice: User, project: str
) -> None:
    carol = cluster.user("carol")
    path = f"{RBAC_API}/namespaces/{project}/rolebindings"
    for kind in ("Role", "ClusterRole"):
        binding = rolebinding(unique("ghost"), "no-such-role", user_subject(carol.name), kind)
        response = alice.api.post(path, json=binding)
        assert response.status_code == 201, response.text
    assert_status(carol.api.get(f"/api/v1/namespaces/{project}/secrets"), 403, "Forbidden")
    projects = carol.api.get("/apis/project.openshift.io/v1/projects").json()["items"]
    assert project not in [p["metadata"]["name"] for p in projects]


def test_a_project_admin_cannot_bind_in_another_project(cluster: Cluster, alice: User) -> None:
    other = cluster.new_project(cluster.admin, unique("other"))
    response = alice.api.post(
        f"{RBAC_API}/namespaces/{other}/rolebindings",
        json=rolebinding(unique("in"), "view", user_subject(alice.name)),
    )
    assert_status(response, 403, "Forbidden")


def test_bindings_take_effect_and_end_at_once(cluster: Cluster, alice: User, project: str) -> None:
    dave = cluster.user("dave")
    secrets = f"/api/v1/namespaces/{project}/secrets"
    assert_status(dave.api.get(secrets), 403, "Forbidden")
    response = cluster.bind(project, "view", user_subject(dave.name), api=alice.api)
    assert response.status_code == 201
    assert dave.api.get(secrets).status_code == 200
    name = response.json()["metadata"]["name"]
    assert alice.api.delete(f"{RBAC_API}/namespaces/{project}/rolebindings/{name}").ok
    assert_status(dave.api.get(secrets), 403, "Forbidden")


def test_cluster_admin_may_do_anything(cluster: Cluster, project: str) -> None:
    assert cluster.admin.get(f"/api/v1/namespaces/{project}/secrets").ok
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": unique("readers")},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-reader"},
        "subjects": [user_subject("someone")],
    }
    assert cluster.admin.post(f"{RBAC_API}/clusterrolebindings", json=binding).status_code == 201
