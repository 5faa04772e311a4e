"""The registry's Config as the operator reads it (typed, defaults filled in), and the objects a
new cluster starts with: the Config and the ImagePruner, from the settings of the first start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ..apiserver.meta import Object, new_uid, now
from ..apiserver.operator_kinds import (
    CLUSTER,
    CONFIG,
    IMAGE_PRUNER,
    config_defaults,
    pruner_defaults,
)
from ..db.objects import Key
from ..kube import duration_seconds
from ..settings import Settings

CONFIG_KEY = Key(CONFIG.resource, "", CLUSTER)
PRUNER_KEY = Key(IMAGE_PRUNER.resource, "", CLUSTER)
# The claim OpenShift's operator makes when it provisions a volume itself; Wharf's disk is
# its data directory, which outlives the process as a claim outlives a pod.
LOCAL_CLAIM = "image-registry-storage"


@dataclass(frozen=True)
class Limits:
    max_running: int = 0
    max_in_queue: int = 0
    max_wait: float = 0.0

    @classmethod
    def parse(cls, value: Any) -> Limits:
        value = value if isinstance(value, dict) else {}
        wait = value.get("maxWaitInQueue") or "0"
        return cls(
            int(value.get("maxRunning") or 0),
            int(value.get("maxInQueue") or 0),
            duration_seconds(str(wait)),
        )


@dataclass(frozen=True)
class ExtraRoute:
    name: str
    hostname: str
    secret_name: str


@dataclass(frozen=True)
class RegistrySpec:
    """The Config's spec, validated at admission, as the operator applies it."""

    generation: int
    management_state: str
    log_level: str
    operator_log_level: str
    replicas: int
    read_only: bool
    disable_redirect: bool
    default_route: bool
    routes: tuple[ExtraRoute, ...]
    reads: Limits
    writes: Limits
    storage: dict[str, Any]
    # The storage the registry serves from now (status.storage): another than `storage` while
    # the operator switches to it; empty before its first reconcile.
    in_use: dict[str, Any]

    @property
    def switching_storage(self) -> bool:
        return (
            self.management_state == "Managed"
            and bool(self.in_use)
            and not same_backend(self.storage, self.in_use)
        )

    @classmethod
    def parse(cls, obj: Object) -> RegistrySpec:
        spec = dict(obj.get("spec") or {})
        config_defaults(spec)
        requests = spec.get("requests") or {}
        return cls(
            generation=int(obj.get("metadata", {}).get("generation", 1)),
            management_state=spec["managementState"],
            log_level=spec["logLevel"],
            operator_log_level=str(spec.get("operatorLogLevel") or "Normal"),
            replicas=int(spec["replicas"]),
            read_only=bool(spec.get("readOnly")),
            disable_redirect=bool(spec.get("disableRedirect")),
            default_route=bool(spec.get("defaultRoute")),
            routes=tuple(
                ExtraRoute(r["name"], r.get("hostname") or "", r.get("secretName") or "")
                for r in spec.get("routes") or []
            ),
            reads=Limits.parse(requests.get("read")),
            writes=Limits.parse(requests.get("write")),
            storage=dict(spec.get("storage") or {}),
            in_use=dict((obj.get("status") or {}).get("storage") or {}),
        )

    @property
    def s3(self) -> dict[str, Any] | None:
        found = self.storage.get("s3")
        return dict(found) if isinstance(found, dict) else None


def storage_of(settings: Settings) -> dict[str, Any]:
    """The storage the settings name, in the Config's terms."""
    if settings.storage != "s3":
        return {"pvc": {"claim": LOCAL_CLAIM}, "managementState": "Managed"}
    s3 = settings.s3
    found: dict[str, Any] = {
        "bucket": s3.bucket,
        "region": s3.region,
        "chunkSizeMiB": s3.chunk_size_mib,
        "encrypt": s3.encrypt,
        "virtualHostedStyle": s3.virtual_hosted_style,
    }
    if s3.region_endpoint:
        found["regionEndpoint"] = s3.region_endpoint
    if s3.key_id:
        found["keyID"] = s3.key_id
    # No managementState yet: the operator decides it at the first reconcile, as OpenShift's
    # does (a bucket that exists already is the user's: Unmanaged; one it creates: Managed).
    return {"s3": found}


def settings_for(settings: Settings, storage: dict[str, Any]) -> Settings:
    """`settings` with the storage a Config names (the inverse of `storage_of`)."""
    s3 = storage.get("s3")
    if not isinstance(s3, dict):
        return settings.model_copy(update={"storage": "filesystem"})
    named = settings.s3.model_copy(
        update={
            "bucket": s3.get("bucket") or "",
            "region": s3.get("region") or settings.s3.region,
            "region_endpoint": s3.get("regionEndpoint") or None,
            "chunk_size_mib": int(s3.get("chunkSizeMiB") or settings.s3.chunk_size_mib),
            "encrypt": bool(s3.get("encrypt")),
            "key_id": s3.get("keyID") or None,
            "virtual_hosted_style": bool(s3.get("virtualHostedStyle")),
        }
    )
    return settings.model_copy(update={"storage": "s3", "s3": named})


def same_backend(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two storage stanzas name the same place for blobs (local disk, or one bucket
    at one endpoint); the other S3 fields are settings of that place."""
    a_s3, b_s3 = a.get("s3"), b.get("s3")
    if not isinstance(a_s3, dict) or not isinstance(b_s3, dict):
        return not isinstance(a_s3, dict) and not isinstance(b_s3, dict)
    keys = ("bucket", "regionEndpoint")
    return all((a_s3.get(k) or "") == (b_s3.get(k) or "") for k in keys)


def _new(kind_api: str, kind: str, spec: Object) -> Object:
    return {
        "apiVersion": kind_api,
        "kind": kind,
        "metadata": {
            "name": CLUSTER,
            "uid": new_uid(),
            "creationTimestamp": now(),
            "generation": 1,
        },
        "spec": spec,
    }


def first_config(settings: Settings) -> Object:
    """The Config of a new cluster: managed, as many replicas (worker processes) as the first
    server started with, the storage and log level of the settings, and the default route on
    (Wharf's documented workflow logs in to its host)."""
    spec: Object = {
        "managementState": "Managed",
        "logLevel": settings.log_level,
        "operatorLogLevel": "Normal",
        "replicas": settings.workers,
        "rolloutStrategy": "RollingUpdate",
        "httpSecret": secrets.token_hex(64),
        "storage": storage_of(settings),
        "defaultRoute": True,
        "disableRedirect": settings.storage == "s3" and settings.s3.disable_redirect,
        "readOnly": False,
        "requests": {
            "read": {"maxRunning": 0, "maxInQueue": 0, "maxWaitInQueue": "0s"},
            "write": {"maxRunning": 0, "maxInQueue": 0, "maxWaitInQueue": "0s"},
        },
    }
    config_defaults(spec)
    return _new(CONFIG.api_version, CONFIG.kind, spec)


def first_pruner() -> Object:
    spec: Object = {}
    pruner_defaults(spec)
    return _new(IMAGE_PRUNER.api_version, IMAGE_PRUNER.kind, spec)
