"""Output formats of `get` and friends: the server's Table as aligned text (like kubectl), JSON,
YAML, names, JSONPath and custom columns."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import gotemplate, jsonpath
from .discovery import ResourceType
from .errors import CliError

FORMATS = ("custom-columns", "go-template", "json", "jsonpath", "name", "template", "wide", "yaml")
# Formats that take a template, after `=` or from --template; `template` is `go-template`.
TEMPLATED = {"jsonpath": "jsonpath", "go-template": "go-template", "template": "go-template"}
GAP = "   "


@dataclass(frozen=True)
class Output:
    format: str  # "" (the table), wide, json, yaml, name, jsonpath, custom-columns
    argument: str = ""

    @property
    def tabular(self) -> bool:
        return self.format in ("", "wide")


def parse_output(text: str | None, template: str | None = None) -> Output:
    """The output format of `-o TEXT` and `--template TEMPLATE`, its template checked before
    any request is made."""
    if not text and template is not None:
        text = "go-template"  # as kubectl: --template alone is a Go template
    if not text:
        return Output("")
    # `-o=json`: click hands a short option's value over with the `=`.
    text = text.removeprefix("=")
    name, sep, argument = text.partition("=")
    if template is not None and name not in TEMPLATED:
        raise CliError(f"--template needs -o go-template, template or jsonpath, not -o {name}")
    if name in TEMPLATED and not sep:
        if not template:
            raise CliError("template format specified but no template given")
        sep, argument = "=", template
    if name in TEMPLATED and sep and argument:
        if TEMPLATED[name] == "jsonpath":
            jsonpath.parse_template(argument)
        else:
            gotemplate.render_checked(argument)
        return Output(TEMPLATED[name], argument)
    if name == "custom-columns" and sep and argument:
        jsonpath.parse_columns(argument)
        return Output(name, argument)
    if name in ("json", "yaml", "name", "wide") and not sep:
        return Output(name)
    raise CliError(
        f'unable to match a printer suitable for the output format "{text}", allowed formats '
        f"are: {','.join(FORMATS)}"
    )


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)


class _Dumper(yaml.SafeDumper):
    """Quotes strings that need it with double quotes, as kubectl does."""

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        return '"' if style == "'" else style


def dump_yaml(obj: Any) -> str:
    return str(
        yaml.dump(
            obj,
            Dumper=_Dumper,
            sort_keys=True,
            default_flow_style=False,
            allow_unicode=True,
            width=1 << 30,
        )
    )


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def with_type(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Items of a list come without apiVersion and kind in Kubernetes; kubectl adds them."""
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {"apiVersion": rtype.api_version, "kind": rtype.kind, **obj}


def print_objects(
    output: Output, rtype: ResourceType, objects: list[dict[str, Any]], single: bool
) -> None:
    """Print objects in a non-table format; `single` prints one object rather than a List."""
    objects = [with_type(rtype, o) for o in objects]
    data: Any = objects[0] if single and len(objects) == 1 else as_list(objects)
    if output.format == "json":
        write(dump_json(data) + "\n")
    elif output.format == "yaml":
        write(dump_yaml(data))
    elif output.format == "name":
        for obj in objects:
            write(f"{rtype.kind_name}/{obj.get('metadata', {}).get('name', '')}\n")
    elif output.format == "jsonpath":
        write(jsonpath.render(output.argument, data))
    elif output.format == "go-template":
        write(gotemplate.render(output.argument, data))
    elif output.format == "custom-columns":
        columns = jsonpath.parse_columns(output.argument)
        rows = [[header for header, _ in columns]]
        rows += [[jsonpath.column_value(nodes, obj) for _, nodes in columns] for obj in objects]
        write(align(rows))
    else:
        raise CliError(f"output format {output.format!r} needs a table")


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def align(rows: list[list[str]], widths: list[int] | None = None) -> str:
    """Left-aligned columns three spaces apart, like kubectl's tabwriter."""
    if not rows:
        return ""
    count = max(len(r) for r in rows)
    sizes = list(widths or [0] * count) + [0] * count
    for row in rows:
        for index, cell in enumerate(row):
            sizes[index] = max(sizes[index], len(cell))
    lines = []
    for row in rows:
        cells = [cell.ljust(sizes[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append(GAP.join(cells).rstrip() + "\n")
    return "".join(lines)


def cell_text(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _labels(row: dict[str, Any]) -> str:
    labels = ((row.get("object") or {}).get("metadata") or {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


@dataclass
class TablePrinter:
    """Prints Table rows as they come (a list, then the events of a watch), keeping columns
    at least as wide as what was printed before."""

    wide: bool = False
    namespace_column: bool = False
    show_labels: bool = False
    headers: bool = True
    name_prefix: str = ""  # `serviceaccount/` when several types are listed
    widths: list[int] = field(default_factory=list)
    printed_header: bool = False

    def _columns(self, table: dict[str, Any]) -> list[tuple[int, str]]:
        chosen = []
        for index, column in enumerate(table.get("columnDefinitions") or []):
            if column.get("priority", 0) and not self.wide:
                continue
            chosen.append((index, str(column.get("name", "")).upper()))
        return chosen

    def rows(self, table: dict[str, Any]) -> list[list[str]]:
        columns = self._columns(table)
        rows = []
        for row in table.get("rows") or []:
            cells = row.get("cells") or []
            text = [cell_text(cells[i]) if i < len(cells) else "" for i, _ in columns]
            if text and self.name_prefix:
                text[0] = self.name_prefix + text[0]
            if self.namespace_column:
                meta = (row.get("object") or {}).get("metadata") or {}
                text.insert(0, str(meta.get("namespace", "")))
            if self.show_labels:
                text.append(_labels(row))
            rows.append(text)
        return rows

    def header(self, table: dict[str, Any]) -> list[str]:
        names = [name for _, name in self._columns(table)]
        if self.namespace_column:
            names.insert(0, "NAMESPACE")
        if self.show_labels:
            names.append("LABELS")
        return names

    def print(self, table: dict[str, Any]) -> None:
        rows = self.rows(table)
        if self.headers and not self.printed_header:
            rows.insert(0, self.header(table))
            self.printed_header = True
        if not rows:
            return
        text = align(rows, self.widths)
        for row in rows:
            for index, cell in enumerate(row):
                if index >= len(self.widths):
                    self.widths.append(0)
                self.widths[index] = max(self.widths[index], len(cell))
        write(text)
