"""`wharf new-project`, `project` and `projects`: projects, and which one the context uses."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .errors import ApiFailure, CliError
from .login import PROJECTS
from .state import Session, open_session

DISPLAY_NAME = "openshift.io/display-name"


def _switch(session: Session, namespace: str) -> None:
    session.config.switch_namespace(session.connection, namespace)
    session.config.save()


def new_project(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the new project")],
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Its display name")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Its description")
    ] = None,
    skip_config_write: Annotated[
        bool,
        typer.Option(
            "--skip-config-write", help="Do not switch the kubeconfig context to the new project"
        ),
    ] = False,
) -> None:
    """Request a new project, and switch to it."""
    session = open_session(ctx)
    body: dict[str, Any] = {
        "apiVersion": "project.openshift.io/v1",
        "kind": "ProjectRequest",
        "metadata": {"name": name},
    }
    if display_name:
        body["displayName"] = display_name
    if description:
        body["description"] = description
    session.client.post("/apis/project.openshift.io/v1/projectrequests", body)
    server = session.connection.server
    if skip_config_write:
        typer.echo(f'Created project "{name}" on server "{server}".')
        return
    _switch(session, name)
    typer.echo(f'Now using project "{name}" on server "{server}".')


def _check_project(session: Session, name: str, configured: bool) -> dict[str, Any]:
    try:
        return session.client.get(f"{PROJECTS}/{name}")
    except ApiFailure as failure:
        server = session.connection.server
        if failure.code == 404:
            if configured:
                raise CliError(
                    f'the project "{name}" specified in your config does not exist.'
                ) from None
            raise CliError(f'A project named "{name}" does not exist on "{server}".') from None
        if failure.code == 403:
            raise CliError(f'You are not a member of project "{name}".') from None
        raise


def project(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The project to switch to")] = None,
    short: Annotated[
        bool, typer.Option("--short", "-q", help="Print only the current project's name")
    ] = False,
) -> None:
    """Show the current project, or switch to another."""
    session = open_session(ctx)
    server = session.connection.server
    if name is None:
        current = session.namespace
        if short:
            typer.echo(current)
            return
        _check_project(session, current, configured=True)
        typer.echo(f'Using project "{current}" on server "{server}".')
        return
    _check_project(session, name, configured=False)
    if name == session.connection.namespace:
        typer.echo(f'Already on project "{name}" on server "{server}".')
        return
    _switch(session, name)
    typer.echo(f'Now using project "{name}" on server "{server}".')


def projects(
    ctx: typer.Context,
    short: Annotated[
        bool, typer.Option("--short", "-q", help="Print only the names, one per line")
    ] = False,
) -> None:
    """List the projects you can see."""
    session = open_session(ctx)
    items = session.client.get(PROJECTS).get("items") or []
    items.sort(key=lambda p: str(p.get("metadata", {}).get("name", "")))
    names = [str(p.get("metadata", {}).get("name", "")) for p in items]
    if short:
        for name in names:
            typer.echo(name)
        return
    current = session.namespace
    server = session.connection.server
    if not names:
        typer.echo(
            "You are not a member of any projects. You can request a project to be created "
            "with the 'new-project' command."
        )
        return
    if len(names) == 1:
        typer.echo(f'You have one project on this server: "{names[0]}".\n')
    else:
        typer.echo(
            "You have access to the following projects and can switch between them with "
            "'wharf project <projectname>':\n"
        )
        for item, name in zip(items, names, strict=True):
            display = (item.get("metadata", {}).get("annotations") or {}).get(DISPLAY_NAME)
            marker = "*" if name == current else " "
            typer.echo(f"  {marker} {name}" + (f" - {display}" if display else ""))
        typer.echo("")
    if current in names:
        typer.echo(f'Using project "{current}" on server "{server}".')
