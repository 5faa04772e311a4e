"""Lists in pages (`limit` and `continue`) read from the database by key: every object seen
once across pages while others come and go, selectors with pages, tokens that are bad or too
old (410 with a token to go on), and the kinds made per caller paged the same way."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import Api, Cluster, assert_status, unique
from tests.support.server import running_wharf


def secrets(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/secrets"


def make(api: Api, ns: str, name: str, labels: dict[str, str] | None = None) -> None:
    body = {"metadata": {"name": name, "labels": labels or {}}, "stringData": {"k": "v"}}
    response = api.post(secrets(ns), json=body)
    assert response.status_code == 201, response.text


def pages(api: Api, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    """Every page of a list, following its continue tokens."""
    token = ""
    while True:
        response = api.get(path, params={**params, **({"continue": token} if token else {})})
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        yield page
        token = page["metadata"].get("continue", "")
        if not token:
            return


def names(page: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in page["items"]]


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> Api:
    return cluster.admin


def test_pages_cover_the_list_once_in_order(admin: Api, cluster: Cluster) -> None:
    ns = cluster.new_project(admin, unique("pages"))
    created = sorted(f"s-{i:03}" for i in range(25))
    for name in created:
        make(admin, ns, name)
    seen = list(pages(admin, secrets(ns), limit=10))
    assert [len(page["items"]) for page in seen] == [10, 10, 5]
    assert [name for page in seen for name in names(page)] == created
    first = seen[0]["metadata"]["resourceVersion"]
    assert all(page["metadata"]["resourceVersion"] == first for page in seen)
    whole = admin.get(secrets(ns)).json()
    assert names(whole) == created and "continue" not in whole["metadata"]


def test_pages_see_every_object_once_while_others_come_and_go(admin: Api, cluster: Cluster) -> None:
    ns = cluster.new_project(admin, unique("churn"))
    stable = [f"s-{i:03}-stable" for i in range(60)]
    for name in stable:
        make(admin, ns, name)
    stop = threading.Event()
    churned: list[str] = []

    def churn() -> None:
        # Names that sort between and around the stable ones, made and removed while paging.
        with cluster.api(cluster.admin_token) as writer:
            for i in range(400):
                if stop.is_set():
                    return
                name = f"s-{(i * 7) % 60:03}-churn-{i}"
                make(writer, ns, name)
                churned.append(name)
                if i % 2:
                    assert writer.delete(f"{secrets(ns)}/{churned[-2]}").status_code == 200

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        for _round in range(3):
            seen = [name for page in pages(admin, secrets(ns), limit=7) for name in names(page)]
            assert len(seen) == len(set(seen)), "an object was listed twice"
            assert [name for name in seen if name.endswith("-stable")] == stable
    finally:
        stop.set()
        writer.join()
    assert churned, "nothing changed while paging"


def test_selectors_apply_before_the_page_is_cut(admin: Api, cluster: Cluster) -> None:
    ns = cluster.new_project(admin, unique("select"))
    for i in range(30):
        make(admin, ns, f"s-{i:02}", {"keep": "yes"} if i % 3 == 0 else {"keep": "no"})
    seen = list(pages(admin, secrets(ns), limit=4, labelSelector="keep=yes"))
    assert [len(page["items"]) for page in seen] == [4, 4, 2]
    assert [n for page in seen for n in names(page)] == [f"s-{i:02}" for i in range(0, 30, 3)]
    one = list(pages(admin, secrets(ns), limit=2, fieldSelector="metadata.name=s-07"))
    assert [n for page in one for n in names(page)] == ["s-07"]


def test_across_namespaces_and_cluster_scoped(admin: Api, cluster: Cluster) -> None:
    first, second = (cluster.new_project(admin, unique(p)) for p in ("a-first", "b-second"))
    for ns in (first, second):
        for i in range(3):
            make(admin, ns, f"x-{i}")
    everywhere = [
        (item["metadata"]["namespace"], item["metadata"]["name"])
        for page in pages(admin, "/api/v1/secrets", limit=2)
        for item in page["items"]
    ]
    assert len(everywhere) == len(set(everywhere))
    assert [(first, f"x-{i}") for i in range(3)] + [(second, f"x-{i}") for i in range(3)] == [
        entry for entry in everywhere if entry[0] in (first, second)
    ]
    namespaces = [n for page in pages(admin, "/api/v1/namespaces", limit=3) for n in names(page)]
    assert namespaces == sorted(namespaces) and {first, second} <= set(namespaces)


def test_projects_made_per_caller_are_paged_too(cluster: Cluster) -> None:
    user = cluster.user("pager")
    mine = sorted(cluster.new_project(user.api, unique(f"p{i}")) for i in range(5))
    seen = list(pages(user.api, "/apis/project.openshift.io/v1/projects", limit=2))
    assert [len(page["items"]) for page in seen] == [2, 2, 1]
    assert [n for page in seen for n in names(page)] == mine


@pytest.mark.parametrize("token", ["nonsense", "e30=", "eyJydiI6ICJ4IiwgInN0YXJ0IjogMX0="])
def test_a_bad_continue_token_is_400(admin: Api, token: str) -> None:
    assert_status(admin.get(secrets("default"), params={"continue": token}), 400, "BadRequest")


@pytest.mark.parametrize("limit", ["-1", "x", "9" * 5000])
def test_a_bad_limit_is_400(admin: Api, limit: str) -> None:
    assert_status(admin.get(secrets("default"), params={"limit": limit}), 400, "BadRequest")


def test_a_continue_older_than_the_history_is_410_with_a_way_on(tmp_path: Path) -> None:
    # A history of 20 events: a few writes compact the first page's version away.
    with running_wharf(tmp_path / "data", "--retained-events", "20") as wharf:
        cluster = Cluster(wharf, tmp_path)
        admin = cluster.admin
        ns = cluster.new_project(admin, unique("old"))
        for i in range(6):
            make(admin, ns, f"s-{i}")
        first = admin.get(secrets(ns), params={"limit": 2}).json()
        token = first["metadata"]["continue"]
        for i in range(40):
            make(admin, ns, f"t-{i:02}")
        gone = admin.get(secrets(ns), params={"limit": 2, "continue": token})
        status = assert_status(gone, 410, "Expired", "too old")
        rest = admin.get(
            secrets(ns), params={"limit": 100, "continue": status["metadata"]["continue"]}
        )
        assert rest.status_code == 200, rest.text
        assert names(rest.json())[:4] == ["s-2", "s-3", "s-4", "s-5"]
