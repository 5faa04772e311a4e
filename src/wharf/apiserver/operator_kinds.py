"""The operator's kinds: imageregistry.operator.openshift.io/v1 Config and ImagePruner (the
registry's and the pruner's settings, each one object named `cluster`), and
config.openshift.io/v1 ClusterOperator (the summary the operator writes). Field names, enums
and bounds are OpenShift's (openshift/api imageregistry/v1, config/v1); what Wharf cannot do
(gcs, azure, swift storage; a route without a hostname, for Wharf has no router) is refused
here rather than accepted and ignored."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..kube import duration_seconds
from .kinds import Column, Kind, Strategy
from .meta import Object, subdomain_problem
from .shapes import ANY, INT, MAP, B, S, Shape, top
from .tables import age

GROUP = "imageregistry.operator.openshift.io"
CONFIG_GROUP = "config.openshift.io"
# The one name the operator acts on, as in OpenShift.
CLUSTER = "cluster"

MANAGEMENT_STATES = ("Managed", "Unmanaged", "Removed")
LOG_LEVELS = ("Normal", "Debug", "Trace", "TraceAll")
ROLLOUT_STRATEGIES = ("RollingUpdate", "Recreate")
STORAGE_MANAGEMENT_STATES = ("Managed", "Unmanaged")
# The storage kinds OpenShift knows; Wharf serves the first three (emptyDir and pvc both name
# its local disk, under the data directory).
SERVED_STORAGE = ("emptyDir", "pvc", "s3")
OTHER_STORAGE = ("gcs", "swift", "azure", "ibmcos", "oss")
MIN_CHUNK_MIB, MAX_CHUNK_MIB = 5, 5120

_CONDITION: Shape = {
    "type": S,
    "status": S,
    "lastTransitionTime": "time",
    "reason": S,
    "message": S,
}
_LIMITS: Shape = {"maxRunning": INT, "maxInQueue": INT, "maxWaitInQueue": S}
_S3: Shape = {
    "bucket": S,
    "region": S,
    "regionEndpoint": S,
    "chunkSizeMiB": INT,
    "encrypt": B,
    "keyID": S,
    "virtualHostedStyle": B,
    "cloudFront": ANY,
    "trustedCA": {"name": S},
}
_STORAGE: Shape = {
    "managementState": S,
    "emptyDir": {},
    "pvc": {"claim": S},
    "s3": _S3,
    **{other: ANY for other in OTHER_STORAGE},
}
_OPERATOR_STATUS: dict[str, Shape] = {
    "observedGeneration": INT,
    "conditions": [_CONDITION],
    "version": S,
    "readyReplicas": INT,
    "latestAvailableRevision": INT,
    "generations": [ANY],
}

CONFIG_SHAPE = top(
    spec={
        "managementState": S,
        "logLevel": S,
        "operatorLogLevel": S,
        "unsupportedConfigOverrides": ANY,
        "observedConfig": ANY,
        "httpSecret": S,
        "proxy": {"http": S, "https": S, "noProxy": S},
        "storage": _STORAGE,
        "readOnly": B,
        "disableRedirect": B,
        "requests": {"read": _LIMITS, "write": _LIMITS},
        "defaultRoute": B,
        "routes": [{"name": S, "hostname": S, "secretName": S}],
        "replicas": INT,
        "logging": INT,
        "resources": ANY,
        "nodeSelector": MAP,
        "tolerations": [ANY],
        "rolloutStrategy": S,
        "affinity": ANY,
        "topologySpreadConstraints": [ANY],
    },
    status={**_OPERATOR_STATUS, "storageManaged": B, "storage": _STORAGE},
)

PRUNER_SHAPE = top(
    spec={
        "schedule": S,
        "suspend": B,
        "keepTagRevisions": INT,
        "keepYoungerThan": INT,
        "keepYoungerThanDuration": S,
        "resources": ANY,
        "affinity": ANY,
        "nodeSelector": MAP,
        "tolerations": [ANY],
        "successfulJobsHistoryLimit": INT,
        "failedJobsHistoryLimit": INT,
        "ignoreInvalidImageReferences": B,
        "logLevel": S,
    },
    status={"observedGeneration": INT, "conditions": [_CONDITION]},
)

CLUSTER_OPERATOR_SHAPE = top(
    spec={},
    status={
        "conditions": [_CONDITION],
        "versions": [{"name": S, "version": S}],
        "relatedObjects": [{"group": S, "resource": S, "namespace": S, "name": S}],
        "extension": ANY,
    },
)


Problems = list[tuple[str, str]]


def _one_of(value: Any, allowed: tuple[str, ...], where: str, problems: Problems) -> None:
    if value not in (None, "") and value not in allowed:
        quoted = ", ".join(f'"{a}"' for a in allowed)
        problems.append((where, f'Unsupported value: "{value}": supported values: {quoted}'))


def _not_negative(value: Any, where: str, problems: Problems) -> None:
    if isinstance(value, int) and value < 0:
        problems.append((where, f"Invalid value: {value}: must be greater than or equal to 0"))


def _duration(value: Any, where: str, problems: Problems) -> None:
    if value in (None, ""):
        return
    try:
        duration_seconds(str(value))
    except ValueError:
        problems.append((where, f'Invalid value: "{value}": a duration such as 30s, 1m or 1h'))


def storage_problems(storage: Any, where: str = "spec.storage") -> Problems:
    problems: Problems = []
    if not isinstance(storage, dict):
        return [(where, "Required value: exactly one storage type must be configured")]
    _one_of(
        storage.get("managementState"),
        STORAGE_MANAGEMENT_STATES,
        f"{where}.managementState",
        problems,
    )
    named = [k for k in (*SERVED_STORAGE, *OTHER_STORAGE) if storage.get(k) is not None]
    if not named:
        problems.append(
            (
                where,
                "Required value: exactly one storage type must be configured (emptyDir, pvc or s3)",
            )
        )
    elif len(named) > 1:
        problems.append(
            (
                where,
                f"Invalid value: {', '.join(named)}: exactly one storage type may be configured",
            )
        )
    for other in named:
        if other in OTHER_STORAGE:
            problems.append(
                (f"{where}.{other}", "Unsupported value: Wharf stores blobs on its disk or in S3")
            )
    s3 = storage.get("s3")
    if isinstance(s3, dict):
        chunk = s3.get("chunkSizeMiB")
        if chunk is not None and not MIN_CHUNK_MIB <= chunk <= MAX_CHUNK_MIB:
            problems.append(
                (
                    f"{where}.s3.chunkSizeMiB",
                    f"Invalid value: {chunk}: must be between {MIN_CHUNK_MIB} and {MAX_CHUNK_MIB}",
                )
            )
        bucket = s3.get("bucket") or ""
        if bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            problems.append(
                (f"{where}.s3.bucket", f'Invalid value: "{bucket}": not an S3 bucket name')
            )
        if s3.get("keyID") and not s3.get("encrypt"):
            problems.append((f"{where}.s3.keyID", "Invalid value: keyID needs encrypt: true"))
    return problems


def config_problems(spec: Any) -> Problems:
    """What is wrong with a Config's spec, as (field, message) pairs."""
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    problems: Problems = []
    _one_of(spec.get("managementState"), MANAGEMENT_STATES, "spec.managementState", problems)
    for level in ("logLevel", "operatorLogLevel"):
        _one_of(spec.get(level), LOG_LEVELS, f"spec.{level}", problems)
    _one_of(spec.get("rolloutStrategy"), ROLLOUT_STRATEGIES, "spec.rolloutStrategy", problems)
    _not_negative(spec.get("replicas"), "spec.replicas", problems)
    problems += storage_problems(spec.get("storage"))
    for direction in ("read", "write"):
        limits = (spec.get("requests") or {}).get(direction) or {}
        where = f"spec.requests.{direction}"
        _not_negative(limits.get("maxRunning"), f"{where}.maxRunning", problems)
        _not_negative(limits.get("maxInQueue"), f"{where}.maxInQueue", problems)
        _duration(limits.get("maxWaitInQueue"), f"{where}.maxWaitInQueue", problems)
    seen: set[str] = set()
    for index, route in enumerate(spec.get("routes") or []):
        where = f"spec.routes[{index}]"
        name = route.get("name") or ""
        if not name:
            problems.append((f"{where}.name", "Required value"))
        elif (problem := subdomain_problem(name)) is not None:
            problems.append((f"{where}.name", f'Invalid value: "{name}": {problem}'))
        elif name in seen or name == "default-route":
            problems.append((f"{where}.name", f'Duplicate value: "{name}"'))
        seen.add(name)
        hostname = route.get("hostname") or ""
        if not hostname:
            # OpenShift's router would make one up; Wharf has no router and no apps domain.
            problems.append(
                (f"{where}.hostname", "Required value: Wharf has no router to name one")
            )
        elif (problem := subdomain_problem(hostname)) is not None:
            problems.append((f"{where}.hostname", f'Invalid value: "{hostname}": {problem}'))
        secret = route.get("secretName") or ""
        if secret and (problem := subdomain_problem(secret)) is not None:
            problems.append((f"{where}.secretName", f'Invalid value: "{secret}": {problem}'))
    return problems


