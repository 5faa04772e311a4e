"""The shapes of our kinds: which fields exist and of what type. One description serves strict
field validation and the OpenAPI documents that kubectl reads."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

# A shape is a leaf type name ("string", "integer", "boolean", "time", "map": free string
# map, "any": anything), a dict of field shapes (an object), a one-item list (an array of it),
# or a Nullable shape.
Shape: TypeAlias = "str | Mapping[str, Shape] | Sequence[Shape] | Nullable"

S, INT, B, MAP, ANY, TIME = "string", "integer", "boolean", "map", "any", "time"


@dataclass(frozen=True)
class Nullable:
    """A field the server may answer as null, as Go writes a nil slice or a zero time that has
    no `omitempty` (a review's creationTimestamp, a User's groups)."""

    shape: Shape


OBJECT_META: Shape = {
    "name": S,
    "generateName": S,
    "namespace": S,
    "selfLink": S,
    "uid": S,
    "resourceVersion": S,
    "generation": INT,
    "creationTimestamp": Nullable(TIME),
    "deletionTimestamp": TIME,
    "deletionGracePeriodSeconds": INT,
    "labels": MAP,
    "annotations": MAP,
    "ownerReferences": [ANY],
    "finalizers": [S],
    "managedFields": [ANY],
}


def top(**fields: Shape) -> Shape:
    """The shape of a kind: apiVersion, kind and metadata, plus `fields`."""
    return {"apiVersion": S, "kind": S, "metadata": OBJECT_META, **fields}


def unknown_fields(shape: Shape | None, value: Any, path: str = "") -> list[str]:
    """Dotted paths of the fields of `value` that `shape` does not have."""
    if isinstance(shape, Nullable):
        return unknown_fields(shape.shape, value, path)
    if shape is None or isinstance(shape, str):
        return []
    if isinstance(shape, Mapping):
        if not isinstance(value, dict):
            return []
        found = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in shape:
                found.append(where)
            else:
                found += unknown_fields(shape[key], item, where)
        return found
    if isinstance(shape, Sequence) and isinstance(value, list):
        found = []
        for index, item in enumerate(value):
            found += unknown_fields(shape[0], item, f"{path}[{index}]")
        return found
    return []


def known_fields(shape: Shape | None, value: Any) -> Any:
    """`value` without the fields `shape` does not have: what Kubernetes keeps of a body."""
    if isinstance(shape, Nullable):
        return known_fields(shape.shape, value)
    if shape is None or isinstance(shape, str):
        return value
    if isinstance(shape, Mapping):
        if not isinstance(value, dict):
            return value
        return {k: known_fields(shape[k], v) for k, v in value.items() if k in shape}
    if isinstance(value, list):
        return [known_fields(shape[0], item) for item in value]
    return value


def without_nulls(shape: Shape | None, value: Any) -> Any:
    """`value` without the null fields of its objects that `shape` does not say may be null,
    and with the null values of its string maps empty: Go decodes a null into the zero value
    (which it leaves out of an object), so the server's code never meets a None where it
    expects a string, and never serves one."""
    if isinstance(shape, Nullable):
        return without_nulls(shape.shape, value)
    if shape == MAP and isinstance(value, dict):
        # A string map keeps its keys: a null value decodes to the empty string.
        return {key: "" if item is None else item for key, item in value.items()}
    if isinstance(shape, Mapping) and isinstance(value, dict):
        return {
            key: item if key not in shape else without_nulls(shape[key], item)
            for key, item in value.items()
            if item is not None or key not in shape or isinstance(shape[key], Nullable)
        }
    if isinstance(shape, Sequence) and not isinstance(shape, str) and isinstance(value, list):
        return [without_nulls(shape[0], item) for item in value]
    return value


_JSON_TYPES: dict[str, tuple[type, ...]] = {S: (str,), TIME: (str,), INT: (int,), B: (bool,)}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for name, kinds in (("string", str), ("number", (int, float)), ("object", dict)):
        if isinstance(value, kinds):
            return name
    return "array" if isinstance(value, list) else type(value).__name__


# RFC 3339's date-time, as Go's time.RFC3339 parses it (the one form of metav1.Time in JSON).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def is_date_time(text: str) -> bool:
    """Whether `text` is an RFC 3339 date-time whose every part is in range."""
    if _DATE_TIME.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def wrong_types(shape: Shape | None, value: Any, path: str = "") -> list[str]:
    """What in `value` has another JSON type than `shape` says, as `path: expected X, got Y`;
    null stands for an absent field, as in Kubernetes."""
    if isinstance(shape, Nullable):
        return wrong_types(shape.shape, value, path)
    if shape is None or value is None or shape == ANY:
        return []
    where = path or "(root)"
    if shape == MAP:
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {_type_name(value)}"]
        return [
            f"{path}[{key}]: expected string, got {_type_name(item)}"
            for key, item in value.items()
            if item is not None and not isinstance(item, str)
        ]
    if isinstance(shape, str):
        kinds = _JSON_TYPES.get(shape, (object,))
        if not isinstance(value, kinds) or (shape == INT and isinstance(value, bool)):
            return [f"{where}: expected {shape}, got {_type_name(value)}"]
        if shape == TIME and isinstance(value, str) and not is_date_time(value):
            return [f"{where}: expected an RFC 3339 date-time, got {value[:40]!r}"]
        return []
    if isinstance(shape, Mapping):
        if not isinstance(value, dict):
            return [f"{where}: expected object, got {_type_name(value)}"]
        found = []
        for key, item in value.items():
            if key in shape:
                found += wrong_types(shape[key], item, f"{path}.{key}" if path else str(key))
        return found
    if not isinstance(value, list):
        return [f"{where}: expected array, got {_type_name(value)}"]
    found = []
    for index, item in enumerate(value):
        found += wrong_types(shape[0], item, f"{path}[{index}]")
    return found


def openapi(shape: Shape) -> dict[str, Any]:
    """The OpenAPI v3 schema of a shape."""
    if shape == MAP:
        return {"type": "object", "additionalProperties": {"type": "string"}}
    if shape == ANY:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if isinstance(shape, Nullable):
        return {**openapi(shape.shape), "nullable": True}
    if shape == TIME:
        return {"type": "string", "format": "date-time"}
    if isinstance(shape, str):
        return {"type": shape}
    if isinstance(shape, Sequence):
        return {"type": "array", "items": openapi(shape[0])}
    return {"type": "object", "properties": {k: openapi(v) for k, v in shape.items()}}
