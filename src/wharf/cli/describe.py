"""`wharf describe`: an object in words, like kubectl's generic describer, with tables for the
subjects of bindings and the rules of roles."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from .get import namespace_for, targets
from .printers import align, write
from .state import NamespaceOption, open_session

_ACRONYMS = {"uid": "UID", "url": "URL", "uri": "URI", "api": "API", "ip": "IP", "tls": "TLS"}
_SKIPPED_METADATA = ("name", "namespace", "labels", "annotations", "managedFields")


def label(key: str) -> str:
    """`creationTimestamp` -> `Creation Timestamp`, `uid` -> `UID`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key).replace("_", " ").split()
    return " ".join(_ACRONYMS.get(w.lower(), w[:1].upper() + w[1:]) for w in words) or key


def _scalar(value: Any) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pairs(mapping: dict[str, Any] | None, separator: str) -> list[str]:
    return [f"{k}{separator}{v}" for k, v in sorted((mapping or {}).items())] or ["<none>"]


def _lines(value: Any, indent: int) -> list[str]:
    """The nested value, `Key:  value` per line, children indented by two spaces."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        width = max((len(label(str(k))) for k in value), default=0) + 1
        for key, item in value.items():
            name = f"{label(str(key))}:"
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{name}")
                lines += _lines(item, indent + 1)
            else:
                shown = "" if isinstance(item, dict | list) else _scalar(item)
                lines.append(f"{pad}{name.ljust(width)}  {shown}".rstrip())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                nested = _lines(item, indent)
                if nested:
                    lines += nested
            else:
                lines.append(f"{pad}{_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(value)}")
    return lines


def _header(obj: dict[str, Any]) -> list[str]:
    meta = obj.get("metadata") or {}
    lines = [f"Name:         {meta.get('name', '')}"]
    if "namespace" in meta:
        lines.append(f"Namespace:    {meta['namespace']}")
    for title, key, separator in (("Labels", "labels", "="), ("Annotations", "annotations", ": ")):
        pairs = _pairs(meta.get(key), separator)
        lines.append(f"{title + ':':<14}{pairs[0]}")
        lines += [f"{'':<14}{pair}" for pair in pairs[1:]]
    return lines


def _binding(obj: dict[str, Any]) -> list[str]:
    ref = obj.get("roleRef") or {}
    lines = ["Role:", f"  Kind:  {ref.get('kind', '')}", f"  Name:  {ref.get('name', '')}"]
    lines.append("Subjects:")
    rows = [["Kind", "Name", "Namespace"], ["----", "----", "---------"]]
    for subject in obj.get("subjects") or []:
        rows.append(
            [
                str(subject.get("kind", "")),
                str(subject.get("name", "")),
                str(subject.get("namespace", "")),
            ]
        )
    lines += ["  " + line for line in align(rows).splitlines()]
    return lines


def _role(obj: dict[str, Any]) -> list[str]:
    rows = [
        ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"],
        ["---------", "-----------------", "--------------", "-----"],
    ]
    for rule in obj.get("rules") or []:
        groups = [g for g in rule.get("apiGroups") or [] if g]
        resources = [
            f"{r}.{g}" if groups else r for r in rule.get("resources") or [] for g in groups or [""]
        ]
        rows.append(
            [
                ", ".join(resources),
                str(rule.get("nonResourceURLs") or "[]").replace("'", ""),
                str(rule.get("resourceNames") or "[]").replace("'", ""),
                str(rule.get("verbs") or "[]").replace("'", ""),
            ]
        )
    return ["PolicyRule:", *("  " + line for line in align(rows).splitlines())]


def describe_object(obj: dict[str, Any]) -> str:
    lines = _header(obj)
    kind = obj.get("kind", "")
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        lines += _binding(obj)
    elif kind in ("Role", "ClusterRole"):
        lines += _role(obj)
    else:
        rest: dict[str, Any] = {"apiVersion": obj.get("apiVersion"), "kind": kind}
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SKIPPED_METADATA}
        rest["metadata"] = meta
        rest.update({k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")})
        lines += _lines(rest, 0)
    lines.append("Events:       <none>")
    return "\n".join(lines) + "\n"


def describe(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(metavar="TYPE [NAME...] | TYPE/NAME...")],
    namespace: Annotated[str | None, NamespaceOption] = None,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Describe what matches this selector")
    ] = None,
) -> None:
    """Show the details of a resource or a group of resources."""
    session = open_session(ctx, namespace)
    rtype, names = targets(session.discovery, args)
    ns = namespace_for(session, rtype, False)
    if names:
        objects = [session.client.get(rtype.path(ns, name)) for name in names]
    else:
        params = {"labelSelector": selector} if selector else None
        objects = session.client.get(rtype.path(ns), params=params).get("items") or []
        if not objects:
            where = f" in {ns} namespace" if ns else ""
            typer.echo(f"No resources found{where}.", err=True)
            return
    texts = []
    for obj in objects:
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        texts.append(describe_object(obj))
    write("\n\n".join(texts))
