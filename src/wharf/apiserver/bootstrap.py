"""What a new cluster starts with, and keeps: default roles and bindings, the system
namespaces, and the cluster admin `kubeadmin`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
import yaml

from ..auth.htpasswd import Htpasswd, random_password
from ..auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, RBAC, ROLE_BINDINGS, ROLES
from ..auth.resources import NAMESPACES
from ..db.objects import Key, ObjectStore
from .meta import new_uid, now
from .project_kinds import populate_project

log = structlog.get_logger("wharf.bootstrap")

AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
# A cluster's own namespaces, as Kubernetes and OpenShift make them.
SYSTEM_NAMESPACES = (
    "default",
    "kube-system",
    "kube-public",
    "openshift",
    "openshift-config",
    "openshift-image-registry",
)
KUBEADMIN = "kubeadmin"


def default_rbac() -> list[dict[str, Any]]:
    items = []
    for name in ("openshift_roles.yaml", "wharf_roles.yaml"):
        text = resources.files("wharf.auth").joinpath(name).read_text()
        # libyaml's loader: the pure-Python one took a tenth of a second of every start.
        items += yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["items"]
    return items


def _same_policy(a: dict[str, Any], b: dict[str, Any]) -> bool:
    fields = ("rules", "aggregationRule", "roleRef", "subjects")
    return all(a.get(f) == b.get(f) for f in fields) and (
        a["metadata"].get("labels") == b["metadata"].get("labels")
    )


async def reconcile_rbac(store: ObjectStore) -> None:
    """Install the default roles and bindings; bring back to default those still marked for
    automatic update (as Kubernetes does at every start)."""
    async with store.transaction() as tx:
        for item in default_rbac():
            resource = CLUSTER_ROLES if item["kind"] == "ClusterRole" else CLUSTER_ROLE_BINDINGS
            key = Key(resource, "", item["metadata"]["name"])
            current = await tx.get(key)
            if current is None:
                item["metadata"].update(uid=new_uid(), creationTimestamp=now(), generation=1)
                item["metadata"].setdefault("annotations", {})[AUTOUPDATE] = "true"
                await tx.create(key, item)
                continue
            if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
                continue
            if not _same_policy(current, item):
                for kept in ("uid", "creationTimestamp", "generation", "annotations"):
                    if kept in current["metadata"]:
                        item["metadata"][kept] = current["metadata"][kept]
                await tx.update(key, item)


async def ensure_namespaces(store: ObjectStore) -> None:
    for name in SYSTEM_NAMESPACES:
        key = Key(NAMESPACES, "", name)
        if await store.get(key) is not None:
            continue
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": new_uid(),
                "creationTimestamp": now(),
                "generation": 1,
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        async with store.transaction() as tx:
            await tx.create(key, namespace)
            await populate_project(tx, name, None)


async def ensure_route(store: ObjectStore, host: str) -> None:
    """The registry's route, `default-route` in openshift-image-registry, with `host` as its
    host: clients outside reach the registry there."""
    key = Key("routes.route.openshift.io", "openshift-image-registry", "default-route")
    current = await store.get(key)
    spec = {
        "host": host,
        "to": {"kind": "Service", "name": "image-registry", "weight": 100},
        "port": {"targetPort": "5000-tcp"},
        "tls": {"termination": "reencrypt"},
        "wildcardPolicy": "None",
    }
    async with store.transaction() as tx:
        if current is None:
            await tx.create(
                key,
                {
                    "apiVersion": "route.openshift.io/v1",
                    "kind": "Route",
                    "metadata": {
                        "name": "default-route",
                        "namespace": "openshift-image-registry",
                        "uid": new_uid(),
                        "creationTimestamp": now(),
                        "generation": 1,
                        "annotations": {"imageregistry.openshift.io": "true"},
                    },
                    "spec": spec,
                    "status": {
                        "ingress": [
                            {
                                "host": host,
                                "routerName": "wharf",
                                "conditions": [
                                    {
                                        "type": "Admitted",
                                        "status": "True",
                                        "lastTransitionTime": now(),
                                    }
                                ],
                            }
                        ]
                    },
                },
            )
        elif (current.get("spec") or {}).get("host") != host:
            current["spec"] = {**(current.get("spec") or {}), "host": host}
            current["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            await tx.update(key, current)
    await ensure_route_readable(store)


ROUTE_READER = "system:registry-route-reader"


async def ensure_route_readable(store: ObjectStore) -> None:
    """Every logged-in user may read the registry's route: they need its host to log in to and
    push to the registry (`wharf -n openshift-image-registry get route default-route`)."""
    namespace = "openshift-image-registry"
    meta = {"namespace": namespace, "name": ROUTE_READER}
    objects: list[tuple[Key, dict[str, Any]]] = [
        (
            Key(ROLES, namespace, ROUTE_READER),
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "Role",
                "rules": [
                    {
                        "apiGroups": ["route.openshift.io"],
                        "resources": ["routes"],
                        "resourceNames": ["default-route"],
                        "verbs": ["get"],
                    }
                ],
            },
        ),
        (
            Key(ROLE_BINDINGS, namespace, ROUTE_READER),
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": ROUTE_READER},
                "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": "system:authenticated"}],
            },
        ),
    ]
    async with store.transaction() as tx:
        for key, body in objects:
            if await tx.get(key) is None:
                body["metadata"] = {
                    **meta,
                    "uid": new_uid(),
                    "creationTimestamp": now(),
                    "generation": 1,
                }
                # Another process starting beside this one may make it at the same moment.
                await tx.get_or_create(key, body)


def ensure_kubeadmin(htpasswd: Htpasswd, data_dir: Path) -> str | None:
    """Create kubeadmin with a random password on first start; return the password then."""
    if htpasswd.has(KUBEADMIN):
        return None
    password = random_password()
    htpasswd.set_password(KUBEADMIN, password)
    path = data_dir / "auth" / "kubeadmin-password"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(password)
    return password
