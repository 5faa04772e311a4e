"""The kinds the control plane serves, each with the behaviour of its own: namespaces,
service accounts and their tokens, secrets, projects, users, groups, identities, OAuth access
tokens, RBAC with the default roles, the access and token reviews, routes."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.support.cluster import (
    RBAC,
    Api,
    Cluster,
    User,
    assert_status,
    rolebinding,
    unique,
    user_subject,
    watch_events,
)

PROJECTS = "/apis/project.openshift.io/v1/projects"
PROJECT_REQUESTS = "/apis/project.openshift.io/v1/projectrequests"
USERS = "/apis/user.openshift.io/v1/users"
GROUPS = "/apis/user.openshift.io/v1/groups"
IDENTITIES = "/apis/user.openshift.io/v1/identities"
TOKENS = "/apis/oauth.openshift.io/v1/oauthaccesstokens"
OWN_TOKENS = "/apis/oauth.openshift.io/v1/useroauthaccesstokens"
AUTHZ = "/apis/authorization.k8s.io/v1"
AUTHN = "/apis/authentication.k8s.io/v1"
RBAC_API = f"/apis/{RBAC}/v1"


def whoami(api: Api) -> dict[str, Any]:
    response = api.post(
        f"{AUTHN}/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert response.status_code == 201, response.text
    info: dict[str, Any] = response.json()["status"]["userInfo"]
    return info


def can(api: Api, verb: str, resource: str, namespace: str = "", group: str = "") -> bool:
    response = api.post(
        f"{AUTHZ}/selfsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "namespace": namespace,
                }
            },
        },
    )
    assert response.status_code == 201, response.text
    return bool(response.json()["status"]["allowed"])


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> User:
    return cluster.user("alice")


@pytest.fixture(scope="module")
def alices_project(cluster: Cluster, alice: User) -> str:
    return cluster.new_project(alice.api, unique("alice"))


# Namespaces


def test_namespace_gets_active_phase_and_finalizers(cluster: Cluster) -> None:
    name = unique("ns")
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name},
        "status": {"phase": "Terminating"},
    }
    response = cluster.admin.post("/api/v1/namespaces", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"]["phase"] == "Active"
    assert created["spec"]["finalizers"] == ["kubernetes"]
    assert "namespace" not in created["metadata"]


def test_namespace_names_are_dns_labels(cluster: Cluster) -> None:
    for name in ("has.dot", "UPPER", "-dash", "a" * 64):
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        status = assert_status(cluster.admin.post("/api/v1/namespaces", json=body), 422, "Invalid")
        assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_deleting_a_namespace_deletes_what_is_in_it(cluster: Cluster) -> None:
    name = cluster.new_project(cluster.admin, unique("doomed"))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    assert cluster.admin.post(f"/api/v1/namespaces/{name}/secrets", json=secret).ok
    assert cluster.admin.delete(f"/api/v1/namespaces/{name}").ok
    assert_status(cluster.admin.get(f"/api/v1/namespaces/{name}"), 404, "NotFound")
    assert_status(cluster.admin.get(f"/api/v1/namespaces/{name}/secrets/s"), 404, "NotFound")
    bindings = cluster.admin.get(f"{RBAC_API}/namespaces/{name}/rolebindings").json()["items"]
    assert bindings == []


def test_system_namespaces_exist(cluster: Cluster) -> None:
    names = {i["metadata"]["name"] for i in cluster.admin.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "openshift", "openshift-config", "openshift-image-registry"} <= names


# Service accounts and TokenRequest


def test_token_request_authenticates_as_the_service_account(
    cluster: Cluster, alice: User, alices_project: str
) -> None:
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    path = f"/api/v1/namespaces/{alices_project}/serviceaccounts"
    assert alice.api.post(path, json=account).status_code == 201
    response = alice.api.post(
        f"{path}/robot/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["kind"] == "TokenRequest"
    assert answer["spec"]["expirationSeconds"] == 3600
    token = answer["status"]["token"]
    assert answer["status"]["expirationTimestamp"].endswith("Z")
    robot = cluster.api(token)
    info = whoami(robot)
    assert info["username"] == f"system:serviceaccount:{alices_project}:robot"
    assert "system:serviceaccounts" in info["groups"]
    assert f"system:serviceaccounts:{alices_project}" in info["groups"]
    me = robot.get(f"{USERS}/~").json()
    assert me["metadata"]["name"] == f"system:serviceaccount:{alices_project}:robot"
    # The account may not read the project's secrets: it holds no role there.
    assert_status(robot.get(f"/api/v1/namespaces/{alices_project}/secrets"), 403, "Forbidden")
    # Deleting the account revokes its tokens at once.
    assert alice.api.delete(f"{path}/robot").ok
    assert_status(robot.get(f"{USERS}/~"), 401, "Unauthorized")


def test_token_request_for_a_missing_account_is_404(alice: User, alices_project: str) -> None:
    response = alice.api.post(
        f"/api/v1/namespaces/{alices_project}/serviceaccounts/nobody/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    assert_status(response, 404, "NotFound")


def test_token_request_with_too_short_a_lifetime_is_400(alice: User, alices_project: str) -> None:
    response = alice.api.post(
        f"/api/v1/namespaces/{alices_project}/serviceaccounts/default/token",
        json={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 10},
        },
    )
    assert_status(response, 400, "BadRequest")


def test_token_request_needs_the_right_to_create_tokens(
    cluster: Cluster, alices_project: str
) -> None:
    stranger = cluster.user("stranger")
    response = stranger.api.post(
        f"/api/v1/namespaces/{alices_project}/serviceaccounts/default/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
    )
    status = assert_status(response, 403, "Forbidden")
    assert 'cannot create resource "serviceaccounts/token"' in status["message"]


# Secrets


def test_secret_string_data_is_folded_into_data(alice: User, alices_project: str) -> None:
    path = f"/api/v1/namespaces/{alices_project}/secrets"
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "stringData": {"user": "bob"},
        "data": {"pw": base64.b64encode(b"pw").decode()},
    }
    response = alice.api.post(path, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["type"] == "Opaque"
    assert "stringData" not in created
    assert base64.b64decode(created["data"]["user"]) == b"bob"
    assert base64.b64decode(created["data"]["pw"]) == b"pw"


def test_secret_data_must_be_base64(alice: User, alices_project: str) -> None:
    path = f"/api/v1/namespaces/{alices_project}/secrets"
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bad"},
        "data": {"pw": "not base64!"},
    }
    status = assert_status(alice.api.post(path, json=body), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "data[pw]"


# Projects and project requests


def test_new_project_has_its_accounts_and_bindings(
    cluster: Cluster, alice: User, alices_project: str
) -> None:
    namespace = cluster.admin.get(f"/api/v1/namespaces/{alices_project}").json()
    assert namespace["metadata"]["annotations"]["openshift.io/requester"] == alice.name
    accounts = cluster.admin.get(f"/api/v1/namespaces/{alices_project}/serviceaccounts").json()
    assert {"builder", "deployer", "default"} <= {a["metadata"]["name"] for a in accounts["items"]}
    bindings = cluster.admin.get(f"{RBAC_API}/namespaces/{alices_project}/rolebindings").json()
    found = {
        b["roleRef"]["name"]: [(s["kind"], s["name"]) for s in b["subjects"]]
        for b in bindings["items"]
    }
    assert found["admin"] == [("User", alice.name)]
    assert found["system:image-builder"] == [("ServiceAccount", "builder")]
    assert found["system:image-puller"] == [("Group", f"system:serviceaccounts:{alices_project}")]
    for binding in bindings["items"]:
        assert binding["roleRef"]["kind"] == "ClusterRole"


def test_project_request_with_display_name(cluster: Cluster, alice: User) -> None:
    name = unique("shown")
    response = alice.api.post(
        PROJECT_REQUESTS,
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": name},
            "displayName": "Shown",
            "description": "a project",
        },
    )
    assert response.status_code == 201, response.text
    project = response.json()
    assert project["kind"] == "Project"
    assert project["metadata"]["annotations"]["openshift.io/display-name"] == "Shown"
    got = alice.api.get(f"{PROJECTS}/{name}").json()
    assert got["kind"] == "Project" and got["status"]["phase"] == "Active"


def test_project_request_twice_is_already_exists(cluster: Cluster, alice: User) -> None:
    name = cluster.new_project(alice.api, unique("twice"))
    response = alice.api.post(
        PROJECT_REQUESTS,
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": name},
        },
    )
    assert_status(response, 409, "AlreadyExists")
    system = alice.api.post(
        PROJECT_REQUESTS,
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": "default"},
        },
    )
    # As OpenShift: the cluster's own projects are never requested, existing or not.
    assert_status(system, 403, "Forbidden", "cannot request a project")


def test_project_request_with_an_invalid_name_is_422(alice: User) -> None:
    response = alice.api.post(
        PROJECT_REQUESTS,
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": "Bad.Name"},
        },
    )
    assert_status(response, 422, "Invalid")


def test_projects_list_shows_only_the_projects_the_caller_may_see(
    cluster: Cluster, alice: User, alices_project: str
) -> None:
    bob = cluster.user("bob")
    bobs = cluster.new_project(bob.api, unique("bob"))
    alice_sees = {p["metadata"]["name"] for p in alice.api.get(PROJECTS).json()["items"]}
    bob_sees = {p["metadata"]["name"] for p in bob.api.get(PROJECTS).json()["items"]}
    assert alices_project in alice_sees and bobs not in alice_sees
    assert bob_sees == {bobs}
    assert "default" not in alice_sees
    admin_sees = {p["metadata"]["name"] for p in cluster.admin.get(PROJECTS).json()["items"]}
    assert {alices_project, bobs, "default"} <= admin_sees
    # A view binding makes the project visible.
    assert cluster.bind(bobs, "view", user_subject(alice.name), api=bob.api).status_code == 201
    alice_sees = {p["metadata"]["name"] for p in alice.api.get(PROJECTS).json()["items"]}
    assert bobs in alice_sees
    assert_status(bob.api.get(f"{PROJECTS}/{alices_project}"), 403, "Forbidden")


def test_watching_projects_shows_only_the_callers_projects(cluster: Cluster, alice: User) -> None:
    bob = cluster.user("bob")
    start = alice.api.get(PROJECTS).json()["metadata"]["resourceVersion"]
    bobs = cluster.new_project(bob.api, unique("bob"))
    mine = cluster.new_project(alice.api, unique("mine"))
    events = watch_events(alice.api, PROJECTS, {"resourceVersion": start}, 1)
    names = [e["object"]["metadata"]["name"] for e in events]
    assert bobs not in names
    assert names == [mine]
    assert events[0]["object"]["kind"] == "Project"


def test_project_admin_may_delete_their_project(cluster: Cluster, alice: User) -> None:
    name = cluster.new_project(alice.api, unique("gone"))
    assert alice.api.delete(f"{PROJECTS}/{name}").status_code == 200
    assert_status(cluster.admin.get(f"/api/v1/namespaces/{name}"), 404, "NotFound")


# Users, groups, identities


def test_first_login_creates_the_user_and_its_identity(cluster: Cluster) -> None:
    name, password = cluster.add_user(unique("carol"))
    assert_status(cluster.admin.get(f"{USERS}/{name}"), 404, "NotFound")
    cluster.login(name, password)
    user = cluster.admin.get(f"{USERS}/{name}").json()
    assert user["identities"] == [f"htpasswd:{name}"]
    identity = cluster.admin.get(f"{IDENTITIES}/htpasswd:{name}").json()
    assert identity["providerName"] == "htpasswd"
    assert identity["providerUserName"] == name
    assert identity["user"] == {"name": name, "uid": user["metadata"]["uid"]}
    cluster.login(name, password)
    again = cluster.admin.get(f"{USERS}/{name}").json()
    assert again["metadata"]["uid"] == user["metadata"]["uid"]
    assert again["metadata"]["resourceVersion"] == user["metadata"]["resourceVersion"]


def test_users_tilde_is_the_caller(alice: User) -> None:
    me = alice.api.get(f"{USERS}/~").json()
    assert me["kind"] == "User"
    assert me["metadata"]["name"] == alice.name
    assert "system:authenticated" in me["groups"]


def test_a_user_may_not_read_other_users(cluster: Cluster, alice: User) -> None:
    assert_status(alice.api.get(f"{USERS}/kubeadmin"), 403, "Forbidden")
    assert_status(alice.api.get(USERS), 403, "Forbidden")


def test_group_membership_shows_in_the_callers_groups_and_grants(cluster: Cluster) -> None:
    dave = cluster.user("dave")
    group = unique("team")
    project = cluster.new_project(cluster.admin, unique("team"))
    response = cluster.admin.post(
        GROUPS,
        json={
            "apiVersion": "user.openshift.io/v1",
            "kind": "Group",
            "metadata": {"name": group},
            "users": [dave.name],
        },
    )
    assert response.status_code == 201, response.text
    assert group in whoami(dave.api)["groups"]
    assert group in dave.api.get(f"{USERS}/~").json()["groups"]
    assert not can(dave.api, "list", "secrets", project)
    subject = {"kind": "Group", "apiGroup": RBAC, "name": group}
    assert cluster.bind(project, "view", subject).status_code == 201
    assert can(dave.api, "list", "secrets", project)
    assert dave.api.get(f"/api/v1/namespaces/{project}/secrets").status_code == 200


def test_deleting_a_user_ends_their_tokens(cluster: Cluster) -> None:
    erin = cluster.user("erin")
    assert erin.api.get(f"{USERS}/~").ok
    assert cluster.admin.delete(f"{USERS}/{erin.name}").ok
    assert_status(erin.api.get(f"{USERS}/~"), 401, "Unauthorized")
    # Logging in again makes a new user, whose new token works and old one still does not.
    token = cluster.login(erin.name, erin.password)
    assert cluster.api(token).get(f"{USERS}/~").ok
    assert_status(erin.api.get(f"{USERS}/~"), 401, "Unauthorized")


# OAuth access tokens


def test_a_user_lists_only_their_own_tokens(cluster: Cluster) -> None:
    frank = cluster.user("frank")
    second = cluster.login(frank.name, frank.password)
    other = cluster.user("grace")
    response = frank.api.get(OWN_TOKENS)
    assert response.status_code == 200, response.text
    tokens = response.json()["items"]
    assert len(tokens) == 2
    assert {t["userName"] for t in tokens} == {frank.name}
    names = {t["metadata"]["name"] for t in tokens}
    assert all(n.startswith("sha256~") for n in names)
    assert frank.token not in names and second not in names
    assert {t["kind"] for t in tokens} == {"UserOAuthAccessToken"}
    assert other.name not in {t["userName"] for t in tokens}
    # Nor may they list everybody's.
    assert_status(frank.api.get(TOKENS), 403, "Forbidden")
    everybody = cluster.admin.get(TOKENS).json()["items"]
    assert {frank.name, other.name} <= {t["userName"] for t in everybody}


def test_deleting_an_own_token_revokes_it_at_once(cluster: Cluster) -> None:
    heidi = cluster.user("heidi")
    spare = cluster.login(heidi.name, heidi.password)
    tokens = heidi.api.get(OWN_TOKENS).json()["items"]
    from wharf.auth.tokens import stored_name

    name = stored_name(spare)
    assert name in {t["metadata"]["name"] for t in tokens}
    assert cluster.api(spare).get(f"{USERS}/~").ok
    assert heidi.api.delete(f"{OWN_TOKENS}/{name}").status_code == 200
    assert_status(cluster.api(spare).get(f"{USERS}/~"), 401, "Unauthorized")
    assert heidi.api.get(f"{USERS}/~").ok


def test_a_user_cannot_delete_or_read_another_users_token(cluster: Cluster) -> None:
    ivan = cluster.user("ivan")
    judy = cluster.user("judy")
    from wharf.auth.tokens import stored_name

    name = stored_name(judy.token)
    assert_status(ivan.api.get(f"{OWN_TOKENS}/{name}"), 404, "NotFound")
    assert_status(ivan.api.delete(f"{OWN_TOKENS}/{name}"), 404, "NotFound")
    assert judy.api.get(f"{USERS}/~").ok


def test_watching_own_tokens_shows_only_own_tokens(cluster: Cluster) -> None:
    kim = cluster.user("kim")
    start = kim.api.get(OWN_TOKENS).json()["metadata"]["resourceVersion"]
    other = cluster.user("leo")
    cluster.login(other.name, other.password)
    cluster.login(kim.name, kim.password)
    events = watch_events(kim.api, OWN_TOKENS, {"resourceVersion": start}, 1)
    assert [e["object"]["userName"] for e in events] == [kim.name]
    assert events[0]["object"]["kind"] == "UserOAuthAccessToken"


def test_admin_revokes_a_token_by_deleting_the_oauth_access_token(cluster: Cluster) -> None:
    mallory = cluster.user("mallory")
    from wharf.auth.tokens import stored_name

    assert cluster.admin.delete(f"{TOKENS}/{stored_name(mallory.token)}").status_code == 200
    assert_status(mallory.api.get(f"{USERS}/~"), 401, "Unauthorized")


# RBAC


DEFAULT_ROLES = (
    "admin",
    "edit",
    "view",
    "cluster-admin",
    "cluster-reader",
    "basic-user",
    "self-provisioner",
    "system:image-puller",
    "system:image-pusher",
    "system:image-builder",
    "system:deployer",
    "registry-viewer",
    "registry-editor",
    "registry-admin",
)


def test_default_cluster_roles_are_installed(cluster: Cluster) -> None:
    roles = cluster.admin.get(f"{RBAC_API}/clusterroles").json()
    names = {r["metadata"]["name"] for r in roles["items"]}
    assert set(DEFAULT_ROLES) <= names
    admin = cluster.admin.get(f"{RBAC_API}/clusterroles/cluster-admin").json()
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]} in admin["rules"]
    # Aggregated roles show the rules they aggregate, transitively (admin > edit > view).
    for role, resource, verb in (
        ("admin", "rolebindings", "create"),
        ("admin", "secrets", "get"),
        ("edit", "secrets", "create"),
        ("view", "secrets", "get"),
    ):
        rules = cluster.admin.get(f"{RBAC_API}/clusterroles/{role}").json()["rules"]
        assert any(resource in r.get("resources", []) and verb in r["verbs"] for r in rules), role
    puller = cluster.admin.get(f"{RBAC_API}/clusterroles/system:image-puller").json()
    assert puller["rules"][0]["resources"] == ["imagestreams/layers"]
    bindings = cluster.admin.get(f"{RBAC_API}/clusterrolebindings").json()
    by_name = {b["metadata"]["name"]: b for b in bindings["items"]}
    assert by_name["cluster-admins"]["roleRef"]["name"] == "cluster-admin"
    assert by_name["self-provisioners"]["roleRef"]["name"] == "self-provisioner"


@pytest.mark.parametrize(
    ("role", "verb", "resource", "group", "allowed"),
    [
        ("view", "list", "secrets", "", True),
        ("view", "create", "secrets", "", False),
        ("view", "list", "routes", "route.openshift.io", True),
        ("edit", "list", "secrets", "", True),
        ("edit", "create", "secrets", "", True),
        ("edit", "create", "routes", "route.openshift.io", True),
        ("edit", "create", "rolebindings", RBAC, False),
        ("admin", "list", "serviceaccounts", "", True),
        ("admin", "create", "rolebindings", RBAC, True),
        ("admin", "delete", "routes", "route.openshift.io", True),
        ("registry-viewer", "get", "imagestreams", "image.openshift.io", True),
        ("registry-viewer", "create", "secrets", "", False),
        ("system:image-puller", "list", "secrets", "", False),
    ],
)
def test_default_roles_grant_what_they_should_in_a_project(
    cluster: Cluster, role: str, verb: str, resource: str, group: str, allowed: bool
) -> None:
    user = cluster.user("r")
    project = cluster.new_project(cluster.admin, unique("roles"))
    assert cluster.bind(project, role, user_subject(user.name)).status_code == 201
    assert can(user.api, verb, resource, project, group) is allowed
    assert not can(user.api, verb, resource, "default", group)


def test_a_namespaced_role_grants_in_its_namespace_only(
    cluster: Cluster, alice: User, alices_project: str
) -> None:
    nick = cluster.user("nick")
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }
    path = f"{RBAC_API}/namespaces/{alices_project}"
    assert alice.api.post(f"{path}/roles", json=role).status_code == 201
    assert (
        cluster.bind(
            alices_project, "secret-reader", user_subject(nick.name), kind="Role", api=alice.api
        ).status_code
        == 201
    )
    assert nick.api.get(f"/api/v1/namespaces/{alices_project}/secrets").status_code == 200
    assert_status(
        nick.api.post(
            f"/api/v1/namespaces/{alices_project}/secrets",
            json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}},
        ),
        403,
        "Forbidden",
    )
    other = cluster.new_project(alice.api, unique("other"))
    assert_status(nick.api.get(f"/api/v1/namespaces/{other}/secrets"), 403, "Forbidden")


def test_role_ref_is_immutable(cluster: Cluster, alice: User, alices_project: str) -> None:
    path = f"{RBAC_API}/namespaces/{alices_project}/rolebindings"
    created = alice.api.post(path, json=rolebinding("viewers", "view", user_subject("x"))).json()
    created["roleRef"]["name"] = "edit"
    assert_status(alice.api.put(f"{path}/viewers", json=created), 422, "Invalid")


def test_invalid_role_and_binding_are_422_with_causes(alice: User, alices_project: str) -> None:
    path = f"{RBAC_API}/namespaces/{alices_project}"
    role = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": "bad"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"]}],
    }
    status = assert_status(alice.api.post(f"{path}/roles", json=role), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "rules[0].verbs"
    binding = rolebinding("bad", "view", {"kind": "Robot", "name": "r"})
    status = assert_status(alice.api.post(f"{path}/rolebindings", json=binding), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "subjects[0].kind"


# Reviews


def test_self_subject_access_review(alice: User, alices_project: str) -> None:
    assert can(alice.api, "create", "secrets", alices_project)
    assert can(alice.api, "create", "projectrequests", "", "project.openshift.io")
    assert not can(alice.api, "list", "secrets", "default")
    assert not can(alice.api, "delete", "namespaces")


def test_subject_access_review_is_for_admins(
    cluster: Cluster, alice: User, alices_project: str
) -> None:
    def review(api: Api, namespace: str) -> Any:
        return api.post(
            f"{AUTHZ}/subjectaccessreviews",
            json={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": alice.name,
                    "groups": ["system:authenticated"],
                    "resourceAttributes": {
                        "verb": "get",
                        "resource": "secrets",
                        "namespace": namespace,
                    },
                },
            },
        )

    yes = review(cluster.admin, alices_project)
    assert yes.status_code == 201, yes.text
    assert yes.json()["status"]["allowed"] is True
    assert review(cluster.admin, "default").json()["status"]["allowed"] is False
    assert_status(review(alice.api, alices_project), 403, "Forbidden")


def test_local_subject_access_review(cluster: Cluster, alice: User, alices_project: str) -> None:
    response = alice.api.post(
        f"{AUTHZ}/namespaces/{alices_project}/localsubjectaccessreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview",
            "spec": {
                "user": "nobody",
                "resourceAttributes": {
                    "verb": "get",
                    "resource": "secrets",
                    "namespace": alices_project,
                },
            },
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"]["allowed"] is False


def test_self_subject_rules_review(alice: User, alices_project: str) -> None:
    response = alice.api.post(
        f"{AUTHZ}/selfsubjectrulesreviews",
        json={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": alices_project},
        },
    )
    assert response.status_code == 201, response.text
    status = response.json()["status"]
    granted = {
        (group, resource, verb)
        for rule in status["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("rbac.authorization.k8s.io", "rolebindings", "create") in granted
    assert ("project.openshift.io", "projectrequests", "create") in granted
    assert status["incomplete"] is False


def test_token_review(cluster: Cluster, alice: User) -> None:
    def review(api: Api, token: str) -> Any:
        return api.post(
            f"{AUTHN}/tokenreviews",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token},
            },
        )

    good = review(cluster.admin, alice.token)
    assert good.status_code == 201, good.text
    status = good.json()["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == alice.name
    assert "system:authenticated" in status["user"]["groups"]
    assert review(cluster.admin, "sha256~garbage").json()["status"]["authenticated"] is False
    assert_status(review(alice.api, alice.token), 403, "Forbidden")


def test_self_subject_review(alice: User) -> None:
    info = whoami(alice.api)
    assert info["username"] == alice.name
    assert info["uid"]
    assert "system:authenticated:oauth" in info["groups"]


# Routes


def test_route_defaults_and_required_target(alice: User, alices_project: str) -> None:
    path = f"/apis/route.openshift.io/v1/namespaces/{alices_project}/routes"
    body = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "web"},
        "spec": {"host": "web.example.com", "to": {"kind": "Service", "name": "web"}},
    }
    response = alice.api.post(path, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["wildcardPolicy"] == "None"
    missing = {**body, "metadata": {"name": "nowhere"}, "spec": {"host": "x.example.com"}}
    status = assert_status(alice.api.post(path, json=missing), 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.to.name"


def test_route_status_is_its_own_subresource(alice: User, alices_project: str) -> None:
    path = f"/apis/route.openshift.io/v1/namespaces/{alices_project}/routes"
    body = {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": "statusful"},
        "spec": {"to": {"kind": "Service", "name": "web"}},
        "status": {"ingress": [{"host": "forged"}]},
    }
    created = alice.api.post(path, json=body).json()
    assert not (created.get("status") or {}).get("ingress")
    created["status"] = {"ingress": [{"host": "via-main"}]}
    updated = alice.api.put(f"{path}/statusful", json=created).json()
    assert not (updated.get("status") or {}).get("ingress")
    updated["status"] = {"ingress": [{"host": "routed"}]}
    updated["spec"]["host"] = "changed-with-status"
    response = alice.api.put(f"{path}/statusful/status", json=updated)
    assert response.status_code == 200, response.text
    stored = alice.api.get(f"{path}/statusful").json()
    assert stored["status"]["ingress"] == [{"host": "routed"}]
    assert "host" not in stored["spec"]
