"""Lists and watches stay consistent across processes: a list at resourceVersion R and a watch
from R, replayed, give exactly the state that a later list shows, with every change delivered
once and in order, while four worker processes write at the same time. The watch is served by
one worker; most writes land on the others."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import requests

from tests.support.cluster import Api, Cluster, unique
from tests.support.server import running_wharf, wait_until
from tests.test_workers import wait_for_workers

WRITERS = 4
WRITES = 40  # per writer


def configmap(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }


def write(api: Api, path: str, writer: int, acknowledged: list[int], lock: threading.Lock) -> None:
    """Creates, updates and deletes, each on a new connection (so on any worker); the
    resourceVersions of those acknowledged with an object."""
    rng = random.Random(writer)
    mine: list[str] = []
    for n in range(WRITES):
        action = rng.random()
        headers = {"Connection": "close"}
        if mine and action < 0.3:
            name = rng.choice(mine)
            answer = api.put(f"{path}/{name}", json=configmap(name, str(n)), headers=headers)
        elif mine and action < 0.45:
            name = mine.pop(rng.randrange(len(mine)))
            answer = api.delete(f"{path}/{name}", headers=headers)
            assert answer.status_code == 200, answer.text
            continue
        else:
            name = f"w{writer}-{n}"
            mine.append(name)
            answer = api.post(path, json=configmap(name, str(n)), headers=headers)
        assert answer.status_code in (200, 201), answer.text
        with lock:
            acknowledged.append(int(answer.json()["metadata"]["resourceVersion"]))


def state_of(items: list[dict[str, Any]]) -> dict[str, str]:
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items}


def test_list_then_watch_replays_to_the_final_state_while_four_processes_write(
    tmp_path: Path,
) -> None:
    with running_wharf(tmp_path / "data", workers=WRITERS) as wharf:
        wait_for_workers(wharf, WRITERS)
        cluster = Cluster(wharf, tmp_path)
        admin = cluster.admin
        namespace = cluster.new_project(admin, unique("consistent"))
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        acknowledged: list[int] = []
        lock = threading.Lock()
        writers = [
            threading.Thread(target=write, args=(admin_api(cluster), path, w, acknowledged, lock))
            for w in range(WRITERS)
        ]
        for thread in writers:
            thread.start()
        # The list is taken while the writers write.
        wait_until(lambda: len(acknowledged) >= 10, timeout=30)
        listed = admin.get(path).json()
        start = int(listed["metadata"]["resourceVersion"])
        events: list[dict[str, Any]] = []
        watcher = threading.Thread(target=follow, args=(admin_api(cluster), path, start, events))
        watcher.start()
        for thread in writers:
            thread.join(timeout=120)
        final = admin.get(path).json()
        newest = int(final["metadata"]["resourceVersion"])
        # The list replayed with the watch becomes what a later list shows.
        wait_until(lambda: replay(listed, list(events)) == state_of(final["items"]), timeout=10)

        versions = [version(event) for event in events]
        assert versions == sorted(set(versions)), "out of order, or twice"
        assert all(start < v <= newest for v in versions)
        # Every acknowledged write after the list, exactly once.
        after = sorted(v for v in acknowledged if v > start)
        assert [v for v in versions if v in set(after)] == after


def replay(listed: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, str]:
    state = state_of(listed["items"])
    for event in events:
        name = event["object"]["metadata"]["name"]
        if event["type"] == "DELETED":
            assert name in state, f"{name} deleted but never seen"
            del state[name]
        else:
            state[name] = event["object"]["metadata"]["resourceVersion"]
    return state


def admin_api(cluster: Cluster) -> Api:
    """A session of its own for a thread (requests sessions are not shared across threads)."""
    return cluster.api(cluster.admin_token)


def follow(api: Api, path: str, start: int, events: list[dict[str, Any]]) -> None:
    query = {"watch": "true", "resourceVersion": str(start), "timeoutSeconds": "60"}
    try:
        with api.get(path, params=query, stream=True, timeout=90) as response:
            for line in response.iter_lines():
                if line:
                    events.append(json.loads(line))
    except requests.RequestException:
        pass  # the test ends the server while the watch still runs


def version(event: dict[str, Any]) -> int:
    return int(event["object"]["metadata"]["resourceVersion"])
