"""`wharf describe`: an object in words, like kubectl's generic describer, with tables for the
subjects of bindings and the rules of roles."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from ..images.quantity import format_binary, parse_quantity
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


def human_duration(seconds: float) -> str:
    """How long ago, in the words of oc (Docker's HumanDuration): `About a minute`, `3 days`."""
    whole, minutes, hours = int(seconds), int(seconds // 60), round(seconds / 3600)
    if whole < 1:
        return "Less than a second"
    if whole < 60:
        return "1 second" if whole == 1 else f"{whole} seconds"
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    if hours < 48:
        return "About an hour" if hours == 1 else f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def ago(timestamp: Any, now: datetime | None = None) -> str:
    """`2 minutes ago` for an RFC 3339 timestamp; `<unknown>` without one."""
    try:
        then = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    elapsed = ((now or datetime.now(UTC)) - then).total_seconds()
    return f"{human_duration(max(elapsed, 0.0))} ago"


_IS_LABEL_WIDTH = 24  # where oc's tab stops put the values, after "Image Repository:"


def _field(label_text: str, values: list[str]) -> list[str]:
    first = f"{label_text + ':':<{_IS_LABEL_WIDTH}}{values[0]}"
    return [first, *(" " * _IS_LABEL_WIDTH + value for value in values[1:])]


def _tag_order(name: str) -> tuple[bool, str]:
    return name != "latest", name  # latest first, as oc lists them


def _tagged_from(spec_tag: dict[str, Any] | None, namespace: str) -> str:
    source = (spec_tag or {}).get("from") or {}
    if not spec_tag:
        return "  no spec tag"
    if not source.get("name"):
        return "  tagged without a source"
    shown = str(source["name"])
    other = source.get("namespace")
    if source.get("kind") != "DockerImage" and other and other != namespace:
        shown = f"{other}/{shown}"
    return f"  tagged from {shown}"


def _history(items: list[dict[str, Any]]) -> list[str]:
    lines = [""] if items else []
    for index, item in enumerate(items):
        bullet = "*" if index == 0 else " "  # the tag's current image
        lines.append(f"  {bullet} {item.get('dockerImageReference') or item.get('image', '')}")
        lines.append(f"      {ago(item.get('created'))}")
    return lines


def describe_imagestream(obj: dict[str, Any]) -> str:
    """As `oc describe is`: the stream, then each tag with its source and history."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    namespace = str(meta.get("namespace", ""))
    spec_tags = {str(t.get("name")): t for t in spec.get("tags") or []}
    histories = {str(t.get("tag")): t.get("items") or [] for t in status.get("tags") or []}
    names = sorted(set(spec_tags) | set(histories), key=_tag_order)
    images = {i.get("image") for items in histories.values() for i in items}
    repository = status.get("publicDockerImageRepository") or status.get("dockerImageRepository")
    local = (spec.get("lookupPolicy") or {}).get("local", False)
    lines = [
        *_field("Name", [str(meta.get("name", ""))]),
        *_field("Namespace", [namespace]),
        *_field("Created", [ago(meta.get("creationTimestamp"))]),
        *_field("Labels", _pairs(meta.get("labels"), "=")),
        *_field("Annotations", _pairs(meta.get("annotations"), "=")),
        *_field("Image Repository", [str(repository or "<none>")]),
        *_field("Image Lookup", [f"local={'true' if local else 'false'}"]),
        *_field("Unique Images", [str(len(images - {None}))]),
        *_field("Tags", [str(len(names))]),
    ]
    for name in names:
        lines += ["", name, _tagged_from(spec_tags.get(name), namespace)]
        lines += _history(histories.get(name, []))
    return "\n".join(lines) + "\n"


def _tabbed(rows: list[list[str]]) -> str:
    """Rows as kubectl's describers print them (Go's tabwriter, two spaces of padding): a
    column is as wide as its widest cell that a tab ends, so a row's last cell widens none."""
    widths: dict[int, int] = {}
    for row in rows:
        for index, cell in enumerate(row[:-1]):
            widths[index] = max(widths.get(index, 0), len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i] + 2) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else ""))
    return "\n".join(lines) + "\n"


def _in_format_of(hard: str, used: str) -> str:
    """`used` in the form of `hard` (kubectl shows both alike): a binary limit, binary use."""
    try:
        value = parse_quantity(used)
    except ValueError:
        return used
    return format_binary(value) if hard.rstrip("0123456789").endswith("i") else used


def describe_quota(obj: dict[str, Any]) -> str:
    """As `oc describe quota`: each resource with what the project uses of it and its limit."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    rows = [["Name:", str(meta.get("name", ""))], ["Namespace:", str(meta.get("namespace", ""))]]
    if spec.get("scopes"):
        rows.append(["Scopes:", ", ".join(sorted(str(s) for s in spec["scopes"]))])
    rows += [["Resource", "Used", "Hard"], ["--------", "----", "----"]]
    hard, used = status.get("hard") or {}, status.get("used") or {}
    for name in sorted(hard):
        limit = str(hard[name])
        rows.append([str(name), _in_format_of(limit, str(used.get(name, "0"))), limit])
    return _tabbed(rows)


def describe_limit_range(obj: dict[str, Any]) -> str:
    """As `oc describe limits`: each limit's type and resource with its bounds."""
    meta = obj.get("metadata") or {}
    rows = [
        ["Name:", str(meta.get("name", ""))],
        ["Namespace:", str(meta.get("namespace", ""))],
        [
            "Type",
            "Resource",
            "Min",
            "Max",
            "Default Request",
            "Default Limit",
            "Max Limit/Request Ratio",
        ],
        [
            "----",
            "--------",
            "---",
            "---",
            "---------------",
            "-------------",
            "-----------------------",
        ],
    ]
    keys = ("min", "max", "defaultRequest", "default", "maxLimitRequestRatio")
    for item in (obj.get("spec") or {}).get("limits") or []:
        bounds = [item.get(key) or {} for key in keys]
        for name in sorted({str(n) for bound in bounds for n in bound}):
            shown = [str(bound[name]) if name in bound else "-" for bound in bounds]
            rows.append([str(item.get("type", "")), name, *shown])
    return _tabbed(rows)


def describe_object(obj: dict[str, Any]) -> str:
    kind = obj.get("kind")
    if kind == "ImageStream":
        return describe_imagestream(obj)
    if kind == "ResourceQuota":
        return describe_quota(obj)
    if kind == "LimitRange":
        return describe_limit_range(obj)
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
