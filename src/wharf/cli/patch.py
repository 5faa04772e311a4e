"""`wharf patch`: change one object in place with a patch, as `oc patch` does."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from .client import MERGE_PATCH
from .errors import CliError
from .get import namespace_for, targets
from .printers import parse_output, print_objects
from .state import NamespaceOption, open_session

# oc's --type names, and the media type each is sent as.
PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": MERGE_PATCH,
    "json": "application/json-patch+json",
}


def _parse_patch(text: str, patch_type: str) -> Any:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"unable to parse {text[:200]!r}: {exc.msg}") from None
    wanted = list if patch_type == "json" else dict
    if not isinstance(body, wanted):
        shape = "a JSON list of operations" if patch_type == "json" else "a JSON object"
        raise CliError(f"a {patch_type} patch must be {shape}")
    return body


def patch(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(metavar="TYPE NAME | TYPE/NAME")],
    patch_text: Annotated[
        str, typer.Option("--patch", "-p", help="The patch, as JSON (oc also takes YAML)")
    ],
    patch_type: Annotated[
        str, typer.Option("--type", help="strategic, merge or json (RFC 6902)")
    ] = "strategic",
    namespace: Annotated[str | None, NamespaceOption] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="json, yaml, name or jsonpath=TEMPLATE")
    ] = None,
) -> None:
    """Update fields of an object with a strategic merge, JSON merge or JSON patch."""
    content_type = PATCH_TYPES.get(patch_type)
    if content_type is None:
        raise CliError(f'--type must be one of {", ".join(PATCH_TYPES)}, not "{patch_type}"')
    body = _parse_patch(patch_text, patch_type)
    out = parse_output(output, None)
    session = open_session(ctx, namespace)
    rtype, names = targets(session.discovery, args)
    if len(names) != 1:
        raise CliError("patch takes exactly one object: TYPE NAME or TYPE/NAME")
    path = rtype.path(namespace_for(session, rtype, False), names[0])
    old = session.client.get(path)
    new = session.client.patch(path, body, content_type)
    if out.format:
        print_objects(out, rtype, [new], single=True)
        return
    changed = old.get("metadata", {}).get("resourceVersion") != new.get("metadata", {}).get(
        "resourceVersion"
    )
    typer.echo(f"{rtype.kind_name}/{names[0]} {'patched' if changed else 'patched (no change)'}")
