"""`wharf`: the command, whose verbs follow `oc`."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from . import (
    access,
    describe,
    get,
    import_image,
    login,
    manifests,
    patch,
    policy,
    projects,
    prune,
    registry,
    tag,
    users,
)
from .errors import CliError
from .serve import migrate_command, serve_command
from .state import NamespaceOption, Options, open_session


class WharfApp(typer.Typer):
    """The Typer app, run so that every failure is `error: <message>` and exit code 1."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        sys.exit(run(self, kwargs.get("args"), kwargs.get("prog_name") or "wharf"))


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


@functools.cache
def command_of(application: typer.Typer) -> Any:  # typer's own copy of click's Command
    """The click command Typer builds from `application` (a tenth of a second of CPU), built
    once a process: a process forked from one that built it (the tests') need not again."""
    return typer.main.get_command(application)


def run(application: typer.Typer, args: list[str] | None = None, prog_name: str = "wharf") -> int:
    command = command_of(application)
    try:
        # The width is read at each run, not at import: the terminal is the caller's now.
        result = command.main(
            args=args,
            prog_name=prog_name,
            standalone_mode=False,
            terminal_width=terminal_width(),
        )
    except CliError as exc:
        _error(exc.message)
        return exc.exit_code
    except TyperException as exc:
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":
            # The help was made (and, with rich, already printed) when the error was raised.
            if exc.format_message().strip():
                typer.echo(exc.format_message())
            return 0
        _error(exc.format_message())
        if context is not None:
            sys.stderr.write(f"See '{context.command_path} --help' for usage.\n")
        return 1
    except typer.Abort:
        _error("aborted")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`wharf get ... | head`): not worth a message.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get("WHARF_DEBUG"):
            raise
        _error(f"{type(exc).__name__}: {exc}")
        return 1
    return result if isinstance(result, int) else 0


def terminal_width() -> int:
    """$COLUMNS, else the width of whichever of stdout, stderr and stdin is a terminal (so that
    `wharf --help | less` is as wide as the terminal), else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for stream in (sys.__stdout__, sys.__stderr__, sys.__stdin__):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            width = os.get_terminal_size(stream.fileno()).columns  # type: ignore[union-attr]
            if width > 0:
                return width
    return 80


# Help in click's plain layout, as `oc` prints it: flags without a `<bool>` placeholder,
# `--flag / --no-flag` on one line, and lines as wide as the terminal (click alone stops at 80;
# rich's panels put types on flags and fall back to 80 columns where it sees no terminal).
# Every Typer of the command says rich_markup_mode=None too: sub-apps do not inherit it.
app = WharfApp(
    no_args_is_help=True,
    add_completion=False,
    help="Wharf: an integrated container image registry, with `oc`-style client verbs.",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 10_000},
)


app.command("serve")(serve_command)
app.command("migrate")(migrate_command)


@app.callback()
def main(
    ctx: typer.Context,
    kubeconfig: Annotated[
        str | None,
        typer.Option(
            "--kubeconfig", help="The kubeconfig file; default: $KUBECONFIG or ~/.kube/config"
        ),
    ] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig context to use")
    ] = None,
) -> None:
    """Wharf: an integrated container image registry."""
    ctx.obj = Options(kubeconfig, namespace, context)


# Logging in and projects
app.command("login")(login.login)
app.command("logout")(login.logout)
app.command("whoami")(login.whoami)
app.command("new-project")(projects.new_project)
app.command("project")(projects.project)
app.command("projects")(projects.projects)

# Objects
app.command("get")(get.get)
app.command("describe")(describe.describe)
app.command("apply")(manifests.apply)
app.command("delete")(manifests.delete)
app.command("tag")(tag.tag)
app.command("import-image")(import_image.import_image)
app.command("patch")(patch.patch)

create_app = typer.Typer(
    help="Create objects from files, or a service account's token", rich_markup_mode=None
)


@create_app.callback(invoke_without_command=True)
def create(
    ctx: typer.Context,
    filename: Annotated[list[str] | None, manifests.FilenameOption] = None,
    namespace: Annotated[str | None, NamespaceOption] = None,
) -> None:
    """Create objects from files (`-f FILE`, `-f -` for stdin), or a token (`create token`)."""
    if ctx.invoked_subcommand:
        if filename:
            raise CliError(f"-f cannot be used with `create {ctx.invoked_subcommand}`")
        return
    objects = manifests.read_manifests(filename or [])
    manifests.create_objects(open_session(ctx, namespace), objects)


create_app.command("token")(access.create_token)
app.add_typer(create_app, name="create")

# Who may do what
app.add_typer(policy.app, name="policy")
adm_app = typer.Typer(no_args_is_help=True, help="Cluster administration", rich_markup_mode=None)
adm_app.add_typer(policy.app, name="policy")
adm_app.add_typer(prune.app, name="prune")
app.add_typer(adm_app, name="adm")
app.add_typer(access.auth_app, name="auth")

# The integrated registry
app.add_typer(registry.app, name="registry")

# Local users
app.add_typer(users.app, name="user")
app.command("htpasswd", help="Add a user or set a password: an alias of `wharf user add`.")(
    users.add
)
