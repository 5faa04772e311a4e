"""Bad input gets the Kubernetes Status it deserves, never a 500: malformed bodies, wrong
types, names outside DNS-1123, unknown fields, stale versions, bad parameters."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.support.cluster import RBAC, Api, Cluster, assert_status, unique

ROUTES = "/apis/route.openshift.io/v1"
RBAC_API = f"/apis/{RBAC}/v1"
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> str:
    return cluster.new_project(cluster.admin, unique("bad"))


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> Api:
    return cluster.admin


@pytest.fixture(scope="module")
def existing(admin: Api, ns: str) -> str:
    """A route to update and patch."""
    path = f"{ROUTES}/namespaces/{ns}/routes/existing"
    response = admin.post(
        f"{ROUTES}/namespaces/{ns}/routes",
        json={
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": {"name": "existing"},
            "spec": {"to": {"kind": "Service", "name": "w"}},
        },
    )
    assert response.status_code == 201, response.text
    return path


def refused(response: requests.Response, *codes: int) -> dict[str, Any]:
    """A Status with one of `codes` (400 when none are given)."""
    codes = codes or (400,)
    assert response.status_code in codes, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status" and body["status"] == "Failure", body
    assert body["code"] == response.status_code
    assert body["reason"] not in ("InternalError", ""), body
    return body


# Malformed bodies


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        (b"{not json", JSON),
        (b'{"metadata": {"name": "x"}', JSON),
        (b"", JSON),
        (b"[]", JSON),
        (b'"a string"', JSON),
        (b"null", JSON),
        (b"\xff\xfe\x00garbage", JSON),
        (b"metadata: [unclosed", YAML),
        (b"- a\n- list\n", YAML),
        (b"just a scalar", YAML),
        (b"key: value\n\tbad: tab", YAML),
        (b"[" * 100_000 + b"]" * 100_000, JSON),
        (b"a: &a [*a, *a]\n", YAML),
        (b"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nmetadata: {name: laughs}\n", YAML),
    ],
)
def test_malformed_bodies_are_400(
    admin: Api, ns: str, data: bytes, headers: dict[str, str]
) -> None:
    refused(admin.post(f"{ROUTES}/namespaces/{ns}/routes", data=data, headers=headers))


def test_malformed_bodies_on_update_patch_and_delete(admin: Api, existing: str) -> None:
    refused(admin.put(existing, data=b"{nope", headers=JSON))
    refused(admin.patch(existing, data=b"{nope", headers=MERGE))
    refused(admin.patch(existing, data=b"{nope", headers=JSON_PATCH))
    refused(admin.patch(existing, data=b"[1, 2]", headers=MERGE))
    refused(admin.patch(existing, data=b'{"metadata": "x"}', headers=MERGE))
    refused(admin.patch(existing, data=b'{"spec": {"to": 5}}', headers=MERGE))
    refused(admin.patch(existing, data=b'{"metadata": {"labels": ["x"]}}', headers=MERGE))
    refused(admin.patch(existing, data=b'{"op": "add"}', headers=JSON_PATCH), 400, 422)
    # A JSON string is not a patch (jsonpatch would parse the string itself as JSON).
    refused(admin.patch(existing, data=b'"\\u008f\\b?"', headers=JSON_PATCH), 400, 422)
    refused(admin.patch(existing, data=b'"[]"', headers=JSON_PATCH), 400, 422)
    refused(
        admin.patch(existing, data=b'[{"op": "bogus", "path": "/x"}]', headers=JSON_PATCH), 400, 422
    )
    refused(
        admin.patch(
            existing,
            data=b'[{"op": "replace", "path": "/no/such", "value": 1}]',
            headers=JSON_PATCH,
        ),
        400,
        422,
    )
    refused(
        admin.patch(
            existing, data=b'[{"op": "replace", "path": "", "value": [1]}]', headers=JSON_PATCH
        ),
        400,
        422,
    )
    refused(admin.delete(existing, data=b"{nope", headers=JSON))
    assert admin.get(existing).status_code == 200


def test_a_yaml_body_is_accepted(admin: Api, ns: str) -> None:
    name = unique("yaml")
    body = (
        "apiVersion: route.openshift.io/v1\nkind: Route\n"
        f"metadata:\n  name: {name}\nspec:\n  to:\n    kind: Service\n    name: web\n"
    )
    response = admin.post(f"{ROUTES}/namespaces/{ns}/routes", data=body, headers=YAML)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["name"] == name


def test_a_body_over_3_mib_is_413(admin: Api, ns: str) -> None:
    body = b'{"metadata": {"name": "big", "annotations": {"a": "' + b"x" * (4 << 20) + b'"}}}'
    assert_status(
        admin.post(f"/api/v1/namespaces/{ns}/secrets", data=body, headers=JSON),
        413,
        "RequestEntityTooLarge",
    )


# Fields of the wrong type


@pytest.mark.parametrize(
    "metadata",
    [
        "a string",
        ["a", "list"],
        {"name": 5},
        {"name": ["x"]},
        {"name": None},
        {"name": "ok", "labels": ["a"]},
        {"name": "ok", "labels": {"a": 1}},
        {"name": "ok", "annotations": "x"},
        {"generateName": 5},
        # Times are RFC 3339 date-times, as Go's decoder of metav1.Time requires.
        {"name": "ok", "deletionTimestamp": "2024-01-01T12:99:00Z"},
        {"name": "ok", "creationTimestamp": "yesterday"},
        {"name": "ok", "creationTimestamp": "2024-02-30T00:00:00Z"},
        {"name": "ok", "deletionTimestamp": "2024-01-01 12:00:00"},
    ],
)
def test_metadata_of_the_wrong_shape(admin: Api, ns: str, metadata: Any) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
    refused(admin.post(f"/api/v1/namespaces/{ns}/secrets", json=body), 400, 422)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{ROUTES}/namespaces/NS/routes", {"metadata": {"name": "r"}, "spec": "x"}),
        (f"{ROUTES}/namespaces/NS/routes", {"metadata": {"name": "r"}, "spec": {"to": "x"}}),
        (f"{ROUTES}/namespaces/NS/routes", {"metadata": {"name": "r"}, "spec": ["x"]}),
        ("/api/v1/namespaces/NS/secrets", {"metadata": {"name": "s"}, "data": ["x"]}),
        ("/api/v1/namespaces/NS/secrets", {"metadata": {"name": "s"}, "data": {"k": 5}}),
        ("/api/v1/namespaces/NS/secrets", {"metadata": {"name": "s"}, "stringData": "x"}),
        ("/api/v1/namespaces", {"metadata": {"name": unique("n")}, "spec": "x"}),
        (f"{RBAC_API}/namespaces/NS/roles", {"metadata": {"name": "r"}, "rules": "x"}),
        (f"{RBAC_API}/namespaces/NS/roles", {"metadata": {"name": "r"}, "rules": [5]}),
        (f"{RBAC_API}/namespaces/NS/rolebindings", {"metadata": {"name": "b"}, "roleRef": "x"}),
        (
            f"{RBAC_API}/namespaces/NS/rolebindings",
            {
                "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": ["alice"],
            },
        ),
        (
            f"{RBAC_API}/namespaces/NS/rolebindings",
            {
                "metadata": {"name": "b"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": "alice",
            },
        ),
        ("/apis/user.openshift.io/v1/groups", {"metadata": {"name": "g"}, "users": "alice"}),
        ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": ["x"]}),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"spec": {"resourceAttributes": "x"}},
        ),
        (
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"spec": {"user": "a", "groups": 5, "resourceAttributes": {"verb": "get"}}},
        ),
        ("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": "x"}),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {"metadata": {"deletionTimestamp": "2024-01-01T12:99:00Z"}, "spec": {}},
        ),
        ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": 5}}),
        ("/apis/authentication.k8s.io/v1/tokenreviews", {"spec": "x"}),
        ("/api/v1/namespaces/NS/serviceaccounts/default/token", {"spec": ["x"]}),
        (
            "/api/v1/namespaces/NS/serviceaccounts/default/token",
            {"spec": {"expirationSeconds": "long"}},
        ),
        ("/apis/project.openshift.io/v1/projectrequests", {"metadata": {"name": 5}}),
        (
            "/apis/project.openshift.io/v1/projectrequests",
            {"metadata": {"name": unique("p"), "labels": "x"}},
        ),
    ],
)
def test_fields_of_the_wrong_type_are_refused_not_500(
    admin: Api, ns: str, path: str, body: dict[str, Any]
) -> None:
    response = admin.post(path.replace("NS", ns), json=body)
    refused(response, 400, 422)


# Names


@pytest.mark.parametrize(
    "name",
    ["UPPER", "under_score", "-leading", "trailing-", "sp ace", "a" * 254, "dots..double", "é"],
)
def test_names_outside_dns_1123_subdomain_are_422(admin: Api, ns: str, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    status = assert_status(
        admin.post(f"/api/v1/namespaces/{ns}/secrets", json=body), 422, "Invalid"
    )
    assert status["details"]["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize("name", ["a\x00b", "line\nbreak", "bell\x07", "\x9b", "u" * 254])
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/apis/user.openshift.io/v1/users", "User"),
        ("/apis/user.openshift.io/v1/groups", "Group"),
        (f"{RBAC_API}/clusterroles", "ClusterRole"),
    ],
)
def test_path_segment_names_refuse_control_characters_and_length(
    admin: Api, path: str, kind: str, name: str
) -> None:
    """Users, groups and roles may be named with nearly anything, as in Kubernetes, but not with
    what no database stores the same (NUL, over 253 characters) nor with what would forge lines
    in logs and tables."""
    api_version = path.removeprefix("/apis/").rsplit("/", 1)[0]
    for metadata in ({"name": name}, {"generateName": name}):
        body = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
        status = assert_status(admin.post(path, json=body), 422, "Invalid")
        assert status["details"]["causes"][0]["field"] == "metadata.name", status
    assert admin.get(path).status_code == 200


@pytest.mark.parametrize("name", ["has.dot", "a" * 64, "UPPER", "x_y"])
def test_namespace_and_project_names_are_dns_1123_labels(admin: Api, name: str) -> None:
    assert_status(
        admin.post("/api/v1/namespaces", json={"metadata": {"name": name}}), 422, "Invalid"
    )
    response = admin.post(
        "/apis/project.openshift.io/v1/projectrequests", json={"metadata": {"name": name}}
    )
    assert_status(response, 422, "Invalid")


def test_a_missing_name_is_422(admin: Api, ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {}}
    status = assert_status(
        admin.post(f"/api/v1/namespaces/{ns}/secrets", json=body), 422, "Invalid"
    )
    assert "name" in status["message"]


def test_a_dotted_subdomain_name_is_fine(admin: Api, ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a.b-c.d"}}
    assert admin.post(f"/api/v1/namespaces/{ns}/secrets", json=body).status_code == 201


def test_creating_in_a_missing_namespace_is_404(admin: Api) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orphan"}}
    missing = unique("missing")
    assert_status(
        admin.post(f"/api/v1/namespaces/{missing}/secrets", json=body), 404, "NotFound", missing
    )
    assert admin.get(f"/api/v1/namespaces/{missing}/secrets").json()["items"] == []


# Unknown fields and stale versions


def test_unknown_fields_under_strict_validation(admin: Api, ns: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "colour": "red"},
        "wrong": 1,
    }
    status = assert_status(
        admin.post(
            f"/api/v1/namespaces/{ns}/secrets", params={"fieldValidation": "Strict"}, json=body
        ),
        400,
        "BadRequest",
        "strict decoding error",
    )
    assert 'unknown field "metadata.colour"' in status["message"]
    assert 'unknown field "wrong"' in status["message"]


def test_stale_and_malformed_resource_versions(admin: Api, existing: str) -> None:
    current = admin.get(existing).json()
    for version in ("1", "abc", "-5", "99999999999"):
        stale = {**current, "metadata": {**current["metadata"], "resourceVersion": version}}
        refused(admin.put(existing, json=stale), 409)
    assert (
        admin.get(existing).json()["metadata"]["resourceVersion"]
        == (current["metadata"]["resourceVersion"])
    )


# Parameters


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "many"},
        {"limit": "-3"},
        {"continue": "not-base64!"},
        {"continue": "W10="},  # base64 of []
        {"labelSelector": "a in (b"},
        {"labelSelector": "!!"},
        {"labelSelector": "a=b=c=="},
        {"fieldSelector": "spec.host=x"},
        {"fieldSelector": "nonsense"},
        {"watch": "true", "resourceVersion": "abc"},
        {"watch": "true", "timeoutSeconds": "abc"},
        {"watch": "true", "timeoutSeconds": "-1"},
    ],
)
def test_bad_list_parameters_are_400(admin: Api, ns: str, params: dict[str, str]) -> None:
    response = admin.get(f"{ROUTES}/namespaces/{ns}/routes", params=params, timeout=10)
    if response.status_code == 200 and params.get("watch"):
        # A watch may already have started: then the error is its first event.
        event = response.json()
        assert event["type"] == "ERROR" and event["object"]["code"] == 400, event
        return
    refused(response)


def test_unknown_paths_are_404(admin: Api, ns: str) -> None:
    for path in (
        f"/api/v1/namespaces/{ns}/secrets/a/b/c",
        f"/api/v1/namespaces/{ns}/secrets/a/nosub",
        "/api/v1/nothing",
        "/apis/route.openshift.io/v1/namespaces",
        "/nothing",
    ):
        response = admin.get(path)
        assert response.status_code == 404, (path, response.text)


def _pb(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (payloads here are under 128 bytes)."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """Kubernetes' protobuf envelope: magic, then Unknown{typeMeta, raw}."""
    type_meta = _pb(1, api_version.encode()) + _pb(2, kind.encode())
    return b"k8s\x00" + _pb(1, type_meta) + _pb(2, raw)


