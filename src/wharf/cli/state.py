"""What every client verb starts from: the global options, the kubeconfig, and a session
(client, discovery, namespace) for the current context."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import typer

from .client import Client
from .discovery import Discovery, cache_file
from .errors import CliError
from .kubeconfig import Connection, KubeConfig, config_path

NOT_LOGGED_IN = (
    "Missing or incomplete configuration info. Log in with `wharf login`, or point --kubeconfig "
    "or $KUBECONFIG at a complete config file."
)


@dataclass
class Options:
    """The options given before the verb: `wharf -n demo --kubeconfig FILE get ...`."""

    kubeconfig: str | None = None
    namespace: str | None = None
    context: str | None = None


def options(ctx: typer.Context) -> Options:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Options) else Options()


def load_config(ctx: typer.Context) -> KubeConfig:
    return KubeConfig.load(config_path(options(ctx).kubeconfig))


class Session:
    def __init__(
        self, config: KubeConfig, connection: Connection, namespace: str, explicit: bool = False
    ) -> None:
        self.config = config
        self.connection = connection
        self.namespace = namespace
        self.explicit_namespace = explicit  # given with -n rather than taken from the context

    @cached_property
    def client(self) -> Client:
        return Client.for_connection(self.connection)

    @cached_property
    def discovery(self) -> Discovery:
        return Discovery(self.client, cache_file(self.connection.server))


def open_session(ctx: typer.Context, namespace: str | None = None) -> Session:
    """The session of the current context; `namespace` (a verb's -n) beats the global -n, which
    beats the context's namespace."""
    given = options(ctx)
    config = load_config(ctx)
    connection = config.connection(given.context)
    if connection is None:
        raise CliError(NOT_LOGGED_IN)
    chosen = namespace or given.namespace
    return Session(config, connection, chosen or connection.namespace, explicit=bool(chosen))


# Options shared by many verbs
NamespaceOption = typer.Option(
    "--namespace", "-n", help="The namespace (project) to work in; default: the context's"
)
