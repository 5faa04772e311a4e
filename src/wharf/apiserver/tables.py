"""Server-side printing: the `Table` that kubectl asks for with `Accept: ...;as=Table`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .kinds import Column, Kind
from .meta import Object


def wants_table(accept: str) -> bool:
    return any("as=Table" in part for part in accept.split(","))


def age(obj: Object) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


NAME = Column("Name", "string", lambda o: o["metadata"].get("name", ""), "Name of the object")
AGE = Column("Age", "string", age, "Time since the object was created")


def columns_of(kind: Kind) -> list[Column]:
    extra = list(kind.strategy.columns())
    return [NAME, *extra, AGE] if not any(c.name == "Age" for c in extra) else [NAME, *extra]


def _partial(obj: Object) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(kind: Kind, items: list[Object], version: str = "", full: bool = False) -> dict[str, Any]:
    columns = columns_of(kind)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": version},
        "columnDefinitions": [
            {
                "name": c.name,
                "type": c.type,
                "format": "name" if c is NAME else "",
                "description": c.description,
                "priority": c.priority,
            }
            for c in columns
        ],
        "rows": [
            {"cells": [c.cell(item) for c in columns], "object": item if full else _partial(item)}
            for item in items
        ],
    }
