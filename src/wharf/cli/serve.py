"""`wharf serve`: run Wharf, the registry and the cluster API in one process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve_command(
    listen: Annotated[str, typer.Option(help="Registry address, HOST:PORT")] = "127.0.0.1:5000",
    api_listen: Annotated[str, typer.Option(help="API address, HOST:PORT")] = "127.0.0.1:8443",
    data_dir: Annotated[Path, typer.Option(help="Where blobs and metadata live")] = Path(
        "wharf-data"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory")
    ] = None,
    upload_timeout: Annotated[
        float, typer.Option(help="Seconds after which an idle upload session is removed")
    ] = 3600.0,
    public_host: Annotated[
        str | None,
        typer.Option(help="The registry's host for clients (the route's host); default: --listen"),
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(help="Registry access by cluster tokens and RBAC; --no-auth: open to all"),
    ] = True,
    registry_tls: Annotated[
        bool, typer.Option(help="Serve the registry over TLS with Wharf's own CA")
    ] = True,
    # Hidden, for tests: short-lived tokens, and a short event log (older watches get 410).
    token_lifetime: Annotated[
        int, typer.Option(hidden=True, min=1, help="Seconds an OAuth access token lasts")
    ] = 24 * 3600,
    retained_events: Annotated[
        int, typer.Option(hidden=True, min=1, help="Events kept for watches to resume from")
    ] = 100_000,
) -> None:
    """Run Wharf: the registry and the cluster API, in one process."""
    import asyncio
    from datetime import timedelta

    # Imported here: the client verbs start faster without the server's dependencies.
    from ..server import Settings, serve

    host, port = host_port(listen)
    api_host, api_port = host_port(api_listen)
    settings = Settings(
        api_host=api_host,
        api_port=api_port,
        listen_host=host,
        listen_port=port,
        data_dir=data_dir,
        database_url=database_url,
        upload_timeout=timedelta(seconds=upload_timeout),
        sweep_interval=min(60.0, max(upload_timeout / 4, 0.5)),
        auth=auth,
        registry_tls=registry_tls,
        public_host=public_host,
        token_lifetime=token_lifetime,
        retained_events=retained_events,
    )
    asyncio.run(serve(settings))
