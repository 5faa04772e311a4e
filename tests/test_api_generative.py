"""Schemathesis over the OpenAPI documents the API serves, unpatched, as three callers (cluster
admin with every DELETE, a project's admin, nobody), each against a Wharf of its own.

The cluster admin, allowed everything, runs the coverage phase (every parameter's boundary and
invalid values, about 40,000 requests: what the input checks answer does not depend on who
asks) and fuzzing, in two tests of half the documents each; the project admin and nobody run
fuzzing, with twice the examples, for what does depend on who asks (nothing of anybody else's
changes; nobody gets anything but 401). With two database lanes side by side, each takes
every other document (tests/support/lanes.py).

Checks: no 5xx, no dropped connection, every error a `Status` (tests/support/
schemathesis_hooks.py), status codes, content types and bodies as the document says. After the
admin's run, everything bootstrap made still exists, unless a request named it exactly.

Run longer by hand: WHARF_SCHEMATHESIS_EXAMPLES=100 WHARF_SCHEMATHESIS_SEED=1234 pytest
tests/test_api_generative.py (the seed of a failing run is printed with its failures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.support.cluster import RBAC, Api, Cluster, oauth_token_name
from tests.support.lanes import generated_share
from tests.support.server import running_wharf

pytestmark = pytest.mark.generative

EXAMPLES = os.environ.get("WHARF_SCHEMATHESIS_EXAMPLES", "4")
SEED = os.environ.get("WHARF_SCHEMATHESIS_SEED", "")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,errors_are_status"
)
ST = Path(sys.executable).with_name("st")
REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A throwaway Wharf: a run may delete anything it is allowed to."""
    with running_wharf(tmp_path / "data") as process:
        yield Cluster(process, tmp_path)


def documents(admin: Api) -> list[str]:
    return sorted(admin.get("/openapi/v3").json()["paths"])


def cluster_wide_deletecollections(admin: Api, document: str) -> list[str]:
    """The operationIds of deleting a whole cluster-scoped collection: legitimate for a cluster
    admin, and the end of the run's cluster (every ClusterRoleBinding, every User at once)."""
    found = []
    for path, operations in admin.get(f"/openapi/v3/{document}").json()["paths"].items():
        delete = operations.get("delete", {})
        if "{namespace}" not in path and delete.get("x-kubernetes-action") == "deletecollection":
            found.append(delete["operationId"])
    return found


def run_schemathesis(
    cluster: Cluster,
    token: str | None,
    workdir: Path,
    *,
    namespace: str = "",
    lifelines: list[str] | None = None,
    spare_collections: bool = False,
    coverage: bool = False,
    share: slice = slice(None),
) -> Path:
    """The served documents (`share` of this lane's share of them), one schemathesis run each;
    returns the log of requests sent."""
    admin = cluster.admin
    requests_log = workdir / "requests.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY),
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
        "WHARF_SCHEMATHESIS_NAMESPACE": namespace,
        "WHARF_SCHEMATHESIS_LIFELINES": json.dumps(lifelines or []),
        "WHARF_SCHEMATHESIS_REQUESTS": str(requests_log),
    }
    failures = []
    for document in documents(admin)[generated_share()][share]:
        argv = [
            str(ST), "run", f"{cluster.url}/openapi/v3/{document}",
            "--tls-verify", str(cluster.wharf.ca_file),
            "--checks", CHECKS,
            # No examples phase: the documents carry no examples.
            "--phases", "coverage,fuzzing" if coverage else "fuzzing",
            "--max-examples", str(int(EXAMPLES) * (1 if coverage else 2)),
            "--workers", "1",
            "--request-timeout", "20",
        ]  # fmt: skip
        if SEED:
            argv += ["--seed", SEED]
        if token:
            argv += ["--header", f"Authorization: Bearer {token}"]
        if spare_collections:
            for operation in cluster_wide_deletecollections(admin, document):
                argv += ["--exclude-operation-id", operation]
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=900, check=False
        )
        if result.returncode != 0:
            report = result.stdout[result.stdout.find("= FAILURES =") - 40 :]
            failures.append(f"--- {document} (exit {result.returncode})\n{report[-6000:]}")
    assert not failures, "\n".join(failures)
    assert requests_log.exists(), "schemathesis sent no request"
    return requests_log


