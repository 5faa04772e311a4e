"""`wharf user` (alias `wharf htpasswd`): the local users of a Wharf data directory, kept in its
htpasswd file. No server is needed; a running server sees the change at the next login."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .errors import CliError

if TYPE_CHECKING:
    from ..auth.htpasswd import Htpasswd

app = typer.Typer(
    no_args_is_help=True,
    help="Manage the users of a local Wharf data directory",
    rich_markup_mode=None,
)

DataDir = Annotated[Path, typer.Option(help="The Wharf data directory (as given to `wharf serve`)")]


def _htpasswd(data_dir: Path) -> Htpasswd:
    from ..auth.htpasswd import Htpasswd

    if not data_dir.is_dir():
        raise CliError(
            f'the data directory "{data_dir}" does not exist: give the one of `wharf serve` '
            "with --data-dir"
        )

    return Htpasswd(data_dir / "auth" / "htpasswd")


def _password(name: str, password: str | None, password_stdin: bool) -> str:
    if password is not None and password_stdin:
        raise CliError("give either --password or --password-stdin, not both")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        if not sys.stdin.isatty():
            raise CliError(
                f'a password is required for user "{name}": --password or --password-stdin'
            )
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CliError("the password may not be empty")
    return password


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name")],
    password: Annotated[str | None, typer.Option("--password", "-p", help="The password")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    data_dir: DataDir = Path("wharf-data"),
) -> None:
    """Add a user, or set the password of an existing one."""
    chosen = _password(name, password, password_stdin)
    htpasswd = _htpasswd(data_dir)
    existed = htpasswd.has(name)
    try:
        htpasswd.set_password(name, chosen)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {htpasswd.path}: {exc.strerror or exc}") from None
    if existed:
        typer.echo(f'Password of user "{name}" changed in {htpasswd.path}.')
    else:
        typer.echo(f'User "{name}" added to {htpasswd.path}.')


@app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="User name")],
    data_dir: DataDir = Path("wharf-data"),
) -> None:
    """Remove a user's password (their User object and bindings stay)."""
    htpasswd = _htpasswd(data_dir)
    if not htpasswd.remove(name):
        raise CliError(f'user "{name}" not found in {htpasswd.path}')
    typer.echo(f'User "{name}" removed from {htpasswd.path}.')


@app.command("list")
def list_users(data_dir: DataDir = Path("wharf-data")) -> None:
    """List the users who can log in with a password."""
    for name in _htpasswd(data_dir).users():
        typer.echo(name)