def test_protobuf_bodies_we_cannot_read_are_400(admin: Api, ns: str) -> None:
    protobuf = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    reviews = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
    # A well-formed review is understood: the test's encoding is right.
    good = _envelope("authentication.k8s.io/v1", "SelfSubjectReview", _pb(1, _pb(1, b"me")))
    response = admin.post(reviews, data=good, headers=protobuf)
    assert response.status_code == 201, response.text
    assert response.json()["status"]["userInfo"]["username"] == "kubeadmin"
    # A Pod: not a kind we decode from protobuf.
    pod = _envelope("v1", "Pod", _pb(1, _pb(1, b"s")))
    refused(admin.post(f"/api/v1/namespaces/{ns}/secrets", data=pod, headers=protobuf))
    refused(admin.post(f"/api/v1/namespaces/{ns}/secrets", data=b"no magic", headers=protobuf))
    # A name that is not UTF-8; a message cut short; a varint that never ends.
    for body in (
        _envelope("authentication.k8s.io/v1", "SelfSubjectReview", _pb(1, _pb(1, b"\xff\xfe"))),
        _envelope("authentication.k8s.io/v1", "SelfSubjectReview", b"\x0a\x7f\x0a"),
        _envelope("authentication.k8s.io/v1", "SelfSubjectReview", b"\x08" + b"\xff" * 20),
        b"k8s\x00" + _pb(1, _pb(2, b"\xff\xfe")),
        b"k8s\x00\x08\x01",  # the type as a number
        _envelope("authentication.k8s.io/v1", "SelfSubjectReview", b"\x08\x01"),
        b"k8s\x00" + _pb(1, _pb(2, b"SelfSubjectReview")) + b"\x10\x05",  # raw as a number
    ):
        refused(admin.post(reviews, data=body, headers=protobuf))


