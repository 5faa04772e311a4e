"""The registry's Routes in openshift-image-registry, owned by the operator (annotated
`imageregistry.openshift.io`): `default-route` when defaultRoute is on, one per routes[] entry,
and none that the Config no longer names. Each extra route's host is served a certificate of
its own: the one in its secretName (a kubernetes.io/tls Secret in openshift-image-registry),
or one the operator issues from Wharf's CA."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ..apiserver.meta import Object, new_uid, now
from ..db.objects import Key, ObjectStore, Transaction
from ..tls import Certificates
from .config import RegistrySpec

NAMESPACE = "openshift-image-registry"
DEFAULT_ROUTE = "default-route"
ROUTES = "routes.route.openshift.io"
SECRETS = "secrets"
OWNED = "imageregistry.openshift.io"


@dataclass(frozen=True)
class WantedRoute:
    name: str
    host: str
    secret_name: str = ""


def wanted_routes(spec: RegistrySpec, public_host: str) -> list[WantedRoute]:
    if spec.management_state == "Removed":
        return []  # Removed: the operator's objects go
    found = [WantedRoute(DEFAULT_ROUTE, public_host)] if spec.default_route else []
    found += [WantedRoute(r.name, r.hostname, r.secret_name) for r in spec.routes]
    return found


def _route_spec(route: WantedRoute) -> Object:
    return {
        "host": route.host,
        "to": {"kind": "Service", "name": "image-registry", "weight": 100},
        "port": {"targetPort": "5000-tcp"},
        "tls": {"termination": "reencrypt"},
        "wildcardPolicy": "None",
    }


def _admitted(host: str, moment: str) -> Object:
    return {
        "ingress": [
            {
                "host": host,
                "routerName": "wharf",
                "wildcardPolicy": "None",
                "conditions": [
                    {"type": "Admitted", "status": "True", "lastTransitionTime": moment}
                ],
            }
        ]
    }


async def _apply_route(tx: Transaction, route: WantedRoute) -> None:
    key = Key(ROUTES, NAMESPACE, route.name)
    current = await tx.get(key)
    spec = _route_spec(route)
    if current is None:
        # Another operator (a replica beside this one) may make it at the same moment.
        await tx.get_or_create(
            key,
            {
                "apiVersion": "route.openshift.io/v1",
                "kind": "Route",
                "metadata": {
                    "name": route.name,
                    "namespace": NAMESPACE,
                    "uid": new_uid(),
                    "creationTimestamp": now(),
                    "generation": 1,
                    "annotations": {OWNED: "true"},
                },
                "spec": spec,
                "status": _admitted(route.host, now()),
            },
        )
        return
    annotations = current["metadata"].get("annotations") or {}
    if current.get("spec") == spec and annotations.get(OWNED) == "true":
        return
    current["spec"] = spec
    current["metadata"]["annotations"] = {**annotations, OWNED: "true"}
    current["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
    current["status"] = _admitted(route.host, now())
    await tx.update(key, current)


async def reconcile_routes(objects: ObjectStore, wanted: list[WantedRoute]) -> None:
    names = {route.name for route in wanted}
    existing, _ = await objects.items(ROUTES, NAMESPACE)
    async with objects.transaction() as tx:
        for route in wanted:
            await _apply_route(tx, route)
        for obj in existing:
            meta = obj["metadata"]
            owned = (meta.get("annotations") or {}).get(OWNED) == "true"
            if owned and meta["name"] not in names:
                await tx.delete(Key(ROUTES, NAMESPACE, meta["name"]))


def _secret_pair(secret: Object) -> tuple[bytes, bytes] | None:
    data = secret.get("data") or {}
    try:
        cert = base64.b64decode(data.get("tls.crt", ""), validate=True)
        key = base64.b64decode(data.get("tls.key", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    return (cert, key) if cert and key else None


async def reconcile_certificates(
    objects: ObjectStore, certificates: Certificates, wanted: list[WantedRoute]
) -> list[str]:
    """Serve each extra route's certificate; returns what is wrong (a missing secret)."""
    problems: list[str] = []
    hosts = set()
    for route in wanted:
        if route.name == DEFAULT_ROUTE or not route.host:
            continue  # the default route's host is the registry's own: its main certificate
        hosts.add(route.host.lower())
        if route.secret_name:
            secret = await objects.get(Key(SECRETS, NAMESPACE, route.secret_name))
            pair = _secret_pair(secret) if secret is not None else None
            if pair is None:
                problems.append(
                    f"route {route.name}: secret {NAMESPACE}/{route.secret_name} with tls.crt "
                    "and tls.key not found"
                )
                continue
            certificates.install_route(route.host, *pair)
        elif route.host.lower() not in certificates.route_hosts():
            certificates.install_route(route.host, *certificates.issue([route.host]))
    for host in certificates.route_hosts():
        if host not in hosts:
            certificates.remove_route(host)
    return problems
