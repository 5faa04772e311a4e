"""Unusual requests to the API lose nothing, widen nothing and leak nothing: bodies read whole,
names that name nothing, collections Kubernetes never deletes, warnings that cannot break an
answer, dry runs, unknown fields, and internal errors logged as one line without secrets."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.cluster import Api, Cluster, assert_status, unique
from tests.support.lanes import database_lane
from tests.support.server import running_wharf

JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
MAX_BODY = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> Api:
    return cluster.admin


@pytest.fixture(scope="module")
def ns(cluster: Cluster) -> str:
    return cluster.new_project(cluster.admin, unique("odd"))


def secrets_path(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/secrets"


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def stored_value(admin: Api, ns: str, name: str, key: str) -> str:
    response = admin.get(f"{secrets_path(ns)}/{name}")
    assert response.status_code == 200, response.text
    return base64.b64decode(response.json()["data"][key]).decode()


def chunked(data: bytes, size: int = 10_000) -> Iterator[bytes]:
    """A body requests sends with chunked transfer encoding (no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


# 1. Bodies are read whole, up to Kubernetes' 3 MiB, however they are sent


@pytest.mark.parametrize("size", [40_000, 256 * 1024, 2 * 1024 * 1024])
@pytest.mark.parametrize("how", ["length", "chunked"])
@pytest.mark.parametrize("encoding", ["json", "yaml"])
def test_a_large_body_is_stored_whole(
    admin: Api, ns: str, size: int, how: str, encoding: str
) -> None:
    name = unique("big")
    value = "v" * size
    obj = secret(name, key=value)
    raw = (yaml.safe_dump(obj) if encoding == "yaml" else json.dumps(obj)).encode()
    body: Any = chunked(raw) if how == "chunked" else raw
    response = admin.post(secrets_path(ns), data=body, headers=YAML if encoding == "yaml" else JSON)
    assert response.status_code == 201, response.text[:300]
    assert stored_value(admin, ns, name, "key") == value


@pytest.mark.parametrize("how", ["length", "chunked"])
def test_a_body_over_the_limit_is_413_and_stores_nothing(admin: Api, ns: str, how: str) -> None:
    name = unique("huge")
    raw = json.dumps(secret(name, key="v" * MAX_BODY)).encode()
    body: Any = chunked(raw, 256 * 1024) if how == "chunked" else raw
    try:
        response = admin.post(secrets_path(ns), data=body, headers=JSON)
    except requests.ConnectionError:
        pass  # the server may answer 413 and close before the client finished sending
    else:
        assert_status(response, 413, "RequestEntityTooLarge")
    assert admin.get(f"{secrets_path(ns)}/{name}").status_code == 404


def test_a_large_patch_is_applied_whole(admin: Api, ns: str) -> None:
    name = unique("patched")
    assert admin.post(secrets_path(ns), json=secret(name, a="b")).status_code == 201
    value = "p" * (300 * 1024)
    patch = json.dumps({"stringData": {"a": value}}).encode()
    response = admin.patch(f"{secrets_path(ns)}/{name}", data=chunked(patch), headers=MERGE)
    assert response.status_code == 200, response.text[:300]
    assert stored_value(admin, ns, name, "a") == value


# 2. A name that is empty or holds a slash names nothing


@pytest.mark.parametrize("tail", ["%2F", "%2f", "", "/", "a%2Fb", "%00", "x/%2E%2E"])
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_an_item_path_without_a_valid_name_touches_nothing(
    admin: Api, cluster: Cluster, tail: str, method: str
) -> None:
    ns = cluster.new_project(admin, unique("names"))
    for name in ("one", "two"):
        assert admin.post(secrets_path(ns), json=secret(name, k="v")).status_code == 201
    response = admin.request(
        method, f"{secrets_path(ns)}/{tail}", json=secret("one"), headers=JSON | MERGE
    )
    assert response.status_code in (400, 404, 405), (response.status_code, response.text[:300])
    assert response.json()["kind"] == "Status"
    listed = admin.get(secrets_path(ns)).json()["items"]
    assert sorted(s["metadata"]["name"] for s in listed) == ["one", "two"]


def test_an_empty_namespace_segment_names_nothing(admin: Api, ns: str) -> None:
    assert admin.post(secrets_path(ns), json=secret("keep", k="v")).status_code == 201
    response = admin.delete("/api/v1/namespaces//secrets/keep")
    assert response.status_code == 404, response.text
    assert admin.get(f"{secrets_path(ns)}/keep").status_code == 200


# 3. Collections Kubernetes never deletes


def test_the_namespaces_collection_cannot_be_deleted(admin: Api, cluster: Cluster) -> None:
    before = {n["metadata"]["name"] for n in admin.get("/api/v1/namespaces").json()["items"]}
    assert_status(admin.delete("/api/v1/namespaces"), 405, "MethodNotAllowed")
    after = {n["metadata"]["name"] for n in admin.get("/api/v1/namespaces").json()["items"]}
    assert after == before
    route = "/apis/route.openshift.io/v1/namespaces/openshift-image-registry/routes/default-route"
    assert admin.get(route).status_code == 200


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "openshift"])
@pytest.mark.parametrize("how", ["namespaces", "projects"])
def test_the_cluster_namespaces_cannot_be_deleted(admin: Api, name: str, how: str) -> None:
    group = "/api/v1" if how == "namespaces" else "/apis/project.openshift.io/v1"
    response = admin.delete(f"{group}/{how}/{name}")
    assert_status(response, 403, "Forbidden", "this namespace may not be deleted")
    assert admin.get(f"/api/v1/namespaces/{name}").status_code == 200


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("default", 'cannot request a project with the name "default"'),
        ("openshift", 'cannot request a project with the name "openshift"'),
        ("kube-mine", 'cannot request a project starting with "kube-"'),
        ("openshift-mine", 'cannot request a project starting with "openshift-"'),
    ],
)
def test_reserved_projects_cannot_be_requested(admin: Api, name: str, message: str) -> None:
    response = admin.post(
        "/apis/project.openshift.io/v1/projectrequests",
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": name},
        },
    )
    assert_status(response, 403, "Forbidden", message)
    if name.startswith(("kube-", "openshift-")):
        assert admin.get(f"/api/v1/namespaces/{name}").status_code == 404


