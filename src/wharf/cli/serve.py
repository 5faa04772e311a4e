"""`wharf serve`: run Wharf, the registry and the cluster API, in one process.

Every flag is a field of wharf.settings.Settings; a flag not given leaves the field to the
`WHARF_*` environment, then the settings file, then the default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .errors import CliError

if TYPE_CHECKING:
    from ..settings import Settings

# Hidden, for tests: short-lived tokens, and a short event log (older watches get 410).
_HIDDEN = {"hidden": True, "min": 1}
# The --s3-* flags, as fields of the settings' `s3` part.
_S3_FIELDS = {
    "s3_bucket": "bucket",
    "s3_region": "region",
    "s3_endpoint": "region_endpoint",
    "s3_virtual_hosted_style": "virtual_hosted_style",
    "s3_encrypt": "encrypt",
    "s3_key_id": "key_id",
    "s3_chunk_size": "chunk_size_mib",
    "s3_disable_redirect": "disable_redirect",
    "s3_root_directory": "root_directory",
    "s3_request_timeout": "request_timeout",
}


def serve_command(
    listen: Annotated[
        str | None, typer.Option(help="Registry address, HOST:PORT [default: 127.0.0.1:5000]")
    ] = None,
    api_listen: Annotated[
        str | None, typer.Option(help="API address, HOST:PORT [default: 127.0.0.1:8443]")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where metadata and blobs live [default: wharf-data]")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory")
    ] = None,
    upload_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds after which an idle upload session is removed [default: 3600]"),
    ] = None,
    gc_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between online garbage collections of unreferenced blobs; 0: none "
            "[default: 600]"
        ),
    ] = None,
    gc_delay: Annotated[
        float | None,
        typer.Option(
            help="Seconds a blob must be unreferenced and unused before the GC deletes it "
            "[default: 3600]"
        ),
    ] = None,
    import_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between re-imports of scheduled image stream tags; 0: none [default: 900]"
        ),
    ] = None,
    upload_lease: Annotated[
        float | None,
        typer.Option(
            help="Seconds a writing request holds an upload; after a crash, another process "
            "may take it over this long after [default: 60]"
        ),
    ] = None,
    public_host: Annotated[
        str | None,
        typer.Option(help="The registry's host for clients (the route's host); default: --listen"),
    ] = None,
    auth: Annotated[
        bool | None,
        typer.Option(help="Registry access by cluster tokens and RBAC; --no-auth: open to all"),
    ] = None,
    registry_tls: Annotated[
        bool | None, typer.Option(help="Serve the registry over TLS with Wharf's own CA")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Where blob bytes live: filesystem (default) or s3")
    ] = None,
    s3_bucket: Annotated[str | None, typer.Option(help="S3 bucket")] = None,
    s3_region: Annotated[str | None, typer.Option(help="S3 region [default: us-east-1]")] = None,
    s3_endpoint: Annotated[
        str | None, typer.Option(help="S3-compatible endpoint URL; default: AWS")
    ] = None,
    s3_virtual_hosted_style: Annotated[
        bool | None, typer.Option(help="Bucket in the host name instead of the path")
    ] = None,
    s3_encrypt: Annotated[
        bool | None, typer.Option(help="Server-side encryption (SSE-S3, or SSE-KMS by key id)")
    ] = None,
    s3_key_id: Annotated[str | None, typer.Option(help="KMS key id for SSE-KMS")] = None,
    s3_chunk_size: Annotated[
        int | None, typer.Option(help="Multipart part size in MiB, 5 to 5120 [default: 10]")
    ] = None,
    s3_disable_redirect: Annotated[
        bool | None, typer.Option(help="Stream blobs through Wharf instead of a 307 to S3")
    ] = None,
    s3_root_directory: Annotated[
        str | None, typer.Option(help="Key prefix of every object in the bucket")
    ] = None,
    s3_request_timeout: Annotated[
        float | None,
        typer.Option(hidden=True, min=0.1, help="Seconds before an S3 call counts as failed"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A YAML or JSON settings file; default: $WHARF_CONFIG")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="console (default) or json: one JSON object a line")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="Normal (default), Debug, Trace or TraceAll")
    ] = None,
    shutdown_timeout: Annotated[
        float | None,
        typer.Option(help="Seconds requests in flight may take to finish on SIGTERM [default: 30]"),
    ] = None,
    metrics_secret: Annotated[
        str | None, typer.Option(help="A bearer token that may read the registry's metrics")
    ] = None,
    token_lifetime: Annotated[
        int | None, typer.Option(help="Seconds an OAuth access token lasts", **_HIDDEN)
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="all (default), registry or api: the servers this host runs"),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes sharing the ports [default: the number of cores]"),
    ] = None,
    retained_events: Annotated[
        int | None, typer.Option(help="Events kept for watches to resume from", **_HIDDEN)
    ] = None,
) -> None:
    """Run Wharf: the registry and the cluster API, in one process."""
    given = {name: value for name, value in locals().items() if value is not None}
    import asyncio

    # Imported here: the client verbs start faster without the server's dependencies.
    from ..db.database import DatabaseUnavailable
    from ..db.migrate import SchemaTooNew
    from ..server import serve
    from ..workers import supervise

    file = given.pop("config", None)
    flags: dict[str, Any] = {
        name: value for name, value in given.items() if not name.startswith("s3_")
    }
    s3 = {_S3_FIELDS[name]: value for name, value in given.items() if name.startswith("s3_")}
    if s3:
        flags["s3"] = s3
    settings = _settings(flags, file)
    try:
        if settings.workers > 1:
            asyncio.run(supervise(settings))
        else:
            asyncio.run(serve(settings))
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from None
    except DatabaseUnavailable as exc:  # at start: once serving, requests answer 503
        raise CliError(f"the database is {exc.state}: {exc}") from None


def migrate_command(
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the default SQLite database lives")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A YAML or JSON settings file; default: $WHARF_CONFIG")
    ] = None,
) -> None:
    """Bring the database's schema up to date (servers also do it when they start)."""
    import asyncio

    from ..db.database import DatabaseUnavailable, open_database
    from ..db.migrate import SchemaTooNew, head

    given = {"database_url": database_url, "data_dir": data_dir}
    settings = _settings({k: v for k, v in given.items() if v is not None}, config)

    async def run() -> None:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        database = open_database(settings.database)
        try:
            async with database.exclusive():
                await database.migrate()
        finally:
            await database.dispose()

    try:
        asyncio.run(run())
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from None
    except DatabaseUnavailable as exc:
        raise CliError(f"the database is {exc.state}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot reach the database: {exc.strerror or exc}") from None
    typer.echo(f"database schema at revision {head()}")


def _settings(flags: dict[str, Any], file: Path | None) -> Settings:
    """The settings, or a one-line error naming the fields at fault and never their values
    (a database URL may hold a password)."""
    from pydantic import ValidationError

    from ..settings import load_settings

    try:
        return load_settings(flags, file)
    except ValidationError as exc:
        raise CliError(f"bad settings: {_problems(exc)}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _problems(exc: Any) -> str:
    """A validation error as `field: problem` pairs, one line."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors()
    )
