"""`wharf new-project`, `project`, `projects`, `policy`, `adm policy`, `create token` and
`auth can-i`, run as a user would, against a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.support.cli import Cli, manifest, new_cli
from tests.support.server import WharfProcess, running_wharf

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    with running_wharf(tmp_path_factory.mktemp("cli-projects") / "data", integrated=True) as w:
        yield w


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, server: WharfProcess) -> Cli:
    cli = new_cli(tmp_path_factory.mktemp("admin"))
    cli.login_admin(server)
    return cli


@pytest.fixture
def project(admin: Cli) -> str:
    name = f"p-{uuid.uuid4().hex[:8]}"
    admin.ok("new-project", name)
    admin.ok("project", "default")
    return name


@dataclass
class User:
    name: str
    cli: Cli


@pytest.fixture
def someone(tmp_path_factory: pytest.TempPathFactory, admin: Cli, server: WharfProcess) -> User:
    """A new user, logged in with a kubeconfig of their own."""
    name, password = f"u-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.ok("user", "add", name, "-p", password, "--data-dir", str(server.data_dir))
    cli = new_cli(tmp_path_factory.mktemp(name))
    cli.ok(
        "login",
        server.api_url,
        "--certificate-authority",
        str(server.ca_file),
        "-u",
        name,
        "-p",
        password,
    )
    return User(name, cli)


def binding(admin: Cli, project: str, name: str) -> dict[str, Any]:
    found = json.loads(admin.ok("get", "rolebinding", name, "-n", project, "-o", "json"))
    assert isinstance(found, dict)
    return found


def test_new_project_switches_to_it(admin: Cli, server: WharfProcess) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    out = admin.ok("new-project", name, "--display-name", "My Project", "--description", "Mine")
    assert out == f'Now using project "{name}" on server "{server.api_url}".\n'
    cluster = f"127-0-0-1:{server.api_port}"
    assert admin.config()["current-context"] == f"{name}/{cluster}/kubeadmin"
    assert admin.ok("project") == f'Using project "{name}" on server "{server.api_url}".\n'
    assert admin.ok("project", "-q") == f"{name}\n"
    listing = admin.ok("projects")
    assert listing.startswith("You have access to the following projects")
    assert f"  * {name} - My Project\n" in listing
    assert "    default\n" in listing
    assert listing.endswith(f'Using project "{name}" on server "{server.api_url}".\n')
    assert name in admin.ok("projects", "-q").split()

    annotations = admin.ok("get", "project", name, "-o", "jsonpath={.metadata.annotations}")
    assert '"openshift.io/description":"Mine"' in annotations
    assert '"openshift.io/requester":"kubeadmin"' in annotations
    # The project comes with its service accounts.
    accounts = admin.ok("get", "sa", "-o", "name").split()
    assert {"serviceaccount/builder", "serviceaccount/default", "serviceaccount/deployer"} <= set(
        accounts
    )

    out = admin.ok("project", "default")
    assert out == f'Now using project "default" on server "{server.api_url}".\n'
    out = admin.ok("project", "default")
    assert out == f'Already on project "default" on server "{server.api_url}".\n'
    assert admin.fails("new-project", name).startswith("error: ")
    assert "already exists" in admin.fails("new-project", name)
    err = admin.fails("project", "no-such-project")
    assert err == (
        f'error: A project named "no-such-project" does not exist on "{server.api_url}".\n'
    )
    assert admin.config()["current-context"] == f"default/{cluster}/kubeadmin"


def test_a_user_sees_only_their_projects(someone: User, project: str) -> None:
    user = someone.cli
    out = user.ok("projects")
    assert "You are not a member of any projects" in out
    err = user.fails("project", project)
    assert err == f'error: You are not a member of project "{project}".\n'
    mine = f"p-{uuid.uuid4().hex[:8]}"
    user.ok("new-project", mine)
    assert user.ok("projects").startswith(f'You have one project on this server: "{mine}".')
    assert user.ok("projects", "-q") == f"{mine}\n"
    # Projects made by others stay out of sight.
    assert project not in user.ok("projects", "-q")


def test_add_role_to_user_then_remove_it(admin: Cli, someone: User, project: str) -> None:
    user, bob = someone.cli, someone.name
    assert user.run("auth", "can-i", "create", "imagestreams", "-n", project).out == "no\n"

    out = admin.ok("policy", "add-role-to-user", "system:image-builder", bob, "-n", project)
    assert out == f'clusterrole.{RBAC}/system:image-builder added: "{bob}"\n'
    made = binding(admin, project, "system:image-builder")
    assert made["roleRef"] == {
        "apiGroup": RBAC,
        "kind": "ClusterRole",
        "name": "system:image-builder",
    }
    assert made["subjects"] == [{"apiGroup": RBAC, "kind": "User", "name": bob}]
    assert user.ok("auth", "can-i", "create", "imagestreams", "-n", project) == "yes\n"
    # The project's own binding for its builder service account is left alone.
    own = binding(admin, project, "system:image-builders")
    assert [s["name"] for s in own["subjects"]] == ["builder"]

    # More users join the same binding; service-account users become ServiceAccount subjects.
    out = admin.ok(
        "policy",
        "add-role-to-user",
        "system:image-builder",
        "carol",
        f"system:serviceaccount:{project}:deployer",
        "-n",
        project,
    )
    assert out == (
        f"clusterrole.{RBAC}/system:image-builder added: "
        f'["carol" "system:serviceaccount:{project}:deployer"]\n'
    )
    subjects = binding(admin, project, "system:image-builder")["subjects"]
    assert subjects == [
        {"apiGroup": RBAC, "kind": "User", "name": bob},
        {"apiGroup": RBAC, "kind": "User", "name": "carol"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": project},
    ]
    # Adding who is there already changes nothing.
    admin.ok("policy", "add-role-to-user", "system:image-builder", bob, "-n", project)
    assert binding(admin, project, "system:image-builder")["subjects"] == subjects

    out = admin.ok("policy", "remove-role-from-user", "system:image-builder", bob, "-n", project)
    assert out == f'clusterrole.{RBAC}/system:image-builder removed: "{bob}"\n'
    assert user.run("auth", "can-i", "create", "imagestreams", "-n", project).code == 1
    err = admin.fails("policy", "remove-role-from-user", "system:image-builder", bob, "-n", project)
    assert err == f"error: unable to find target [{bob}]\n"
    # Once its last subject goes, the binding goes.
    admin.ok(
        "policy",
        "remove-role-from-user",
        "system:image-builder",
        "carol",
        f"system:serviceaccount:{project}:deployer",
        "-n",
        project,
    )
    assert "not found" in admin.fails("get", "rolebinding", "system:image-builder", "-n", project)
    err = admin.fails("policy", "remove-role-from-user", "view", bob, "-n", project)
    assert err == 'error: unable to locate any RoleBinding for ClusterRole "view"\n'


def test_binding_names_get_suffixes(admin: Cli, project: str) -> None:
    # A binding named `view` exists already, for another role.
    admin.ok(
        "create",
        "-n",
        project,
        "-f",
        "-",
        input=manifest(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "view"},
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "someone"}],
            }
        ),
    )
    admin.ok("policy", "add-role-to-user", "view", "dave", "-n", project)
    assert binding(admin, project, "view-0")["roleRef"]["name"] == "view"
    assert binding(admin, project, "view")["roleRef"]["name"] == "edit"
    names = admin.ok("get", "rolebindings", "-n", project, "-o", "name").split()
    assert f"rolebinding.{RBAC}/view-0" in names


def test_roles_of_the_namespace_and_groups(admin: Cli, project: str) -> None:
    admin.ok(
        "create",
        "-n",
        project,
        "-f",
        "-",
        input=manifest(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
            }
        ),
    )
    out = admin.ok(
        "policy", "add-role-to-user", "reader", "erin", "-n", project, "--role-namespace", project
    )
    assert out == f'role.{RBAC}/reader added: "erin"\n'
    assert binding(admin, project, "reader")["roleRef"]["kind"] == "Role"
    err = admin.fails(
        "policy", "add-role-to-user", "reader", "erin", "-n", project, "--role-namespace", "default"
    )
    assert "can't reference role in different namespace" in err

    out = admin.ok("policy", "add-role-to-group", "view", "devs", "-n", project)
    assert out == f'clusterrole.{RBAC}/view added: "devs"\n'
    assert binding(admin, project, "view")["subjects"] == [
        {"apiGroup": RBAC, "kind": "Group", "name": "devs"}
    ]
    admin.ok("policy", "remove-role-from-group", "view", "devs", "-n", project)

    out = admin.ok("policy", "add-role-to-user", "edit", "-z", "builder", "-n", project)
    assert out == f'clusterrole.{RBAC}/edit added: "builder"\n'
    assert binding(admin, project, "edit")["subjects"] == [
        {"kind": "ServiceAccount", "name": "builder", "namespace": project}
    ]
    err = admin.fails("policy", "add-role-to-user", "edit", "-n", project)
    assert "at least one user" in err


def test_cluster_roles(admin: Cli, someone: User) -> None:
    user, bob = someone.cli, someone.name
    assert user.run("auth", "can-i", "list", "namespaces").out == "no\n"
    assert user.fails("get", "namespaces").startswith(
        'error: namespaces is forbidden: User "' + bob
    )
    out = admin.ok("adm", "policy", "add-cluster-role-to-user", "cluster-reader", bob)
    assert out == f'clusterrole.{RBAC}/cluster-reader added: "{bob}"\n'
    assert user.ok("auth", "can-i", "list", "namespaces") == "yes\n"
    assert "openshift-image-registry" in user.ok("get", "namespaces")
    subjects = admin.ok(
        "get", "clusterrolebinding", "cluster-reader", "-o", "jsonpath={.subjects[*].name}"
    )
    assert bob in subjects.split()

    admin.ok("adm", "policy", "remove-cluster-role-from-user", "cluster-reader", bob)
    assert user.run("auth", "can-i", "list", "namespaces").code == 1
    out = admin.ok("adm", "policy", "add-cluster-role-to-group", "cluster-reader", "auditors")
    assert out == f'clusterrole.{RBAC}/cluster-reader added: "auditors"\n'
    admin.ok("adm", "policy", "remove-cluster-role-from-group", "cluster-reader", "auditors")
    # Without rights to bind, a user cannot grant themselves more.
    err = user.fails("adm", "policy", "add-cluster-role-to-user", "cluster-admin", bob)
    assert "forbidden" in err


def test_create_token(admin: Cli, server: WharfProcess, project: str) -> None:
    token = admin.ok("create", "token", "builder", "-n", project, "--duration", "1h").strip()
    answer = requests.get(
        f"{server.api_url}/apis/user.openshift.io/v1/users/~",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(server.ca_file),
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.json()["metadata"]["name"] == f"system:serviceaccount:{project}:builder"
    assert admin.ok("-n", project, "create", "token", "deployer").strip()
    assert "invalid duration" in admin.fails("create", "token", "builder", "--duration", "1y")
    err = admin.fails("create", "token", "builder", "-n", project, "--duration", "1m")
    assert "expirationSeconds" in err
    err = admin.fails("create", "token", "nobody", "-n", project)
    assert err == 'error: serviceaccounts "nobody" not found\n'


def test_auth_can_i(admin: Cli, someone: User, project: str) -> None:
    user = someone.cli
    assert admin.ok("auth", "can-i", "*", "*") == "yes\n"
    assert admin.ok("auth", "can-i", "delete", "projects", project) == "yes\n"
    result = user.run("auth", "can-i", "get", "secrets", "-n", project)
    assert (result.code, result.out, result.err) == (1, "no\n", "")
    assert user.run("auth", "can-i", "get", "secrets", "-n", project, "-q").out == ""
    assert user.ok("auth", "can-i", "create", "projectrequests") == "yes\n"
    assert user.ok("auth", "can-i", "get", "/healthz") == "yes\n"
    unknown = user.run("auth", "can-i", "get", "widgets")
    assert unknown.out == "no\n"
    assert "doesn't have a resource type 'widgets'" in unknown.err


def test_a_role_for_a_user_who_never_logged_in_warns_and_binds(admin: Cli, project: str) -> None:
    """As `oc`: a User object exists once its user first logged in; before that the binding is
    still made (the README grants bob a role before bob exists), with a warning."""
    bob = f"bob-{uuid.uuid4().hex[:6]}"
    result = admin.run("policy", "add-role-to-user", "system:image-builder", bob, "-n", project)
    assert result.code == 0, str(result)
    assert result.out == f'clusterrole.{RBAC}/system:image-builder added: "{bob}"\n'
    assert result.err == f"Warning: User '{bob}' not found\n"
    subjects = binding(admin, project, "system:image-builder")["subjects"]
    assert subjects == [{"apiGroup": RBAC, "kind": "User", "name": bob}]