# 4. Unknown fields: warned about in a header that can always be sent, never stored


@pytest.mark.parametrize("field", ["a\nb", 'quo"te', "back\\slash", "tab\there", "ünï", "\x00"])
def test_an_unknown_field_of_any_name_is_warned_about_and_dropped(
    admin: Api, ns: str, field: str
) -> None:
    name = unique("field")
    body = {**secret(name, k="v"), field: 1}
    response = admin.post(secrets_path(ns), json=body)
    assert response.status_code == 201, response.text
    warning = response.headers["Warning"]
    assert warning.startswith('299 - "unknown field \\"') and warning.endswith('"'), warning
    assert field not in response.json()
    stored = admin.get(f"{secrets_path(ns)}/{name}").json()
    assert field not in stored
    patched = admin.patch(
        f"{secrets_path(ns)}/{name}", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE
    )
    assert patched.status_code == 200, patched.text
    assert "Warning" not in patched.headers


def test_unknown_fields_follow_field_validation(admin: Api, ns: str) -> None:
    body = {**secret(unique("strict"), k="v"), "extra": {"deep": 1}}
    strict = admin.post(secrets_path(ns), json=body, params={"fieldValidation": "Strict"})
    assert_status(strict, 400, "BadRequest", 'unknown field "extra"')
    assert admin.get(f"{secrets_path(ns)}/{body['metadata']['name']}").status_code == 404
    ignored = admin.post(secrets_path(ns), json=body, params={"fieldValidation": "Ignore"})
    assert ignored.status_code == 201, ignored.text
    assert "Warning" not in ignored.headers
    assert "extra" not in admin.get(f"{secrets_path(ns)}/{body['metadata']['name']}").json()
    wrong = admin.post(secrets_path(ns), json=body, params={"fieldValidation": "Loose"})
    assert_status(wrong, 400, "BadRequest", "fieldValidation")


# 5. dryRun=All stores nothing; any other value is refused


def names_in(admin: Api, ns: str) -> set[str]:
    return {s["metadata"]["name"] for s in admin.get(secrets_path(ns)).json()["items"]}


