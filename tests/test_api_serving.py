"""Serving the API: discovery, /version, health, OpenAPI v3, and `kubectl api-resources`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.cluster import Cluster, Kubectl, assert_status

GROUPS = {
    "rbac.authorization.k8s.io",
    "project.openshift.io",
    "user.openshift.io",
    "oauth.openshift.io",
    "route.openshift.io",
    "authorization.k8s.io",
    "authentication.k8s.io",
}


def _resources(cluster: Cluster, path: str) -> dict[str, dict[str, Any]]:
    response = cluster.admin.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "APIResourceList"
    return {r["name"]: r for r in body["resources"]}


def test_api_lists_the_core_version(cluster: Cluster) -> None:
    body = cluster.admin.get("/api").json()
    assert body["kind"] == "APIVersions"
    assert body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"]


def test_core_resources_with_their_verbs_and_subresources(cluster: Cluster) -> None:
    body = cluster.admin.get("/api/v1").json()
    assert body["groupVersion"] == "v1"
    resources = _resources(cluster, "/api/v1")
    namespaces = resources["namespaces"]
    assert namespaces["namespaced"] is False
    assert namespaces["kind"] == "Namespace"
    assert namespaces["singularName"] == "namespace"
    assert "ns" in namespaces["shortNames"]
    assert set(namespaces["verbs"]) >= {
        "create",
        "delete",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert resources["serviceaccounts"]["namespaced"] is True
    assert resources["secrets"]["namespaced"] is True
    assert resources["serviceaccounts/token"]["verbs"] == ["create"]


def test_api_groups_list_every_group_with_a_preferred_version(cluster: Cluster) -> None:
    body = cluster.admin.get("/apis").json()
    assert body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in body["groups"]}
    assert set(groups) >= GROUPS
    for group in groups.values():
        versions = [v["groupVersion"] for v in group["versions"]]
        assert group["preferredVersion"]["groupVersion"] in versions
        assert all(v.startswith(group["name"] + "/") for v in versions)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_group_and_its_version_are_discoverable(cluster: Cluster, group: str) -> None:
    body = cluster.admin.get(f"/apis/{group}").json()
    assert body["kind"] == "APIGroup"
    assert body["name"] == group
    version = body["preferredVersion"]["version"]
    listing = cluster.admin.get(f"/apis/{group}/{version}").json()
    assert listing["groupVersion"] == f"{group}/{version}"
    assert listing["resources"], listing
    for resource in listing["resources"]:
        assert resource["kind"] and resource["verbs"], resource


def test_kinds_sit_in_their_groups(cluster: Cluster) -> None:
    project = _resources(cluster, "/apis/project.openshift.io/v1")
    assert project["projects"]["namespaced"] is False
    assert project["projectrequests"]["verbs"] == ["create", "list"]
    assert _resources(cluster, "/apis/route.openshift.io/v1")["routes"]["namespaced"] is True
    users = _resources(cluster, "/apis/user.openshift.io/v1")
    assert {"users", "groups", "identities"} <= set(users)
    oauth = _resources(cluster, "/apis/oauth.openshift.io/v1")
    assert {"oauthaccesstokens", "useroauthaccesstokens"} <= set(oauth)
    rbac = _resources(cluster, "/apis/rbac.authorization.k8s.io/v1")
    assert {"roles", "rolebindings", "clusterroles", "clusterrolebindings"} <= set(rbac)
    assert rbac["roles"]["namespaced"] and not rbac["clusterroles"]["namespaced"]
    reviews = _resources(cluster, "/apis/authorization.k8s.io/v1")
    assert reviews["selfsubjectaccessreviews"]["verbs"] == ["create"]


@pytest.mark.parametrize(
    "path",
    [
        "/apis/nothing.example.com",
        "/apis/nothing.example.com/v1",
        "/apis/route.openshift.io/v9",
        "/api/v2",
        "/api/v1/nothings",
        "/apis/route.openshift.io/v1/nothings",
    ],
)
def test_unknown_groups_versions_and_resources_are_404_status(cluster: Cluster, path: str) -> None:
    assert_status(cluster.admin.get(path), 404, "NotFound")


def test_version_is_public(cluster: Cluster) -> None:
    response = cluster.api().get("/version")
    assert response.status_code == 200
    body = response.json()
    assert body["major"] == "1"
    assert body["minor"].isdigit()
    assert body["gitVersion"].startswith("v1.")
    assert body["platform"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health_endpoints_are_public(cluster: Cluster, path: str) -> None:
    response = cluster.api().get(path)
    assert response.status_code == 200
    assert response.text == "ok"


def test_discovery_needs_credentials(cluster: Cluster) -> None:
    for path in ("/api", "/apis", "/api/v1", "/apis/route.openshift.io/v1"):
        assert_status(cluster.api().get(path), 401, "Unauthorized")


def test_openapi_v3_names_a_document_for_each_group_version(cluster: Cluster) -> None:
    root = cluster.admin.get("/openapi/v3").json()
    paths = root["paths"]
    assert "api/v1" in paths
    for group in GROUPS:
        assert f"apis/{group}/v1" in paths
    for path, entry in paths.items():
        url = entry["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        document = cluster.admin.get(url).json()
        assert document["openapi"].startswith("3.")
        schemas = document["components"]["schemas"]
        assert schemas, path
        for name, schema in schemas.items():
            if name.startswith("io.k8s."):
                continue  # Status, ListMeta, DeleteOptions, patches: shared, as Kubernetes has
            gvk = schema["x-kubernetes-group-version-kind"][0]
            assert path.endswith(f"{gvk['group']}/{gvk['version']}") or (
                path == "api/v1" and gvk["group"] == ""
            )


def test_openapi_documents_describe_fields_and_write_parameters(cluster: Cluster) -> None:
    document = cluster.admin.get("/openapi/v3/apis/route.openshift.io/v1").json()
    route = document["components"]["schemas"]["route.openshift.io.v1.Route"]
    assert "host" in route["properties"]["spec"]["properties"]
    post = document["paths"]["/apis/route.openshift.io/v1/namespaces/{namespace}/routes"]["post"]
    assert "fieldValidation" in {p["name"] for p in post["parameters"]}


def test_openapi_lists_only_what_is_served(cluster: Cluster) -> None:
    document = cluster.admin.get("/openapi/v3/api/v1").json()
    paths = document["paths"]
    # No deletecollection of namespaces; ServiceAccount tokens are only created.
    assert set(paths["/api/v1/namespaces"]) == {"get", "post"}
    assert set(paths["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]) == {"post"}
    secret = paths["/api/v1/namespaces/{namespace}/secrets/{name}"]
    assert {p["name"] for p in secret["get"]["parameters"] if p["in"] == "path"} == {
        "namespace",
        "name",
    }
    assert "201" in secret["patch"]["responses"] and "415" in secret["patch"]["responses"]
    assert set(secret["patch"]["requestBody"]["content"]) == {
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    }
    listed = paths["/api/v1/namespaces/{namespace}/secrets"]["get"]["responses"]["200"]
    schema = listed["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("core.v1.SecretList")
    error = secret["get"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("meta.v1.Status")
    meta = document["components"]["schemas"]["core.v1.Secret"]["properties"]["metadata"]
    assert meta["properties"]["creationTimestamp"]["nullable"] is True


def test_openapi_v2_describes_the_whole_api(cluster: Cluster) -> None:
    response = cluster.admin.get("/openapi/v2", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["swagger"] == "2.0"
    assert "/apis/route.openshift.io/v1/namespaces/{namespace}/routes" in document["paths"]
    assert "/api/v1/namespaces/{namespace}/secrets/{name}" in document["paths"]
    assert "route.openshift.io.v1.Route" in document["definitions"]
    # kubectl asks for protobuf only: not served, so it reads OpenAPI v3 instead.
    protobuf = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    assert_status(
        cluster.admin.get("/openapi/v2", headers={"Accept": protobuf}), 406, "NotAcceptable"
    )


def test_openapi_of_an_unknown_group_is_404(cluster: Cluster) -> None:
    assert_status(cluster.admin.get("/openapi/v3/apis/nothing.example.com/v1"), 404, "NotFound")


def test_kubectl_api_resources_lists_our_kinds(cluster: Cluster) -> None:
    kubectl = cluster.kubectl()
    lines = kubectl.run("api-resources", "-o", "name").stdout.split()
    for name in (
        "namespaces",
        "serviceaccounts",
        "secrets",
        "projects.project.openshift.io",
        "routes.route.openshift.io",
        "users.user.openshift.io",
        "clusterroles.rbac.authorization.k8s.io",
    ):
        assert name in lines, lines
    wide = kubectl.run("api-resources", "--api-group=project.openshift.io").stdout
    assert "ProjectRequest" in wide and "Project" in wide
    namespaced = kubectl.run("api-resources", "--namespaced=true", "-o", "name").stdout.split()
    assert "routes.route.openshift.io" in namespaced
    assert "namespaces" not in namespaced


def test_kubectl_explain_reads_openapi(cluster: Cluster) -> None:
    Kubectl.require(27, "kubectl explain over OpenAPI v3")
    result = cluster.kubectl().run("explain", "routes.spec.to")
    assert "name" in result.stdout, result.stdout