def own_lifelines(name: str, token: str) -> list[str]:
    """The paths of a user's own User, Identity and tokens."""
    return [
        f"/apis/user.openshift.io/v1/users/{name}",
        f"/apis/user.openshift.io/v1/identities/htpasswd:{name}",
        f"/apis/oauth.openshift.io/v1/oauthaccesstokens/{oauth_token_name(token)}",
        f"/apis/oauth.openshift.io/v1/useroauthaccesstokens/{oauth_token_name(token)}",
    ]


# What bootstrap makes: these survive any run that did not delete them by name.
BOOTSTRAP = [
    "/api/v1/namespaces",
    f"/apis/{RBAC}/v1/clusterroles",
    f"/apis/{RBAC}/v1/clusterrolebindings",
    "/apis/route.openshift.io/v1/namespaces/openshift-image-registry/routes",
    f"/apis/{RBAC}/v1/namespaces/openshift/rolebindings",
    "/api/v1/namespaces/openshift-image-registry/serviceaccounts",
]


def item_paths(admin: Api, collection: str) -> set[str]:
    response = admin.get(collection)
    assert response.status_code == 200, response.text
    return {f"{collection}/{item['metadata']['name']}" for item in response.json()["items"]}


def deleted_by_name(requests_log: Path) -> set[str]:
    deleted = set()
    for line in requests_log.read_text().splitlines():
        request: dict[str, Any] = json.loads(line)
        if request["method"] == "DELETE" and 200 <= request["status"] < 300:
            deleted.add(unquote(request["path"]))
    return deleted


def excused(path: str, deleted: set[str]) -> bool:
    """Deleted by its exact path, or with its namespace (a project is its namespace too)."""
    parts = path.split("/namespaces/", 1)
    if len(parts) == 2:
        namespace = parts[1].split("/", 1)[0]
        if {
            f"/api/v1/namespaces/{namespace}",
            f"/apis/project.openshift.io/v1/projects/{namespace}",
        } & deleted:
            return True
    return path in deleted or quote(path, safe="/:~") in deleted


# The coverage phase of every document is five minutes of CPU: two tests of half the documents
# each, so that neither nears the timeout of a test and the lanes can share them out.
@pytest.mark.parametrize("share", [slice(0, None, 2), slice(1, None, 2)], ids=["even", "odd"])
def test_as_cluster_admin_with_every_delete(cluster: Cluster, tmp_path: Path, share: slice) -> None:
    admin = cluster.admin
    before = {path for collection in BOOTSTRAP for path in item_paths(admin, collection)}
    project = cluster.new_project(admin, "generated")
    lifelines = [
        *own_lifelines("kubeadmin", cluster.admin_token),
        f"/apis/{RBAC}/v1/clusterrolebindings/cluster-admins",
        f"/apis/{RBAC}/v1/clusterroles/cluster-admin",
    ]
    requests_log = run_schemathesis(
        cluster, cluster.admin_token, tmp_path, namespace=project, lifelines=lifelines,
        spare_collections=True, coverage=True, share=share,
    )  # fmt: skip
    deleted = deleted_by_name(requests_log)
    after = {path for collection in BOOTSTRAP for path in item_paths(admin, collection)}
    lost = sorted(path for path in before - after if not excused(path, deleted))
    assert not lost, f"removed without being named: {lost}"


def test_as_a_project_admin(cluster: Cluster, tmp_path: Path) -> None:
    user = cluster.user("gen")
    project = cluster.new_project(user.api, f"{user.name}-work")
    lifelines = [
        *own_lifelines(user.name, user.token),
        f"/apis/{RBAC}/v1/namespaces/{project}/rolebindings/admin",
        f"/api/v1/namespaces/{project}",
        f"/apis/project.openshift.io/v1/projects/{project}",
    ]
    run_schemathesis(cluster, user.token, tmp_path, namespace=project, lifelines=lifelines)
    # Nothing of anybody else's changed: the admin's view of the cluster is whole.
    assert cluster.admin.get(f"/apis/{RBAC}/v1/clusterrolebindings/cluster-admins").ok


def test_anonymously(cluster: Cluster, tmp_path: Path) -> None:
    requests_log = run_schemathesis(cluster, None, tmp_path)
    answered = {json.loads(line)["status"] for line in requests_log.read_text().splitlines()}
    assert answered == {401}, answered
