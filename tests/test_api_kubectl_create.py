"""`kubectl create <kind>` against Wharf: kubectl's typed clients send these bodies as
protobuf (application/vnd.kubernetes.protobuf), never JSON, and do not fall back to JSON on any
answer, so each one checks that Wharf reads what kubectl 1.32 sends and stores what was meant."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import RBAC, Cluster, Kubectl, User, assert_status, unique

# Every byte value, and bytes that are not UTF-8: kubectl must not mangle them on the way.
BINARY = bytes(range(256)) + b"\xff\xfe\x00tail"


@pytest.fixture(scope="module")
def alice(cluster: Cluster) -> User:
    return cluster.user("alice")


@pytest.fixture(scope="module")
def project(cluster: Cluster, alice: User) -> str:
    return cluster.new_project(alice.api, unique("create"))


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster, alice: User) -> Kubectl:
    return cluster.kubectl(kubeconfig=alice.kubeconfig)


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> Kubectl:
    return cluster.kubectl()


def stored(cluster: Cluster, path: str) -> dict[str, Any]:
    """The object as the API returns it in JSON, read by the cluster admin."""
    response = cluster.admin.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def decoded(data: dict[str, str]) -> dict[str, bytes]:
    return {key: base64.b64decode(value, validate=True) for key, value in data.items()}


def test_create_secret_generic_from_literals_and_files(
    cluster: Cluster, kubectl: Kubectl, project: str, tmp_path: Path
) -> None:
    (tmp_path / "blob.bin").write_bytes(BINARY)
    (tmp_path / "note.txt").write_text("héllo\nworld\n")
    name = unique("generic")
    out = kubectl.run(
        "create",
        "secret",
        "generic",
        name,
        "-n",
        project,
        "--from-literal=user=admin",
        "--from-literal=empty=",
        "--from-literal=spaced=a b=c",
        f"--from-file={tmp_path / 'blob.bin'}",
        f"--from-file=renamed.txt={tmp_path / 'note.txt'}",
    ).stdout.strip()
    assert out == f"secret/{name} created"
    secret = stored(cluster, f"/api/v1/namespaces/{project}/secrets/{name}")
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["namespace"] == project
    assert decoded(secret["data"]) == {
        "user": b"admin",
        "empty": b"",
        "spaced": b"a b=c",
        "blob.bin": BINARY,
        "renamed.txt": "héllo\nworld\n".encode(),
    }
    # kubectl reads back the same bytes.
    shown = kubectl.run(
        "get", "secret", name, "-n", project, "-o", "jsonpath={.data.blob\\.bin}"
    ).stdout
    assert base64.b64decode(shown) == BINARY


def test_create_secret_with_a_type_and_saved_config(
    cluster: Cluster, kubectl: Kubectl, project: str
) -> None:
    """--save-config puts an annotation in the metadata: a protobuf map of its own."""
    name = unique("typed")
    kubectl.run(
        "create",
        "secret",
        "generic",
        name,
        "-n",
        project,
        "--type=example.com/custom",
        "--from-literal=k=v",
        "--save-config",
    )
    secret = stored(cluster, f"/api/v1/namespaces/{project}/secrets/{name}")
    assert secret["type"] == "example.com/custom"
    saved = json.loads(
        secret["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    )
    assert saved["kind"] == "Secret" and saved["data"] == {"k": "dg=="}


def test_create_secret_docker_registry(cluster: Cluster, kubectl: Kubectl, project: str) -> None:
    name = unique("pull")
    kubectl.run(
        "create",
        "secret",
        "docker-registry",
        name,
        "-n",
        project,
        "--docker-server=registry.example.com:5000",
        "--docker-username=robot",
        "--docker-password=s3cr=t",
        "--docker-email=robot@example.com",
    )
    secret = stored(cluster, f"/api/v1/namespaces/{project}/secrets/{name}")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(decoded(secret["data"])[".dockerconfigjson"])
    entry = config["auths"]["registry.example.com:5000"]
    assert entry["username"] == "robot" and entry["password"] == "s3cr=t"
    assert base64.b64decode(entry["auth"]) == b"robot:s3cr=t"


def test_create_secret_tls(cluster: Cluster, kubectl: Kubectl, project: str) -> None:
    # Wharf's own serving certificate and key: a pair kubectl accepts.
    tls = cluster.wharf.data_dir / "tls"
    name = unique("tls")
    kubectl.run(
        "create",
        "secret",
        "tls",
        name,
        "-n",
        project,
        f"--cert={tls / 'tls.crt'}",
        f"--key={tls / 'tls.key'}",
    )
    secret = stored(cluster, f"/api/v1/namespaces/{project}/secrets/{name}")
    assert secret["type"] == "kubernetes.io/tls"
    assert decoded(secret["data"]) == {
        "tls.crt": (tls / "tls.crt").read_bytes(),
        "tls.key": (tls / "tls.key").read_bytes(),
    }


def test_create_configmap_from_literals_and_files(
    cluster: Cluster, kubectl: Kubectl, project: str, tmp_path: Path
) -> None:
    (tmp_path / "blob.bin").write_bytes(BINARY)
    (tmp_path / "app.conf").write_text("port = 8080\nname = 'wharf'\n")
    name = unique("config")
    out = kubectl.run(
        "create",
        "configmap",
        name,
        "-n",
        project,
        "--from-literal=mode=fast",
        f"--from-file={tmp_path / 'app.conf'}",
        f"--from-file={tmp_path / 'blob.bin'}",
    ).stdout.strip()
    assert out == f"configmap/{name} created"
    config = stored(cluster, f"/api/v1/namespaces/{project}/configmaps/{name}")
    assert config["kind"] == "ConfigMap" and config["apiVersion"] == "v1"
    # Text goes to data as it is; bytes that are not UTF-8 to binaryData, base64 in JSON.
    assert config["data"] == {"mode": "fast", "app.conf": "port = 8080\nname = 'wharf'\n"}
    assert decoded(config["binaryData"]) == {"blob.bin": BINARY}
    table = kubectl.run("get", "configmaps", name, "-n", project).stdout.splitlines()
    assert table[0].split()[:2] == ["NAME", "DATA"]
    assert table[1].split()[:2] == [name, "3"]
    assert kubectl.run("get", "cm", name, "-n", project, "-o", "name").stdout.strip() == (
        f"configmap/{name}"
    )


def test_configmap_keys_and_immutability(
    cluster: Cluster, kubectl: Kubectl, alice: User, project: str
) -> None:
    path = f"/api/v1/namespaces/{project}/configmaps"

    def body(name: str, **fields: Any) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}

    for fields, where in (
        ({"data": {"a/b": "x"}}, "data[a/b]"),
        ({"data": {"..hidden": "x"}}, "data[..hidden]"),
        ({"data": {"k": "x"}, "binaryData": {"k": "eA=="}}, "binaryData[k]"),
        ({"binaryData": {"k": "not base64!"}}, "binaryData[k]"),
    ):
        answer = alice.api.post(path, json=body(unique("bad"), **fields))
        assert_status(answer, 422, "Invalid", where)
    name = unique("frozen")
    answer = alice.api.post(path, json=body(name, data={"a": "b"}, immutable=True))
    assert answer.status_code == 201, answer.text
    changed = kubectl.run(
        "patch",
        "cm",
        name,
        "-n",
        project,
        "--type=merge",
        "-p",
        '{"data": {"a": "c"}}',
        check=False,
    )
    assert changed.returncode != 0 and "field is immutable" in changed.stderr
    thawed = kubectl.run(
        "patch",
        "cm",
        name,
        "-n",
        project,
        "--type=merge",
        "-p",
        '{"immutable": false}',
        check=False,
    )
    assert thawed.returncode != 0 and "field is immutable" in thawed.stderr
    kubectl.run("label", "cm", name, "-n", project, "still=editable")
    config = stored(cluster, f"{path}/{name}")
    assert config["data"] == {"a": "b"} and config["immutable"] is True
    assert config["metadata"]["labels"] == {"still": "editable"}


def test_create_serviceaccount_then_a_token_for_it(
    cluster: Cluster, kubectl: Kubectl, project: str
) -> None:
    Kubectl.require(28, "kubectl create token and auth whoami against authentication.k8s.io/v1")
    name = unique("robot")
    out = kubectl.run("create", "serviceaccount", name, "-n", project).stdout.strip()
    assert out == f"serviceaccount/{name} created"
    account = stored(cluster, f"/api/v1/namespaces/{project}/serviceaccounts/{name}")
    assert account["metadata"]["uid"]
    token = kubectl.run(
        "create", "token", name, "-n", project, "--duration=20m", "--audience=wharf"
    ).stdout.strip()
    who = cluster.kubectl(token).json("auth", "whoami")
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{project}:{name}"


def test_create_namespace(cluster: Cluster, admin: Kubectl) -> None:
    name = unique("ns")
    assert admin.run("create", "namespace", name).stdout.strip() == f"namespace/{name} created"
    namespace = stored(cluster, f"/api/v1/namespaces/{name}")
    assert namespace["status"]["phase"] == "Active"
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    assert admin.run("delete", "namespace", name).stdout.strip() == f'namespace "{name}" deleted'
    assert_status(cluster.admin.get(f"/api/v1/namespaces/{name}"), 404, "NotFound")


def test_create_role_and_rolebinding_grant_access(
    cluster: Cluster, kubectl: Kubectl, project: str
) -> None:
    bob = cluster.user("bob")
    role = unique("reader")
    kubectl.run(
        "create",
        "role",
        role,
        "-n",
        project,
        "--verb=get",
        "--verb=list",
        "--resource=secrets,serviceaccounts",
        "--resource-name=only-this",
    )
    stored_role = stored(cluster, f"/apis/{RBAC}/v1/namespaces/{project}/roles/{role}")
    assert stored_role["rules"] == [
        {
            "verbs": ["get", "list"],
            "apiGroups": [""],
            "resources": ["secrets", "serviceaccounts"],
            "resourceNames": ["only-this"],
        }
    ]
    binding = unique("rb")
    kubectl.run(
        "create",
        "rolebinding",
        binding,
        "-n",
        project,
        f"--role={role}",
        f"--user={bob.name}",
        "--group=readers",
        f"--serviceaccount={project}:builder",
    )
    stored_binding = stored(cluster, f"/apis/{RBAC}/v1/namespaces/{project}/rolebindings/{binding}")
    assert stored_binding["roleRef"] == {"apiGroup": RBAC, "kind": "Role", "name": role}
    assert stored_binding["subjects"] == [
        {"kind": "User", "apiGroup": RBAC, "name": bob.name},
        {"kind": "Group", "apiGroup": RBAC, "name": "readers"},
        {"kind": "ServiceAccount", "name": "builder", "namespace": project},
    ]
    # The binding decoded from protobuf is the one the authorizer reads.
    as_bob = cluster.kubectl(kubeconfig=bob.kubeconfig)
    can = as_bob.run("auth", "can-i", "get", "secrets/only-this", "-n", project).stdout
    assert can.strip() == "yes"
    cannot = as_bob.run("auth", "can-i", "delete", "secrets/only-this", "-n", project, check=False)
    assert cannot.stdout.strip() == "no"


def test_create_clusterrole_and_clusterrolebinding(cluster: Cluster, admin: Kubectl) -> None:
    role = unique("metrics")
    admin.run(
        "create",
        "clusterrole",
        role,
        "--verb=get",
        "--non-resource-url=/metrics",
        "--non-resource-url=/healthz/*",
    )
    stored_role = stored(cluster, f"/apis/{RBAC}/v1/clusterroles/{role}")
    assert stored_role["rules"] == [
        {"verbs": ["get"], "nonResourceURLs": ["/metrics", "/healthz/*"]}
    ]
    binding = unique("crb")
    carol = cluster.user("carol")
    admin.run(
        "create", "clusterrolebinding", binding, f"--clusterrole={role}", f"--user={carol.name}"
    )
    stored_binding = stored(cluster, f"/apis/{RBAC}/v1/clusterrolebindings/{binding}")
    assert stored_binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}
    assert stored_binding["subjects"] == [{"kind": "User", "apiGroup": RBAC, "name": carol.name}]
    as_carol = cluster.kubectl(kubeconfig=carol.kubeconfig)
    assert as_carol.run("auth", "can-i", "get", "/metrics").stdout.strip() == "yes"
    for kind, name in (("clusterrolebinding", binding), ("clusterrole", role)):
        out = admin.run("delete", kind, name).stdout.strip()
        assert out == f'{kind}.rbac.authorization.k8s.io "{name}" deleted'


def test_label_annotate_and_delete_what_was_created(
    cluster: Cluster, kubectl: Kubectl, project: str
) -> None:
    name = unique("edited")
    kubectl.run("create", "secret", "generic", name, "-n", project, "--from-literal=a=b")
    kubectl.run("create", "configmap", name, "-n", project, "--from-literal=a=b")
    kubectl.run("create", "serviceaccount", name, "-n", project)
    paths = {
        "secret": f"/api/v1/namespaces/{project}/secrets/{name}",
        "configmap": f"/api/v1/namespaces/{project}/configmaps/{name}",
        "serviceaccount": f"/api/v1/namespaces/{project}/serviceaccounts/{name}",
    }
    for kind, path in paths.items():
        kubectl.run("label", kind, name, "-n", project, "tier=back")
        kubectl.run("annotate", kind, name, "-n", project, "note=hi")
        meta = stored(cluster, path)["metadata"]
        assert meta["labels"] == {"tier": "back"}, kind
        assert meta["annotations"] == {"note": "hi"}, kind
        out = kubectl.run("delete", kind, name, "-n", project).stdout.strip()
        assert out == f'{kind} "{name}" deleted'
        assert_status(cluster.admin.get(path), 404, "NotFound")


def test_server_side_dry_run_bodies_decode(
    cluster: Cluster, kubectl: Kubectl, project: str
) -> None:
    """`--dry-run=server` sends the same protobuf bodies with ?dryRun=All."""
    name = unique("dry")
    for args in (
        ("secret", "generic", name, "--from-literal=a=b"),
        ("configmap", name, "--from-literal=a=b"),
        ("serviceaccount", name),
        ("rolebinding", name, "--clusterrole=view", "--user=nobody"),
    ):
        result = kubectl.json("create", *args, "-n", project, "--dry-run=server")
        assert result["metadata"]["name"] == name, result
        assert result["metadata"]["namespace"] == project
    assert result["subjects"] == [{"kind": "User", "apiGroup": RBAC, "name": "nobody"}]
    # A dry run stores nothing.
    for path in (
        f"/api/v1/namespaces/{project}/secrets/{name}",
        f"/api/v1/namespaces/{project}/configmaps/{name}",
        f"/api/v1/namespaces/{project}/serviceaccounts/{name}",
        f"/apis/{RBAC}/v1/namespaces/{project}/rolebindings/{name}",
    ):
        assert_status(cluster.admin.get(path), 404, "NotFound")