def _cron_problem(schedule: str) -> str | None:
    if schedule.startswith("@"):
        known = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
        return None if schedule in known else "not a known @ schedule"
    fields = schedule.split()
    if len(fields) != 5:
        return "expected 5 fields (minute hour day-of-month month day-of-week)"
    for item in fields:
        if not re.fullmatch(r"[0-9A-Za-z*/,?-]+", item):
            return f"invalid field {item!r}"
    return None


def pruner_problems(spec: Any) -> Problems:
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    problems: Problems = []
    schedule = spec.get("schedule") or ""
    if schedule and (problem := _cron_problem(schedule)) is not None:
        problems.append(("spec.schedule", f'Invalid value: "{schedule}": {problem}'))
    for name in ("keepTagRevisions", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        _not_negative(spec.get(name), f"spec.{name}", problems)
    _duration(spec.get("keepYoungerThanDuration"), "spec.keepYoungerThanDuration", problems)
    _one_of(spec.get("logLevel"), LOG_LEVELS, "spec.logLevel", problems)
    return problems


def _only_cluster(name: str) -> str | None:
    return None if name == CLUSTER else f'must be "{CLUSTER}": the operator acts on no other'


class _SingletonStrategy(Strategy):
    """A kind of one object, named `cluster`, whose spec gets defaults and is validated."""

    def __init__(self, defaults: Callable[[Object], None], problems: Callable[[Any], Problems]):
        self._defaults = defaults
        self._problems = problems

    def name_problem(self, name: str) -> str | None:
        return subdomain_problem(name) or _only_cluster(name)

    def prepare_create(self, obj: Object) -> None:
        self._defaults(obj.setdefault("spec", {}))

    def prepare_update(self, new: Object, old: Object) -> None:
        if isinstance(new.get("spec"), dict):
            self._defaults(new["spec"])

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        return self._problems(obj.get("spec"))


def config_defaults(spec: Object) -> None:
    """What OpenShift's CRD fills in when a field is left out."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("managementState", "Managed")
    spec.setdefault("logLevel", "Normal")
    spec.setdefault("operatorLogLevel", "Normal")
    spec.setdefault("replicas", 1)
    storage = spec.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("s3"), dict):
        storage["s3"].setdefault("chunkSizeMiB", 10)


def pruner_defaults(spec: Object) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("schedule", "0 0 * * *")
    spec.setdefault("suspend", False)
    spec.setdefault("keepTagRevisions", 3)
    spec.setdefault("keepYoungerThanDuration", "60m")
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 3)
    spec.setdefault("ignoreInvalidImageReferences", True)
    spec.setdefault("logLevel", "Normal")


def condition_of(obj: Object, kind: str) -> Object:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _condition_cell(kind: str) -> Callable[[Object], Any]:
    return lambda obj: condition_of(obj, kind).get("status", "")


class ClusterOperatorStrategy(Strategy):
    def columns(self) -> list[Column]:
        def version(obj: Object) -> str:
            versions = (obj.get("status") or {}).get("versions") or []
            return str(versions[0].get("version", "")) if versions else ""

        def since(obj: Object) -> str:
            moment = condition_of(obj, "Available").get("lastTransitionTime")
            return age({"metadata": {"creationTimestamp": moment}})

        def message(obj: Object) -> str:
            for kind in ("Degraded", "Progressing", "Available"):
                found = condition_of(obj, kind)
                bad = found.get("status") == ("False" if kind == "Available" else "True")
                if bad and found.get("message"):
                    return str(found["message"])
            return ""

        return [
            Column("Version", "string", version),
            Column("Available", "string", _condition_cell("Available")),
            Column("Progressing", "string", _condition_cell("Progressing")),
            Column("Degraded", "string", _condition_cell("Degraded")),
            Column("Since", "string", since),
            Column("Message", "string", message),
        ]


CONFIG = Kind(
    GROUP,
    "v1",
    "Config",
    "configs",
    namespaced=False,
    strategy=_SingletonStrategy(config_defaults, config_problems),
    subresources=("status",),
    shape=CONFIG_SHAPE,
)
IMAGE_PRUNER = Kind(
    GROUP,
    "v1",
    "ImagePruner",
    "imagepruners",
    namespaced=False,
    strategy=_SingletonStrategy(pruner_defaults, pruner_problems),
    subresources=("status",),
    shape=PRUNER_SHAPE,
)
CLUSTER_OPERATOR = Kind(
    CONFIG_GROUP,
    "v1",
    "ClusterOperator",
    "clusteroperators",
    namespaced=False,
    short_names=("co",),
    strategy=ClusterOperatorStrategy(),
    subresources=("status",),
    shape=CLUSTER_OPERATOR_SHAPE,
)
OPERATOR_KINDS = (CONFIG, IMAGE_PRUNER, CLUSTER_OPERATOR)