def test_a_dry_run_changes_nothing(admin: Api, cluster: Cluster) -> None:
    ns = cluster.new_project(admin, unique("dry"))
    dry = {"dryRun": "All"}
    created = admin.post(secrets_path(ns), json=secret("ghost", k="v"), params=dry)
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["name"] == "ghost"
    assert names_in(admin, ns) == set()

    real = admin.post(secrets_path(ns), json=secret("real", k="v"))
    assert real.status_code == 201
    version = real.json()["metadata"]["resourceVersion"]
    path = f"{secrets_path(ns)}/real"
    put = admin.put(path, json={**secret("real", k="changed")}, params=dry)
    assert put.status_code == 200, put.text
    patched = admin.patch(path, json={"stringData": {"k": "patched"}}, headers=MERGE, params=dry)
    assert patched.status_code == 200, patched.text
    deleted = admin.delete(path, params=dry)
    assert deleted.status_code == 200, deleted.text
    collection = admin.delete(secrets_path(ns), params=dry)
    assert collection.status_code == 200, collection.text
    after = admin.get(path).json()
    assert after["metadata"]["resourceVersion"] == version
    assert stored_value(admin, ns, "real", "k") == "v"

    # A dry run fails where the real request would.
    assert_status(
        admin.post(secrets_path(ns), json=secret("real"), params=dry), 409, "AlreadyExists"
    )
    project = admin.post(
        "/apis/project.openshift.io/v1/projectrequests",
        json={
            "apiVersion": "project.openshift.io/v1",
            "kind": "ProjectRequest",
            "metadata": {"name": unique("dryproj")},
        },
        params=dry,
    )
    assert project.status_code == 201, project.text
    name = project.json()["metadata"]["name"]
    assert admin.get(f"/api/v1/namespaces/{name}").status_code == 404


@pytest.mark.parametrize("value", ["all", "None", "", "true"])
def test_a_dry_run_value_other_than_all_is_refused(admin: Api, ns: str, value: str) -> None:
    name = unique("dryval")
    response = admin.post(secrets_path(ns), json=secret(name), params={"dryRun": value})
    assert_status(response, 400, "BadRequest", "dry run")
    assert admin.get(f"{secrets_path(ns)}/{name}").status_code == 404


def test_a_token_request_dry_run_issues_no_token(admin: Api, ns: str) -> None:
    response = admin.post(
        f"/api/v1/namespaces/{ns}/serviceaccounts/builder/token",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}},
        params={"dryRun": "All"},
    )
    assert response.status_code == 201, response.text
    assert not response.json()["status"].get("token")


# 7. A large YAML body is decoded off the event loop


def test_a_large_yaml_body_does_not_stall_other_requests(
    cluster: Cluster, admin: Api, ns: str
) -> None:
    # 2.5 MiB of YAML in small mappings: slow to decode, so a decode on the event loop shows.
    items = "".join(f"  k{i}: v{i}\n" for i in range(150_000))
    head = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {unique('slow')}\nstringData:\n"
    raw = (head + items).encode()
    assert len(raw) < MAX_BODY
    done = threading.Event()
    answers: list[int] = []

    def send() -> None:
        try:
            answers.append(admin.post(secrets_path(ns), data=raw, headers=YAML).status_code)
        finally:
            done.set()

    sender = threading.Thread(target=send)
    sender.start()
    slowest = 0.0
    with cluster.api() as probe:
        while not done.is_set():
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    sender.join()
    assert answers == [201]
    # Decoded on the loop this took seconds; off it, the probe is answered between slices.
    assert slowest < 1.0, slowest


# 6. An internal error is one line in the log: no traceback, no secret, no delay


REFUSE_SECRETS = {
    "sqlite": [
        "CREATE TRIGGER refuse_secrets BEFORE INSERT ON objects "
        "WHEN NEW.resource = 'secrets' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_secrets() RETURNS trigger AS $$ BEGIN "
        "IF NEW.resource = 'secrets' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; "
        "END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_secrets BEFORE INSERT ON objects "
        "FOR EACH ROW EXECUTE FUNCTION refuse_secrets()",
    ],
}


