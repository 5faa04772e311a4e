"""`wharf create token` (a service account's token) and `wharf auth can-i`."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from .errors import CliError
from .state import NamespaceOption, open_session

auth_app = typer.Typer(no_args_is_help=True, help="Inspect authorization", rich_markup_mode=None)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> int:
    """Go's duration syntax (`1h`, `90m`, `1h30m`, `3600s`) in whole seconds."""
    text = text.strip()
    if text in ("0", ""):
        return 0
    position, seconds = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        seconds += float(match[1]) * _UNITS[match[2]]
        position = match.end()
    if position != len(text) or position == 0:
        raise CliError(f'invalid duration "{text}": use units h, m and s, e.g. 1h or 90m')
    return int(seconds)


def create_token(
    ctx: typer.Context,
    service_account: Annotated[str, typer.Argument(help="The service account")],
    namespace: Annotated[str | None, NamespaceOption] = None,
    duration: Annotated[
        str | None,
        typer.Option(help="How long the token lasts, e.g. 1h (the server's default: 1h)"),
    ] = None,
    audience: Annotated[
        list[str] | None, typer.Option(help="An audience of the token (repeatable)")
    ] = None,
) -> None:
    """Request a token for a service account, and print it."""
    spec: dict[str, Any] = {}
    if duration is not None:
        seconds = parse_duration(duration)
        if seconds:
            spec["expirationSeconds"] = seconds
    if audience:
        spec["audiences"] = audience
    session = open_session(ctx, namespace)
    answer = session.client.post(
        f"/api/v1/namespaces/{session.namespace}/serviceaccounts/{service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )
    token = (answer.get("status") or {}).get("token")
    if not token:
        raise CliError("the server returned no token")
    typer.echo(token)


@auth_app.command("can-i")
def can_i(
    ctx: typer.Context,
    verb: Annotated[str, typer.Argument(help="get, list, create, update, delete, ... or *")],
    resource: Annotated[
        str, typer.Argument(help="TYPE, TYPE.group, TYPE/NAME, or a URL path such as /healthz")
    ],
    name: Annotated[str | None, typer.Argument(help="Name of one object")] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="Ask about every namespace")
    ] = False,
    subresource: Annotated[str | None, typer.Option(help="A subresource, e.g. token")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing; answer by exit code")
    ] = False,
) -> None:
    """Check whether you may do something: prints yes (exit 0) or no (exit 1)."""
    session = open_session(ctx, namespace)
    spec: dict[str, Any]
    if resource.startswith("/"):
        spec = {"nonResourceAttributes": {"verb": verb, "path": resource}}
    else:
        type_text, _, named = resource.partition("/")
        group, plural, namespaced = "", type_text, True
        try:
            rtype = session.discovery.resolve(type_text)
            group, plural, namespaced = rtype.group, rtype.plural, rtype.namespaced
        except CliError:
            if not quiet:
                typer.echo(
                    f"Warning: the server doesn't have a resource type '{type_text}'", err=True
                )
            plural, _, group = type_text.partition(".")
        attributes = {
            "verb": verb,
            "group": group,
            "resource": plural,
            "namespace": "" if all_namespaces or not namespaced else session.namespace,
        }
        if named or name:
            attributes["name"] = named or name or ""
        if subresource:
            attributes["subresource"] = subresource
        spec = {"resourceAttributes": attributes}
    answer = session.client.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec},
    )
    allowed = bool((answer.get("status") or {}).get("allowed"))
    if not quiet:
        typer.echo("yes" if allowed else "no")
    if not allowed:
        raise typer.Exit(1)
