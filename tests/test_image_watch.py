"""Components react to pushes by watching image streams: every push reaches a watcher within a
second, through kubectl and through the official Python client."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import config as kube_config
from kubernetes import dynamic
from kubernetes.client import api_client

from tests.support.cluster import Cluster, unique
from tests.support.oci import Registry
from tests.support.server import WharfProcess

WITHIN = 1.0  # the promise: a watcher sees a push within a second


@pytest.fixture(scope="module")
def integrated(integrated_wharf: WharfProcess) -> WharfProcess:
    return integrated_wharf


@pytest.fixture(scope="module")
def cluster(integrated_wharf: WharfProcess, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return Cluster(integrated_wharf, tmp_path_factory.mktemp("watch-cluster"))


def registry_for(wharf: WharfProcess, token: str) -> Registry:
    session = requests.Session()
    session.verify = str(wharf.ca_file)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would override the CA
    session.headers["Authorization"] = f"Bearer {token}"
    return Registry(wharf.url, session)


def dynamic_client(kubeconfig: Path) -> dynamic.DynamicClient:
    client = kube_config.new_client_from_config(config_file=str(kubeconfig))
    assert isinstance(client, api_client.ApiClient)
    return dynamic.DynamicClient(client)


def test_python_client_watch_sees_each_push_within_a_second(
    integrated: WharfProcess, cluster: Cluster
) -> None:
    project = cluster.new_project(cluster.admin, unique("watch"))
    client = dynamic_client(cluster.kubeconfig(cluster.admin_token, "watcher"))
    streams = client.resources.get(api_version="image.openshift.io/v1", kind="ImageStream")
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Event()

    def watch() -> None:
        listed = streams.get(namespace=project)
        ready.set()
        for event in streams.watch(
            namespace=project, resource_version=listed.metadata.resourceVersion, timeout=20
        ):
            events.put({"type": event["type"], "object": event["object"].to_dict()})

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(10)
    registry = registry_for(integrated, cluster.admin_token)
    for number, tag in enumerate(("1.0", "1.1", "1.0")):
        pushed = registry.push_image(f"{project}/app", tag, seed=number)
        done = time.monotonic()
        while True:
            remaining = WITHIN - (time.monotonic() - done)
            event = events.get(timeout=max(remaining, 0.001))
            status = event["object"].get("status") or {}
            heads = {t["tag"]: t["items"][0]["image"] for t in status.get("tags") or []}
            if heads.get(tag) == pushed.digest:
                break
        assert event["type"] in ("ADDED", "MODIFIED")
        assert event["object"]["metadata"]["name"] == "app"


def test_kubectl_watch_sees_a_push(integrated: WharfProcess, cluster: Cluster) -> None:
    project = cluster.new_project(cluster.admin, unique("kwatch"))
    kubectl = cluster.kubectl(cluster.admin_token)
    registry = registry_for(integrated, cluster.admin_token)
    registry.push_image(f"{project}/first", "v1", seed=10)
    with kubectl.background("get", "imagestreams", "-n", project, "-w") as watch:
        watch.wait_for(lambda lines: any(line.startswith("first ") for line in lines))
        registry.push_image(f"{project}/second", "v2", seed=11)
        seen = watch.wait_for(
            lambda lines: any(line.startswith("second ") for line in lines), timeout=10
        )
        assert any("v2" in line for line in seen if line.startswith("second "))


def test_a_push_that_makes_a_stream_is_one_added_event(
    integrated: WharfProcess, cluster: Cluster
) -> None:
    # The stream is made and its tag recorded in one transaction: watchers hear of it once,
    # whole (kubectl get -w printed a new stream twice, ADDED then MODIFIED).
    project = cluster.new_project(cluster.admin, unique("once"))
    path = f"/apis/image.openshift.io/v1/namespaces/{project}/imagestreams"
    start = cluster.admin.get(path).json()["metadata"]["resourceVersion"]
    pushed = registry_for(integrated, cluster.admin_token).push_image(f"{project}/app", "v1")
    # Bounded: a watch that ends after two seconds with whatever it saw.
    response = cluster.admin.get(
        path, params={"watch": "1", "resourceVersion": start, "timeoutSeconds": "2"}
    )
    events = [json.loads(line) for line in response.text.splitlines()]
    assert [event["type"] for event in events] == ["ADDED"], events
    tags = events[0]["object"]["status"]["tags"]
    assert tags[0]["tag"] == "v1" and tags[0]["items"][0]["image"] == pushed.digest