def test_an_internal_error_is_logged_as_one_line_without_the_secret(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data") as wharf:
        cluster = Cluster(wharf, tmp_path)
        admin = cluster.admin
        ns = cluster.new_project(admin, unique("fail"))
        # A database that refuses the write: a trigger of its own, as a full disk would.
        for statement in REFUSE_SECRETS[database_lane()]:
            wharf.sql(statement)
        value = "hunter2-" + unique("secret")
        started = time.monotonic()
        response = admin.post(secrets_path(ns), json=secret("leak", password=value))
        took = time.monotonic() - started
        body = assert_status(response, 500, "InternalError")
        request_id = response.headers["X-Request-Id"]
        assert request_id in body["message"]
        assert took < 1.0, took

        wharf.sql(
            "DROP TRIGGER refuse_secrets"
            + (" ON objects" if database_lane() == "postgresql" else "")
        )
        # It recovers: the same write works once the database takes writes again.
        assert admin.post(secrets_path(ns), json=secret("leak", password="x")).status_code == 201

        log = wharf.log()
        encoded = base64.b64encode(value.encode()).decode()
        assert value not in log and encoded not in log
        assert "Traceback" not in log
        lines = [line for line in log.splitlines() if request_id in line]
        failures = [line for line in lines if "request failed" in line]
        assert len(failures) == 1, lines
        # the database's refusal, by its class (IntegrityError on SQLite, the driver's Error on
        # PostgreSQL)
        assert re.search(r"error=\S*Error\b", failures[0]), failures[0]
        # and its access line, which names the answer
        assert any("status=500" in line for line in lines if line not in failures), lines


# Deleting answers as Kubernetes does: a Status, but the Namespace itself for a namespace


def test_a_delete_answers_a_success_status(admin: Api, ns: str) -> None:
    made = admin.post(secrets_path(ns), json=secret(unique("gone"), k="v")).json()
    name, uid = made["metadata"]["name"], made["metadata"]["uid"]
    response = admin.delete(f"{secrets_path(ns)}/{name}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": 200,
        "details": {"name": name, "kind": "secrets", "uid": uid},
    }
    route = admin.post(
        "/apis/route.openshift.io/v1/namespaces/" + ns + "/routes",
        json={"metadata": {"name": "r"}, "spec": {"to": {"kind": "Service", "name": "s"}}},
    )
    assert route.status_code == 201, route.text
    deleted = admin.delete(f"/apis/route.openshift.io/v1/namespaces/{ns}/routes/r").json()
    assert deleted["details"]["group"] == "route.openshift.io", deleted


def test_a_namespace_delete_answers_the_namespace(admin: Api, cluster: Cluster) -> None:
    name = cluster.new_project(admin, unique("nsgone"))
    response = admin.delete(f"/api/v1/namespaces/{name}")
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "Namespace"
    assert response.json()["metadata"]["name"] == name


# Impersonation: 403 for who may not, honoured for who may


def test_impersonation_needs_the_right_to_impersonate(cluster: Cluster) -> None:
    alice, bob = cluster.user("alice"), cluster.user("bob")
    project = cluster.new_project(bob.api, unique("bobs"))
    response = alice.api.get(
        f"/api/v1/namespaces/{project}/secrets", headers={"Impersonate-User": bob.name}
    )
    body = assert_status(response, 403, "Forbidden", "cannot impersonate")
    assert f'User "{alice.name}"' in body["message"] and "users" in body["message"]
    groups = alice.api.get(
        "/apis/user.openshift.io/v1/users/~",
        headers={"Impersonate-User": alice.name, "Impersonate-Group": "system:cluster-admins"},
    )
    assert_status(groups, 403, "Forbidden", "cannot impersonate")
    no_user = alice.api.get("/api/v1/namespaces", headers={"Impersonate-Group": "x"})
    assert_status(no_user, 400, "BadRequest", "Impersonate-User")


def test_impersonation_is_honoured_for_who_may(cluster: Cluster) -> None:
    bob = cluster.user("bob")
    project = cluster.new_project(bob.api, unique("bobs"))
    as_bob = {"Impersonate-User": bob.name}
    me = cluster.admin.get("/apis/user.openshift.io/v1/users/~", headers=as_bob)
    assert me.status_code == 200 and me.json()["metadata"]["name"] == bob.name, me.text
    # Bob may read his project and nothing of the cluster's.
    assert cluster.admin.get(f"/api/v1/namespaces/{project}/secrets", headers=as_bob).ok
    assert_status(cluster.admin.get("/api/v1/secrets", headers=as_bob), 403, "Forbidden")
    review = cluster.admin.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={**as_bob, "Impersonate-Group": "devs"},
    )
    assert review.status_code == 201, review.text
    info = review.json()["status"]["userInfo"]
    assert info["username"] == bob.name and "devs" in info["groups"]
