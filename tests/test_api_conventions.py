"""The Kubernetes API conventions, checked with plain HTTP: the verbs, metadata the server
owns, optimistic concurrency, selectors, paging, watch, strict field validation, Status."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.cluster import Api, Cluster, assert_status, unique, watch_events

ROUTES = "/apis/route.openshift.io/v1"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def route(name: str, service: str = "web", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "route.openshift.io/v1",
        "kind": "Route",
        "metadata": {"name": name, "labels": labels},
        "spec": {"to": {"kind": "Service", "name": service}},
    }


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> str:
    return cluster.new_project(cluster.admin, unique("conv"))


@pytest.fixture
def routes(cluster: Cluster, ns: str) -> str:
    return f"{ROUTES}/namespaces/{ns}/routes"


def create(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# Create, get, list


def test_create_fills_in_the_metadata_the_server_owns(
    cluster: Cluster, routes: str, ns: str
) -> None:
    body = route(unique("r"))
    body["metadata"].update(
        uid="forged", resourceVersion="12345", creationTimestamp="2000-01-01T00:00:00Z"
    )
    created = create(cluster.admin, routes, body)
    meta = created["metadata"]
    assert created["kind"] == "Route" and created["apiVersion"] == "route.openshift.io/v1"
    assert meta["namespace"] == ns
    assert meta["uid"] != "forged" and len(meta["uid"]) == 36
    assert meta["resourceVersion"].isdigit() and meta["resourceVersion"] != "12345"
    assert TIMESTAMP.fullmatch(meta["creationTimestamp"])
    assert meta["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert meta["generation"] == 1
    got = cluster.admin.get(f"{routes}/{meta['name']}").json()
    assert got == created


def test_generate_name_makes_a_unique_name(cluster: Cluster, routes: str) -> None:
    body = route("")
    body["metadata"] = {"generateName": "gen-"}
    first = create(cluster.admin, routes, body)
    second = create(cluster.admin, routes, body)
    assert first["metadata"]["name"].startswith("gen-")
    assert first["metadata"]["name"] != second["metadata"]["name"]


def test_uids_differ_and_a_recreated_object_gets_a_new_uid(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    first = create(cluster.admin, routes, route(name))
    assert cluster.admin.delete(f"{routes}/{name}").status_code == 200
    second = create(cluster.admin, routes, route(name))
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


def test_list_has_the_list_kind_and_a_resource_version(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    created = create(cluster.admin, routes, route(name))
    body = cluster.admin.get(routes).json()
    assert body["kind"] == "RouteList"
    assert body["apiVersion"] == "route.openshift.io/v1"
    assert int(body["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    assert name in [item["metadata"]["name"] for item in body["items"]]


def test_list_across_all_namespaces(cluster: Cluster, routes: str, ns: str) -> None:
    other = cluster.new_project(cluster.admin, unique("conv"))
    mine = create(cluster.admin, routes, route(unique("r")))
    theirs = create(cluster.admin, f"{ROUTES}/namespaces/{other}/routes", route(unique("r")))
    items = cluster.admin.get(f"{ROUTES}/routes").json()["items"]
    found = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items}
    assert (ns, mine["metadata"]["name"]) in found
    assert (other, theirs["metadata"]["name"]) in found
    only_mine = cluster.admin.get(routes).json()["items"]
    assert {i["metadata"]["namespace"] for i in only_mine} == {ns}


def test_dry_run_create_stores_nothing(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    response = cluster.admin.post(routes, params={"dryRun": "All"}, json=route(name))
    assert response.status_code == 201
    assert response.json()["metadata"]["name"] == name
    assert_status(cluster.admin.get(f"{routes}/{name}"), 404, "NotFound")


# Update and optimistic concurrency


def test_put_with_the_current_resource_version_updates(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    created["spec"]["host"] = "www.example.com"
    name = created["metadata"]["name"]
    response = cluster.admin.put(f"{routes}/{name}", json=created)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["spec"]["host"] == "www.example.com"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_put_with_a_stale_resource_version_is_409_conflict(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    name = created["metadata"]["name"]
    first = dict(created, spec={"to": {"kind": "Service", "name": "one"}})
    assert cluster.admin.put(f"{routes}/{name}", json=first).status_code == 200
    stale = dict(created, spec={"to": {"kind": "Service", "name": "two"}})
    body = assert_status(cluster.admin.put(f"{routes}/{name}", json=stale), 409, "Conflict")
    assert "the object has been modified" in body["message"]
    assert body["details"]["name"] == name
    assert cluster.admin.get(f"{routes}/{name}").json()["spec"]["to"]["name"] == "one"


def test_put_cannot_change_uid_or_creation_time(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    name = created["metadata"]["name"]
    changed = dict(created)
    changed["metadata"] = {
        **created["metadata"],
        "uid": "other",
        "creationTimestamp": "2001-01-01T00:00:00Z",
    }
    updated = cluster.admin.put(f"{routes}/{name}", json=changed).json()
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


def test_put_of_a_missing_object_is_404(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    assert_status(cluster.admin.put(f"{routes}/{name}", json=route(name)), 404, "NotFound")


def test_put_with_another_name_than_the_url_is_400(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    other = dict(created, metadata={**created["metadata"], "name": "else"})
    assert_status(
        cluster.admin.put(f"{routes}/{created['metadata']['name']}", json=other), 400, "BadRequest"
    )


def test_generation_bumps_on_spec_changes_only(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    relabelled = cluster.admin.patch(
        path,
        json={"metadata": {"labels": {"tier": "front"}, "annotations": {"note": "x"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert relabelled["metadata"]["labels"] == {"tier": "front"}
    assert relabelled["metadata"]["generation"] == 1
    respec = cluster.admin.patch(
        path,
        json={"spec": {"host": "a.example.com"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert respec["metadata"]["generation"] == 2
    same = cluster.admin.patch(
        path,
        json={"spec": {"host": "a.example.com"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert same["metadata"]["generation"] == 2


# Patch


def test_json_merge_patch(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r"), app="a", tier="x"))
    response = cluster.admin.patch(
        f"{routes}/{created['metadata']['name']}",
        data='{"metadata": {"labels": {"tier": null, "new": "yes"}}, "spec": {"path": "/p"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["metadata"]["labels"] == {"app": "a", "new": "yes"}
    assert patched["spec"]["path"] == "/p"
    assert patched["spec"]["to"]["name"] == "web"


def test_json_patch(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r"), app="a"))
    response = cluster.admin.patch(
        f"{routes}/{created['metadata']['name']}",
        json=[
            {"op": "test", "path": "/spec/to/name", "value": "web"},
            {"op": "replace", "path": "/spec/to/name", "value": "api"},
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "remove", "path": "/metadata/labels/app"},
        ],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["spec"]["to"]["name"] == "api"
    assert patched["metadata"]["labels"] == {"b": "2"}


def test_json_patch_whose_test_fails_changes_nothing(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    response = cluster.admin.patch(
        path,
        json=[
            {"op": "replace", "path": "/spec/to/name", "value": "api"},
            {"op": "test", "path": "/spec/to/name", "value": "nope"},
        ],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert 400 <= response.status_code < 500 and response.status_code != 404
    assert response.json()["kind"] == "Status"
    assert cluster.admin.get(path).json()["spec"]["to"]["name"] == "web"


def test_strategic_merge_patch_is_a_merge(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r"), app="a"))
    response = cluster.admin.patch(
        f"{routes}/{created['metadata']['name']}",
        json={"metadata": {"labels": {"b": "2"}}, "spec": {"to": {"weight": 50}}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["metadata"]["labels"] == {"app": "a", "b": "2"}
    assert patched["spec"]["to"] == {"kind": "Service", "name": "web", "weight": 50}


def test_patch_naming_a_stale_resource_version_is_409(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    merge = {"Content-Type": "application/merge-patch+json"}
    assert cluster.admin.patch(path, json={"spec": {"path": "/a"}}, headers=merge).ok
    stale = {
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
        "spec": {"path": "/b"},
    }
    assert_status(cluster.admin.patch(path, json=stale, headers=merge), 409, "Conflict")
    assert cluster.admin.get(path).json()["spec"]["path"] == "/a"


def test_patch_of_an_unsupported_type_is_415(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    response = cluster.admin.patch(
        f"{routes}/{created['metadata']['name']}",
        data="{}",
        headers={"Content-Type": "text/plain"},
    )
    assert_status(response, 415, "UnsupportedMediaType")


def test_patch_of_a_missing_object_is_404(cluster: Cluster, routes: str) -> None:
    response = cluster.admin.patch(
        f"{routes}/{unique('gone')}",
        json={"spec": {"path": "/x"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_status(response, 404, "NotFound")


def test_server_side_apply_creates_then_merges(cluster: Cluster, routes: str) -> None:
    name = unique("ssa")
    apply = {"Content-Type": "application/apply-patch+yaml"}
    body = route(name, app="a")
    missing_manager = cluster.admin.patch(f"{routes}/{name}", json=body, headers=apply)
    assert_status(missing_manager, 400, "BadRequest", "fieldManager")
    manager = {"fieldManager": "tests"}
    response = cluster.admin.patch(f"{routes}/{name}", params=manager, json=body, headers=apply)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["uid"]
    body["spec"]["host"] = "ssa.example.com"
    response = cluster.admin.patch(f"{routes}/{name}", params=manager, json=body, headers=apply)
    assert response.status_code == 200, response.text
    applied = response.json()
    assert applied["spec"]["host"] == "ssa.example.com"
    assert applied["metadata"]["labels"] == {"app": "a"}
    other = route("else")
    response = cluster.admin.patch(
        f"{routes}/{unique('x')}", params=manager, json=other, headers=apply
    )
    assert_status(response, 400, "BadRequest")


# Delete


def test_delete_then_get_is_404_with_details(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    create(cluster.admin, routes, route(name))
    assert cluster.admin.delete(f"{routes}/{name}").status_code == 200
    body = assert_status(cluster.admin.get(f"{routes}/{name}"), 404, "NotFound", name)
    assert body["details"] == {"name": name, "group": "route.openshift.io", "kind": "routes"}
    assert_status(cluster.admin.delete(f"{routes}/{name}"), 404, "NotFound")


def test_delete_with_a_stale_precondition_is_409(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    merge = {"Content-Type": "application/merge-patch+json"}
    assert cluster.admin.patch(path, json={"spec": {"path": "/a"}}, headers=merge).ok
    options = {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]},
    }
    assert_status(cluster.admin.delete(path, json=options), 409, "Conflict")
    current = cluster.admin.get(path).json()
    options["preconditions"] = {
        "uid": current["metadata"]["uid"],
        "resourceVersion": current["metadata"]["resourceVersion"],
    }
    assert cluster.admin.delete(path, json=options).status_code == 200


def test_delete_with_a_wrong_uid_precondition_is_409(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-it"}}
    assert_status(cluster.admin.delete(path, json=options), 409, "Conflict")
    assert cluster.admin.get(path).status_code == 200


def test_deletecollection_deletes_what_the_selector_matches(cluster: Cluster) -> None:
    ns = cluster.new_project(cluster.admin, unique("coll"))
    path = f"{ROUTES}/namespaces/{ns}/routes"
    for index in range(3):
        create(cluster.admin, path, route(f"doomed-{index}", group="doomed"))
    create(cluster.admin, path, route("kept", group="kept"))
    response = cluster.admin.delete(path, params={"labelSelector": "group=doomed"})
    assert response.status_code == 200, response.text
    left = [i["metadata"]["name"] for i in cluster.admin.get(path).json()["items"]]
    assert left == ["kept"]


# Selectors


@pytest.fixture(scope="module")
def labelled(cluster: Cluster) -> str:
    """A project with routes a (env=prod, tier=web), b (env=dev, tier=web), c (env=prod), d."""
    ns = cluster.new_project(cluster.admin, unique("sel"))
    path = f"{ROUTES}/namespaces/{ns}/routes"
    create(cluster.admin, path, route("a", env="prod", tier="web"))
    create(cluster.admin, path, route("b", env="dev", tier="web"))
    create(cluster.admin, path, route("c", env="prod"))
    create(cluster.admin, path, route("d"))
    return ns


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("env=prod", ["a", "c"]),
        ("env==prod", ["a", "c"]),
        ("env!=prod", ["b", "d"]),
        ("env=prod,tier=web", ["a"]),
        ("env in (prod, dev)", ["a", "b", "c"]),
        ("env notin (prod)", ["b", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("env=staging", []),
    ],
)
def test_label_selectors(cluster: Cluster, labelled: str, selector: str, names: list[str]) -> None:
    response = cluster.admin.get(
        f"{ROUTES}/namespaces/{labelled}/routes", params={"labelSelector": selector}
    )
    assert response.status_code == 200, response.text
    assert [i["metadata"]["name"] for i in response.json()["items"]] == names


def test_field_selectors_on_name_and_namespace(cluster: Cluster, labelled: str) -> None:
    def names(path: str, selector: str) -> list[str]:
        response = cluster.admin.get(path, params={"fieldSelector": selector})
        assert response.status_code == 200, response.text
        return [i["metadata"]["name"] for i in response.json()["items"]]

    path = f"{ROUTES}/namespaces/{labelled}/routes"
    assert names(path, "metadata.name=b") == ["b"]
    assert names(path, "metadata.name!=b") == ["a", "c", "d"]
    assert names(path, f"metadata.namespace={labelled}") == ["a", "b", "c", "d"]
    assert names(f"{ROUTES}/routes", f"metadata.namespace={labelled},metadata.name=c") == ["c"]
    assert names("/api/v1/namespaces", f"metadata.name={labelled}") == [labelled]


def test_an_unsupported_field_selector_is_400(cluster: Cluster, labelled: str) -> None:
    response = cluster.admin.get(
        f"{ROUTES}/namespaces/{labelled}/routes", params={"fieldSelector": "spec.host=x"}
    )
    assert_status(response, 400, "BadRequest", "field label not supported")


def test_a_malformed_label_selector_is_400(cluster: Cluster, labelled: str) -> None:
    response = cluster.admin.get(
        f"{ROUTES}/namespaces/{labelled}/routes", params={"labelSelector": "env in (a b"}
    )
    assert_status(response, 400, "BadRequest")


# Paging


def test_limit_and_continue_page_through_everything(cluster: Cluster) -> None:
    ns = cluster.new_project(cluster.admin, unique("page"))
    path = f"{ROUTES}/namespaces/{ns}/routes"
    names = sorted(f"r{i}" for i in range(7))
    for name in names:
        create(cluster.admin, path, route(name))
    seen: list[str] = []
    params = {"limit": "3"}
    pages = 0
    while True:
        body = cluster.admin.get(path, params=params).json()
        pages += 1
        assert len(body["items"]) <= 3
        seen += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "3", "continue": token}
    assert pages == 3
    assert seen == names


def test_limit_larger_than_the_list_has_no_continue(cluster: Cluster, labelled: str) -> None:
    body = cluster.admin.get(
        f"{ROUTES}/namespaces/{labelled}/routes", params={"limit": "100"}
    ).json()
    assert len(body["items"]) == 4
    assert not body["metadata"].get("continue")


def test_a_garbage_continue_token_is_400(cluster: Cluster, labelled: str) -> None:
    response = cluster.admin.get(
        f"{ROUTES}/namespaces/{labelled}/routes", params={"limit": "1", "continue": "!!garbage"}
    )
    assert_status(response, 400, "BadRequest")


def test_a_negative_limit_is_400(cluster: Cluster, labelled: str) -> None:
    response = cluster.admin.get(f"{ROUTES}/namespaces/{labelled}/routes", params={"limit": "-1"})
    assert_status(response, 400, "BadRequest")


# Watch


def test_watch_from_a_resource_version_sees_later_events_in_order(cluster: Cluster) -> None:
    ns = cluster.new_project(cluster.admin, unique("watch"))
    path = f"{ROUTES}/namespaces/{ns}/routes"
    create(cluster.admin, path, route("before"))
    start = cluster.admin.get(path).json()["metadata"]["resourceVersion"]
    create(cluster.admin, path, route("w"))
    merge = {"Content-Type": "application/merge-patch+json"}
    assert cluster.admin.patch(f"{path}/w", json={"spec": {"path": "/x"}}, headers=merge).ok
    assert cluster.admin.delete(f"{path}/w").ok
    events = watch_events(cluster.admin, path, {"resourceVersion": start}, 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),
        ("DELETED", "w"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert versions[0] > int(start)
    assert events[1]["object"]["spec"]["path"] == "/x"


def test_watch_without_a_version_starts_with_the_current_objects(
    cluster: Cluster, labelled: str
) -> None:
    events = watch_events(
        cluster.admin, f"{ROUTES}/namespaces/{labelled}/routes", {"timeoutSeconds": "1"}, 10
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("ADDED", "d"),
    ]


def test_watch_filters_by_label_and_namespace(cluster: Cluster) -> None:
    ns = cluster.new_project(cluster.admin, unique("watch"))
    other = cluster.new_project(cluster.admin, unique("watch"))
    path = f"{ROUTES}/namespaces/{ns}/routes"
    start = cluster.admin.get(path).json()["metadata"]["resourceVersion"]
    create(cluster.admin, f"{ROUTES}/namespaces/{other}/routes", route("elsewhere", pick="yes"))
    create(cluster.admin, path, route("unpicked"))
    create(cluster.admin, path, route("picked", pick="yes"))
    events = watch_events(
        cluster.admin, path, {"resourceVersion": start, "labelSelector": "pick=yes"}, 1
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "picked")]


def test_watch_ends_at_its_timeout(cluster: Cluster, labelled: str) -> None:
    path = f"{ROUTES}/namespaces/{labelled}/routes"
    version = cluster.admin.get(path).json()["metadata"]["resourceVersion"]
    events = watch_events(
        cluster.admin, path, {"resourceVersion": version, "timeoutSeconds": "1"}, 1
    )
    assert events == []


def test_watch_with_a_non_numeric_version_is_an_error(cluster: Cluster, labelled: str) -> None:
    path = f"{ROUTES}/namespaces/{labelled}/routes"
    response = cluster.admin.get(path, params={"watch": "true", "resourceVersion": "abc"})
    if response.status_code == 200:
        event = response.json()
        assert event["type"] == "ERROR" and event["object"]["code"] == 400
    else:
        assert_status(response, 400, "BadRequest")


# Strict field validation


def test_strict_validation_refuses_unknown_fields(cluster: Cluster, routes: str) -> None:
    body = route(unique("r"))
    body["spec"]["colour"] = "blue"
    body["extra"] = 1
    response = cluster.admin.post(routes, params={"fieldValidation": "Strict"}, json=body)
    status = assert_status(response, 400, "BadRequest", "strict decoding error")
    assert 'unknown field "spec.colour"' in status["message"]
    assert 'unknown field "extra"' in status["message"]
    assert_status(cluster.admin.get(f"{routes}/{body['metadata']['name']}"), 404, "NotFound")


def test_warn_validation_keeps_going_with_a_warning(cluster: Cluster, routes: str) -> None:
    body = route(unique("r"))
    body["spec"]["colour"] = "blue"
    response = cluster.admin.post(routes, params={"fieldValidation": "Warn"}, json=body)
    assert response.status_code == 201
    assert 'unknown field \\"spec.colour\\"' in response.headers["Warning"] or (
        "spec.colour" in response.headers["Warning"]
    )
    ignored = route(unique("r"))
    ignored["spec"]["colour"] = "blue"
    response = cluster.admin.post(routes, params={"fieldValidation": "Ignore"}, json=ignored)
    assert response.status_code == 201
    assert "Warning" not in response.headers


def test_strict_validation_applies_to_put_and_patch(cluster: Cluster, routes: str) -> None:
    created = create(cluster.admin, routes, route(unique("r")))
    path = f"{routes}/{created['metadata']['name']}"
    changed = dict(created, spec={**created["spec"], "colour": "blue"})
    strict = {"fieldValidation": "Strict"}
    assert_status(
        cluster.admin.put(path, params=strict, json=changed), 400, "BadRequest", "spec.colour"
    )
    response = cluster.admin.patch(
        path,
        params=strict,
        json={"spec": {"colour": "blue"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_status(response, 400, "BadRequest", "strict decoding error")


def test_an_unknown_field_validation_mode_is_400(cluster: Cluster, routes: str) -> None:
    response = cluster.admin.post(
        routes, params={"fieldValidation": "Sometimes"}, json=route(unique("r"))
    )
    assert_status(response, 400, "BadRequest")


# Status errors


def test_already_exists(cluster: Cluster, routes: str) -> None:
    name = unique("r")
    create(cluster.admin, routes, route(name))
    body = assert_status(cluster.admin.post(routes, json=route(name)), 409, "AlreadyExists")
    assert body["message"] == f'routes.route.openshift.io "{name}" already exists'
    assert body["details"]["name"] == name


def test_invalid_names_the_field_in_its_causes(cluster: Cluster, routes: str) -> None:
    body = route("Not_A_Name")
    body["spec"] = {}
    status = assert_status(cluster.admin.post(routes, json=body), 422, "Invalid")
    assert status["message"].startswith('Route.route.openshift.io "Not_A_Name" is invalid')
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"metadata.name", "spec.to.name"}
    assert all(c["reason"] and c["message"] for c in status["details"]["causes"])


def test_bad_request_for_a_kind_that_does_not_match_the_url(cluster: Cluster, routes: str) -> None:
    body = route(unique("r"))
    body["kind"] = "Secret"
    assert_status(cluster.admin.post(routes, json=body), 400, "BadRequest")


def test_bad_request_for_a_namespace_that_does_not_match_the_url(
    cluster: Cluster, routes: str
) -> None:
    body = route(unique("r"))
    body["metadata"]["namespace"] = "default"
    assert_status(cluster.admin.post(routes, json=body), 400, "BadRequest")


def test_a_verb_the_kind_does_not_support_is_405(cluster: Cluster) -> None:
    response = cluster.admin.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert_status(response, 405, "MethodNotAllowed")


def test_unauthorized_and_forbidden(cluster: Cluster, routes: str, ns: str) -> None:
    assert_status(cluster.api().get(routes), 401, "Unauthorized")
    stranger = cluster.user("stranger")
    body = assert_status(stranger.api.get(routes), 403, "Forbidden")
    assert body["message"] == (
        f'routes.route.openshift.io is forbidden: User "{stranger.name}" cannot list resource '
        f'"routes" in API group "route.openshift.io" in the namespace "{ns}"'
    )
    assert body["details"]["kind"] == "routes"
