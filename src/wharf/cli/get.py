"""`wharf get`: list, show and watch resources of any type the server serves."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated, Any

import typer

from .client import TABLE
from .discovery import Discovery, ResourceType
from .errors import ApiFailure, CliError
from .printers import Output, TablePrinter, parse_output, print_objects, with_type, write
from .state import NamespaceOption, Session, open_session


def targets(discovery: Discovery, args: list[str]) -> tuple[ResourceType, list[str]]:
    """`TYPE [NAME...]` or `TYPE/NAME...` (all of one type)."""
    if not args:
        raise CliError("you must specify the type of resource to get")
    if "/" in args[0]:
        found: ResourceType | None = None
        names = []
        for arg in args:
            type_text, sep, name = arg.partition("/")
            if not sep or not name:
                raise CliError(f"there is no need to specify a resource type twice: {arg!r}")
            rtype = discovery.resolve(type_text)
            if found is not None and rtype != found:
                raise CliError("all TYPE/NAME arguments must be of one type")
            found = rtype
            names.append(name)
        assert found is not None
        return found, names
    return discovery.resolve(args[0]), args[1:]


def namespace_for(session: Session, rtype: ResourceType, all_namespaces: bool) -> str | None:
    if not rtype.namespaced or all_namespaces:
        return None
    return session.namespace


def _no_resources(namespace: str | None) -> None:
    where = f" in {namespace} namespace" if namespace else ""
    sys.stderr.write(f"No resources found{where}.\n")


def _params(selector: str | None, field_selector: str | None) -> dict[str, str]:
    params = {}
    if selector:
        params["labelSelector"] = selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _fetch_named(
    session: Session, rtype: ResourceType, namespace: str | None, names: list[str], accept: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The named objects (tables or objects, as `accept` says) and the errors of the missing."""
    found, errors = [], []
    for name in names:
        try:
            found.append(session.client.get(rtype.path(namespace, name), accept=accept))
        except ApiFailure as failure:
            errors.append(failure.message)
    return found, errors


def _merge_tables(tables: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(tables[0])
    merged["rows"] = [row for table in tables for row in table.get("rows") or []]
    return merged


def _watch(
    session: Session,
    rtype: ResourceType,
    namespace: str | None,
    params: dict[str, str],
    version: str,
    output: Output,
    printer: TablePrinter,
) -> None:
    accept = TABLE if output.tabular else "application/json"
    path = rtype.path(namespace)
    while True:
        query = {**params, **({"resourceVersion": version} if version else {})}
        for event in session.client.watch(path, query, accept):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise CliError(str(obj.get("message") or "the watch failed"))
            if output.tabular:
                rows = obj.get("rows") or []
                if rows:
                    meta = (rows[0].get("object") or {}).get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                printer.print(obj)
            else:
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                print_objects(output, rtype, [obj], single=True)
        if not version:
            return


def _get_several(
    session: Session,
    types: list[ResourceType],
    out: Output,
    all_namespaces: bool,
    params: dict[str, str],
    show_labels: bool,
    no_headers: bool,
) -> None:
    """`get sa,secrets`: a table per type, names prefixed by their kind, as kubectl prints."""
    accept = TABLE if out.tabular else "application/json"
    printed = False
    objects: list[dict[str, Any]] = []
    for rtype in types:
        ns = namespace_for(session, rtype, all_namespaces)
        answer = session.client.get(rtype.path(ns), params=params, accept=accept)
        if not out.tabular:
            objects += [with_type(rtype, item) for item in answer.get("items") or []]
            continue
        if not answer.get("rows"):
            continue
        if printed:
            write("\n")
        TablePrinter(
            wide=out.format == "wide",
            namespace_column=all_namespaces and any(t.namespaced for t in types),
            show_labels=show_labels,
            headers=not no_headers,
            name_prefix=f"{rtype.kind_name}/",
        ).print(answer)
        printed = True
    if not out.tabular:
        by_kind = {(t.api_version, t.kind): t for t in types}
        if out.format == "name":
            for obj in objects:
                rtype = by_kind[(obj["apiVersion"], obj["kind"])]
                write(f"{rtype.kind_name}/{obj.get('metadata', {}).get('name', '')}\n")
        else:
            print_objects(out, types[0], objects, single=False)
    elif not printed:
        namespaced = any(t.namespaced for t in types) and not all_namespaces
        _no_resources(session.namespace if namespaced else None)


def get(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(metavar="TYPE [NAME...] | TYPE/NAME...")],
    namespace: Annotated[str | None, NamespaceOption] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces")
    ] = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="Label selector, e.g. app=web,tier!=db")
    ] = None,
    field_selector: Annotated[
        str | None, typer.Option("--field-selector", help="Field selector, e.g. metadata.name=x")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="json, yaml, name, wide, jsonpath=TEMPLATE, custom-columns=NAME:PATH,..., "
            "go-template=TEMPLATE, or template with --template",
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            help="The template of -o go-template, template or jsonpath (alone: a Go template, "
            "e.g. '{{range .items}}{{.metadata.name}}{{\"\\n\"}}{{end}}')",
        ),
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After listing, watch for changes")
    ] = False,
    watch_only: Annotated[
        bool, typer.Option("--watch-only", help="Watch for changes without listing first")
    ] = False,
    show_labels: Annotated[
        bool, typer.Option("--show-labels", help="Add a column of the labels")
    ] = False,
    no_headers: Annotated[
        bool, typer.Option("--no-headers", help="Print tables without their header")
    ] = False,
    ignore_not_found: Annotated[
        bool, typer.Option("--ignore-not-found", help="No error when named objects are missing")
    ] = False,
) -> None:
    """Display one or many resources."""
    out = parse_output(output, template)
    session = open_session(ctx, namespace)
    params = _params(selector, field_selector)
    if args and "," in args[0] and "/" not in args[0]:
        if len(args) > 1 or watch or watch_only:
            raise CliError("several types can only be listed: no names, no --watch")
        types = [session.discovery.resolve(t) for t in args[0].split(",") if t]
        _get_several(session, types, out, all_namespaces, params, show_labels, no_headers)
        return
    rtype, names = targets(session.discovery, args)
    ns = namespace_for(session, rtype, all_namespaces)
    printer = TablePrinter(
        wide=out.format == "wide",
        namespace_column=rtype.namespaced and all_namespaces,
        show_labels=show_labels,
        headers=not no_headers,
    )
    watching = watch or watch_only
    if watching and len(names) > 1:
        raise CliError("watch is only supported on individual resources or lists")
    if watching and names:
        params["fieldSelector"] = f"metadata.name={names[0]}"

    version = ""
    errors: list[str] = []
    accept = TABLE if out.tabular else "application/json"
    if names and not watching:
        found, errors = _fetch_named(session, rtype, ns, names, accept)
        if ignore_not_found:
            errors = [e for e in errors if "not found" not in e]
        if found and out.tabular:
            printer.print(_merge_tables(found))
        elif found:
            print_objects(out, rtype, found, single=len(names) == 1)
    else:
        answer = session.client.get(rtype.path(ns), params=params, accept=accept)
        version = str(answer.get("metadata", {}).get("resourceVersion", ""))
        if watch_only:
            pass
        elif out.tabular:
            if answer.get("rows"):
                printer.print(answer)
            elif not watching:
                _no_resources(ns)
        else:
            print_objects(out, rtype, answer.get("items") or [], single=False)
    if errors:
        raise CliError("\nerror: ".join(errors))
    if watching:
        with contextlib.suppress(KeyboardInterrupt):
            _watch(session, rtype, ns, params, version, out, printer)
