"""core/v1 ResourceQuota and LimitRange: what a project may hold of images.

A ResourceQuota's `status` is never stored: `status.hard` is its spec's, and `status.used` is
counted when the quota is read, so it is always current (Kubernetes' quota controller catches
up a moment later instead). What the quotas and limits refuse is decided in
wharf.images.admission, inside the transaction of the write they would refuse."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from ..images.admission import count_of
from ..images.limits import IMAGE_STREAM_COUNTS
from ..images.quantity import canonical_quantity, format_decimal, parse_quantity
from ..images.streams import IMAGE_STREAMS
from .kinds import Column, Kind, Strategy
from .meta import Object
from .resources import Call, Resource
from .shapes import ANY, S, top
from .tables import AGE

# A resource name: a qualified name, as Kubernetes validates the keys of a ResourceList.
_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_QUANTITY_MESSAGE = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)

# Scopes select pods only (Kubernetes'); the resources they may be combined with.
QUOTA_SCOPES = (
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
)
_POD_RESOURCES = re.compile(
    r"pods|count/pods|(requests\.|limits\.)?(cpu|memory|ephemeral-storage)|"
    r"(requests\.)?hugepages-.+"
)


def resource_name_problem(name: str) -> str | None:
    prefix, slash, part = name.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not _NAME_PART.fullmatch(part):
        return _NAME_MESSAGE
    return None


def _quoted(value: Any) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


def quantity_problems(field: str, values: Any) -> list[tuple[str, str]]:
    """The problems of a ResourceList at `field`: names, quantities, and no negative one."""
    if values is None:
        return []
    if not isinstance(values, dict):
        return [(field, "Invalid value: must be a map of resource names to quantities")]
    problems = []
    for name, value in values.items():
        where = f"{field}[{name}]"
        name_problem = resource_name_problem(str(name))
        if name_problem:
            problems.append((where, f"Invalid value: {_quoted(name)}: {name_problem}"))
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append((where, f"Invalid value: {_quoted(value)}: {_QUANTITY_MESSAGE}"))
            continue
        try:
            amount = parse_quantity(str(value))
        except ValueError:
            problems.append((where, f"Invalid value: {_quoted(value)}: {_QUANTITY_MESSAGE}"))
            continue
        if amount < 0:
            problems.append(
                (where, f"Invalid value: {_quoted(value)}: must be greater than or equal to 0")
            )
    return problems


def canonical_list(values: Any) -> Any:
    """A ResourceList with its quantities as Kubernetes stores them (`1000` -> `1k`); what is
    not a valid quantity is left for validation to name."""
    if not isinstance(values, dict):
        return values
    result = {}
    for name, value in values.items():
        try:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise ValueError(value)
            result[name] = canonical_quantity(str(value))
        except ValueError:
            result[name] = value
    return result


# ResourceQuota


class _CanonicalStrategy(Strategy):
    """Quantities written as Kubernetes writes them, on create and on update alike."""

    def prepare_create(self, obj: Object) -> None:
        self._canonical(obj)

    def prepare_update(self, new: Object, old: Object) -> None:
        self._canonical(new)

    @staticmethod
    def _canonical(obj: Object) -> None:
        raise NotImplementedError


class ResourceQuotaStrategy(_CanonicalStrategy):
    @staticmethod
    def _canonical(obj: Object) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict) and "hard" in spec:
            spec["hard"] = canonical_list(spec["hard"])

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        spec = obj.get("spec") or {}
        problems = quantity_problems("spec.hard", spec.get("hard"))
        scopes = spec.get("scopes") or []
        for index, scope in enumerate(scopes):
            if scope not in QUOTA_SCOPES:
                supported = ", ".join(f'"{s}"' for s in QUOTA_SCOPES)
                problems.append(
                    (
                        f"spec.scopes[{index}]",
                        f"Unsupported value: {_quoted(scope)}: supported values: {supported}",
                    )
                )
        hard = spec.get("hard") or {}
        selector = spec.get("scopeSelector") or {}
        if (scopes or selector.get("matchExpressions")) and isinstance(hard, dict):
            for name in hard:
                if not _POD_RESOURCES.fullmatch(str(name)):
                    problems.append(
                        (
                            "spec.hard",
                            f"Invalid value: {_quoted(name)}: unsupported scope applied to "
                            "resource",
                        )
                    )
        return problems

    def columns(self) -> list[Column]:
        # kubectl's columns for quotas: the age before the usage.
        return [
            AGE,
            Column("Request", "string", _requests_column),
            Column("Limit", "string", _limits_column),
        ]


def _usage_column(obj: Object, wanted: bool) -> str:
    """`name: used/hard` pairs, as kubectl's quota columns: the requests and limits of
    resources apart (limits.* under Limit, everything else under Request)."""
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    return ", ".join(
        f"{name}: {used.get(name, '0')}/{hard[name]}"
        for name in sorted(hard)
        if str(name).startswith("limits.") == wanted
    )


def _requests_column(obj: Object) -> str:
    return _usage_column(obj, False)


def _limits_column(obj: Object) -> str:
    return _usage_column(obj, True)


def quota_status(spec: Any, counts: dict[str, int]) -> Object:
    """`status.hard` and `status.used` of a quota: for every hard resource, what the project
    uses of it. Wharf counts image streams; any other resource is used 0, as Kubernetes shows
    a resource no quota evaluator knows."""
    hard = (spec or {}).get("hard") if isinstance(spec, dict) else None
    if not isinstance(hard, dict):
        return {}
    used = {name: format_decimal(counts.get(name, 0)) for name in hard}
    return {"hard": dict(hard), "used": used}


class ResourceQuotaResource(Resource):
    """Quotas with their usage counted at every read: one count per namespace shown."""

    async def present(self, call: Call, obj: Object) -> Object:
        return (await self.present_many(call, [obj]))[0]

    async def present_many(self, call: Call, objs: list[Object]) -> list[Object]:
        namespaces = sorted({str(o.get("metadata", {}).get("namespace", "")) for o in objs})
        if not namespaces:
            return objs

        def read(conn: Connection) -> dict[str, int]:
            return {ns: count_of(conn, IMAGE_STREAMS, ns) for ns in namespaces}

        streams = await self.store.db.run_read(read)
        shown = []
        for obj in objs:
            namespace = str(obj.get("metadata", {}).get("namespace", ""))
            counts = dict.fromkeys(IMAGE_STREAM_COUNTS, streams.get(namespace, 0))
            shown.append({**obj, "status": quota_status(obj.get("spec"), counts)})
        return shown


# LimitRange

_LIMIT_LISTS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


class LimitRangeStrategy(_CanonicalStrategy):
    @staticmethod
    def _canonical(obj: Object) -> None:
        spec = obj.get("spec")
        limits = spec.get("limits") if isinstance(spec, dict) else None
        for item in limits if isinstance(limits, list) else []:
            if isinstance(item, dict):
                for key in _LIMIT_LISTS:
                    if key in item:
                        item[key] = canonical_list(item[key])

    def validate(self, obj: Object) -> list[tuple[str, str]]:
        limits = (obj.get("spec") or {}).get("limits") or []
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for index, item in enumerate(limits):
            where = f"spec.limits[{index}]"
            limit_type = item.get("type") or ""
            if not limit_type:
                problems.append((f"{where}.type", "Required value"))
            elif limit_type in seen:
                problems.append((f"{where}.type", f"Duplicate value: {_quoted(limit_type)}"))
            seen.add(limit_type)
            for key in _LIMIT_LISTS:
                problems += quantity_problems(f"{where}.{key}", item.get(key))
            problems += _min_over_max(where, item)
        return problems

    def columns(self) -> list[Column]:
        return [Column("Created At", "string", _created_column)]


def _created_column(obj: Object) -> str:
    return str(obj["metadata"].get("creationTimestamp", ""))


def _min_over_max(where: str, item: Object) -> list[tuple[str, str]]:
    lowest, highest = item.get("min") or {}, item.get("max") or {}
    if not isinstance(lowest, dict) or not isinstance(highest, dict):
        return []
    problems = []
    for name in sorted(set(lowest) & set(highest)):
        try:
            low, high = parse_quantity(str(lowest[name])), parse_quantity(str(highest[name]))
        except ValueError:
            continue  # named as invalid already
        if low > high:
            problems.append(
                (
                    f"{where}.min[{name}]",
                    f"Invalid value: {_quoted(lowest[name])}: min value {lowest[name]} is "
                    f"greater than max value {highest[name]}",
                )
            )
    return problems


_SCOPE_SELECTOR = {
    "matchExpressions": [{"scopeName": S, "operator": S, "values": [S]}],
}
_LIMIT_ITEM = {
    "type": S,
    "max": ANY,
    "min": ANY,
    "default": ANY,
    "defaultRequest": ANY,
    "maxLimitRequestRatio": ANY,
}

RESOURCE_QUOTA = Kind(
    "",
    "v1",
    "ResourceQuota",
    "resourcequotas",
    namespaced=True,
    short_names=("quota",),
    strategy=ResourceQuotaStrategy(),
    subresources=("status",),
    shape=top(
        spec={"hard": ANY, "scopes": [S], "scopeSelector": _SCOPE_SELECTOR},
        status={"hard": ANY, "used": ANY},
    ),
)
LIMIT_RANGE = Kind(
    "",
    "v1",
    "LimitRange",
    "limitranges",
    namespaced=True,
    short_names=("limits",),
    strategy=LimitRangeStrategy(),
    shape=top(spec={"limits": [_LIMIT_ITEM]}),
)
