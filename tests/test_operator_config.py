"""The operator's kinds through the API, as a cluster administrator meets them with kubectl:
the Config, ImagePruner and ClusterOperator a new cluster starts with, their defaults, status
and discovery, and what admission refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.cluster import Cluster, Kubectl, User, assert_status
from tests.support.operator_admin import CONFIG, PRUNER, RegistryAdmin
from tests.support.server import wait_until

CONFIGS = "/apis/imageregistry.operator.openshift.io/v1/configs"


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    return cluster.kubectl()


@pytest.fixture(scope="module")
def admin(kubectl: Kubectl) -> RegistryAdmin:
    return RegistryAdmin(kubectl)


@pytest.fixture(scope="module")
def bob(cluster: Cluster) -> User:
    return cluster.user("bob")


def test_first_start_makes_a_managed_config_with_status(
    admin: RegistryAdmin, kubectl: Kubectl
) -> None:
    config = admin.config()
    spec = config["spec"]
    assert spec["managementState"] == "Managed"
    assert spec["replicas"] == 1
    assert spec["logLevel"] == spec["operatorLogLevel"] == "Normal"
    assert spec["defaultRoute"] is True and spec["readOnly"] is False
    assert spec["storage"] == {
        "pvc": {"claim": "image-registry-storage"},
        "managementState": "Managed",
    }
    assert len(spec["httpSecret"]) == 128
    status = config["status"]
    assert status["observedGeneration"] == config["metadata"]["generation"]
    assert status["readyReplicas"] == 1
    assert status["storage"]["pvc"] == {"claim": "image-registry-storage"}
    assert admin.condition("Available", config)["reason"] == "Ready"
    assert admin.condition("Progressing", config)["status"] == "False"
    assert admin.condition("Degraded", config)["status"] == "False"
    assert admin.condition("Removed", config)["status"] == "False"
    assert admin.condition("StorageExists", config)["status"] == "True"
    kubectl.run("wait", "--for=condition=Available", f"{CONFIG}/cluster", "--timeout=10s")


def test_cluster_operator_summarizes_the_registry(kubectl: Kubectl) -> None:
    table = kubectl.run("get", "clusteroperator", "image-registry").stdout.splitlines()
    assert table[0].split()[:6] == [
        "NAME",
        "VERSION",
        "AVAILABLE",
        "PROGRESSING",
        "DEGRADED",
        "SINCE",
    ]
    assert table[1].split()[:5] == ["image-registry", "0.1.0", "True", "False", "False"]
    found = kubectl.json("get", "co", "image-registry")
    kinds = {c["type"]: c for c in found["status"]["conditions"]}
    assert kinds["Available"]["reason"] == "Ready"
    assert found["status"]["versions"] == [{"name": "operator", "version": "0.1.0"}]
    related = {(r["group"], r["resource"], r["name"]) for r in found["status"]["relatedObjects"]}
    assert ("imageregistry.operator.openshift.io", "configs", "cluster") in related
    kubectl.run("wait", "--for=condition=Available", "co/image-registry", "--timeout=10s")


def test_image_pruner_defaults_and_conditions(kubectl: Kubectl) -> None:
    pruner = kubectl.json("get", PRUNER, "cluster")
    assert pruner["spec"] == {
        "schedule": "0 0 * * *",
        "suspend": False,
        "keepTagRevisions": 3,
        "keepYoungerThanDuration": "60m",
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "ignoreInvalidImageReferences": True,
        "logLevel": "Normal",
    }
    conditions = {c["type"]: c for c in pruner["status"]["conditions"]}
    assert conditions["Available"]["status"] == "True"
    # The operator runs the prune itself (wharf.operator.prune_job): next at midnight UTC.
    assert conditions["Scheduled"]["status"] == "True"
    assert conditions["Scheduled"]["reason"] == "Scheduled"
    assert re.search(
        r"The next prune runs at \d{4}-\d\d-\d\dT00:00:00Z", conditions["Scheduled"]["message"]
    )
    assert conditions["Failed"] == {**conditions["Failed"], "status": "False", "reason": "NotRun"}

    kubectl.run("patch", PRUNER, "cluster", "--type=merge", "-p", '{"spec":{"suspend":true}}')

    def suspended() -> bool:
        found = kubectl.json("get", PRUNER, "cluster")
        kinds = {c["type"]: c for c in found["status"]["conditions"]}
        return bool(
            found["status"]["observedGeneration"] == found["metadata"]["generation"]
            and kinds["Scheduled"]["reason"] == "Suspended"
        )

    wait_until(suspended, timeout=10, interval=0.2)
    bad = kubectl.run(
        "patch",
        PRUNER,
        "cluster",
        "--type=merge",
        "-p",
        '{"spec":{"schedule":"every day"}}',
        check=False,
    )
    assert bad.returncode != 0 and "spec.schedule" in bad.stderr


def test_discovery_and_explain(kubectl: Kubectl) -> None:
    resources = kubectl.run(
        "api-resources", "--api-group=imageregistry.operator.openshift.io", "-o", "name"
    ).stdout.split()
    assert sorted(resources) == [
        "configs.imageregistry.operator.openshift.io",
        "imagepruners.imageregistry.operator.openshift.io",
    ]
    explained = kubectl.run("explain", f"{CONFIG}.spec.requests.read").stdout
    assert "maxWaitInQueue" in explained and "maxRunning" in explained


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"storage": {"pvc": None}}, "spec.storage", id="no-storage"),
        pytest.param({"storage": {"emptyDir": {}}}, "spec.storage", id="two-storages"),
        pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
        pytest.param(
            {"storage": {"pvc": None, "s3": {"bucket": "b-1", "chunkSizeMiB": 4}}},
            "spec.storage.s3.chunkSizeMiB",
            id="chunk-too-small",
        ),
        pytest.param(
            {"storage": {"pvc": None, "s3": {"bucket": "b-1", "chunkSizeMiB": 5121}}},
            "spec.storage.s3.chunkSizeMiB",
            id="chunk-too-big",
        ),
        pytest.param({"rolloutStrategy": "Sideways"}, "spec.rolloutStrategy", id="rollout"),
        pytest.param({"managementState": "Forced"}, "spec.managementState", id="management"),
        pytest.param({"logLevel": "Loud"}, "spec.logLevel", id="log-level"),
        pytest.param(
            {"requests": {"write": {"maxWaitInQueue": "soon"}}},
            "spec.requests.write.maxWaitInQueue",
            id="duration",
        ),
        pytest.param(
            {"requests": {"read": {"maxInQueue": -2}}},
            "spec.requests.read.maxInQueue",
            id="negative-queue",
        ),
        pytest.param(
            {
                "routes": [
                    {"name": "a", "hostname": "a.example.com"},
                    {"name": "a", "hostname": "b.example.com"},
                ]
            },
            "spec.routes[1].name",
            id="duplicate-route",
        ),
        pytest.param({"routes": [{"name": "nohost"}]}, "spec.routes[0].hostname", id="no-hostname"),
        pytest.param(
            {"storage": {"pvc": None, "gcs": {"bucket": "x"}}}, "spec.storage.gcs", id="gcs"
        ),
    ],
)
def test_invalid_specs_are_refused_naming_the_field(
    cluster: Cluster, kubectl: Kubectl, patch: dict[str, Any], field: str
) -> None:
    before = cluster.admin.get(f"{CONFIGS}/cluster").json()
    response = cluster.admin.patch(
        f"{CONFIGS}/cluster",
        data=json.dumps({"spec": patch}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    status = assert_status(response, 422, "Invalid")
    assert field in [cause["field"] for cause in status["details"]["causes"]], status
    assert field in status["message"]
    # kubectl shows the same refusal, and nothing changed.
    refused = kubectl.run(
        "patch", CONFIG, "cluster", "--type=merge", "-p", json.dumps({"spec": patch}), check=False
    )
    assert refused.returncode != 0 and field in refused.stderr and "is invalid" in refused.stderr
    after = cluster.admin.get(f"{CONFIGS}/cluster").json()
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_only_cluster_is_a_config_name(cluster: Cluster) -> None:
    response = cluster.admin.post(
        CONFIGS,
        json={
            "apiVersion": "imageregistry.operator.openshift.io/v1",
            "kind": "Config",
            "metadata": {"name": "other"},
            "spec": {"storage": {"emptyDir": {}}},
        },
    )
    status = assert_status(response, 422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_only_cluster_admins_change_the_config(cluster: Cluster, bob: User) -> None:
    kubectl = cluster.kubectl(kubeconfig=bob.kubeconfig)
    refused = kubectl.run(
        "patch", CONFIG, "cluster", "--type=merge", "-p", '{"spec":{"readOnly":true}}', check=False
    )
    assert refused.returncode != 0 and "forbidden" in refused.stderr
    response = bob.api.patch(
        f"{CONFIGS}/cluster",
        data='{"spec":{"readOnly":true}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert_status(response, 403, "Forbidden")
    assert_status(bob.api.get(f"{CONFIGS}/cluster"), 403, "Forbidden")


def test_a_deleted_config_comes_back_with_defaults(admin: RegistryAdmin, kubectl: Kubectl) -> None:
    old_uid = admin.config()["metadata"]["uid"]
    kubectl.run("delete", CONFIG, "cluster")

    def again() -> bool:
        found = kubectl.run("get", CONFIG, "cluster", "-o", "json", check=False)
        if found.returncode != 0:
            return False
        config = json.loads(found.stdout)
        return bool(config["metadata"]["uid"] != old_uid and config.get("status"))

    wait_until(again, timeout=10, interval=0.2)
    kubectl.run("wait", "--for=condition=Available", f"{CONFIG}/cluster", "--timeout=10s")