def test_delete_options_of_the_wrong_shape(admin: Api, existing: str) -> None:
    refused(admin.delete(existing, json={"preconditions": "x"}), 400, 409)
    refused(admin.delete(existing, json={"preconditions": {"resourceVersion": "abc"}}), 400, 409)
    refused(admin.delete(existing, json=["x"]))
    assert admin.get(existing).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/namespaces/NS/limitranges",
        "/api/v1/namespaces/NS/secrets",
        f"{ROUTES}/namespaces/NS/routes",
        f"{RBAC_API}/namespaces/NS/roles",
    ],
)
def test_a_null_name_is_a_missing_name(admin: Api, ns: str, path: str) -> None:
    """Null is absence, as Go decodes it: the 422 names no "None" and its details a string."""
    body = {"metadata": {"name": None, "labels": None}, "spec": None}
    status = refused(admin.post(path.replace("NS", ns), json=body), 422)
    assert "None" not in status["message"], status
    assert status["details"]["name"] == "", status


def test_null_values_of_string_maps_are_empty_strings(admin: Api, ns: str) -> None:
    """As Go decodes a null into a map[string]string: the key stays, its value is ""."""
    body = {
        "metadata": {"name": unique("nulls"), "labels": {"a": None}, "annotations": {"b": None}}
    }
    created = admin.post(f"/api/v1/namespaces/{ns}/configmaps", json=body)
    assert created.status_code == 201, created.text
    meta = created.json()["metadata"]
    assert (meta["labels"], meta["annotations"]) == ({"a": ""}, {"b": ""})
    listed = admin.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]
    assert [
        item["metadata"]["labels"] for item in listed if item["metadata"]["name"] == meta["name"]
    ] == [{"a": ""}]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"leaseDurationSeconds": 0}, "spec.leaseDurationSeconds"),
        ({"leaseTransitions": -1}, "spec.leaseTransitions"),
        ({"renewTime": "2024-01-01T12:99:00Z"}, "spec.renewTime"),
    ],
)
def test_a_lease_out_of_range_is_refused_naming_the_field(
    admin: Api, ns: str, spec: dict[str, Any], field: str
) -> None:
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
    body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}}
    response = admin.post(leases, json={**body, "spec": spec})
    assert field in refused(response, 400, 422)["message"]
    assert admin.get(f"{leases}/l").status_code == 404
