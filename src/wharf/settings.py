"""Every setting of `wharf serve`: one object, from flags, `WHARF_*` environment variables and an
optional YAML (or JSON) file, in that order of precedence. The composition root reads nothing
else, and the operator writes these same fields from its Config resource."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .auth.tokens import DEFAULT_LIFETIME
from .db.database import database_backend, sqlite_url
from .db.objects import ObjectStore

# Where the settings file is named when no flag names it.
CONFIG_FILE_VARIABLE = "WHARF_CONFIG"


def parse_host_port(value: str) -> tuple[str, int]:
    """HOST:PORT (an empty host or `[::]` means every address)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class S3Settings(BaseModel):
    """An S3 bucket (or any S3-compatible store) for blob bytes. Credentials come as every AWS
    client finds them: AWS_ACCESS_KEY_ID and friends, ~/.aws/config and ~/.aws/credentials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket: str = ""
    region: str = "us-east-1"
    # Another S3-compatible endpoint (http://127.0.0.1:9000); default: AWS's own.
    region_endpoint: str | None = None
    # Off: path-style URLs (endpoint/bucket/key), what most S3-compatible stores expect.
    virtual_hosted_style: bool = False
    # Server-side encryption: SSE-S3, or SSE-KMS with `key_id`.
    encrypt: bool = False
    key_id: str | None = None
    # The size of the parts of a multipart upload (S3 allows 5 MiB to 5 GiB).
    chunk_size_mib: int = Field(default=10, ge=5, le=5120)
    # Off: blob GETs answer 307 to a presigned URL; on: the registry streams the bytes itself.
    disable_redirect: bool = False
    # Objects live under this prefix of the bucket ("" for the bucket's root).
    root_directory: str = ""
    # Seconds to connect, and to wait for each answer, before a call counts as failed.
    request_timeout: float = Field(default=20.0, gt=0)

    @field_validator("root_directory")
    @classmethod
    def _strip_slashes(cls, value: str) -> str:
        return value.strip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WHARF_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    listen: str = "127.0.0.1:5000"
    api_listen: str = "127.0.0.1:8443"
    # The registry's address for clients outside (the route's host); default: the listen address.
    public_host: str | None = None
    data_dir: Path = Path("wharf-data")
    database_url: str | None = None
    # Which servers this process runs: both, or the registry or the API alone (a registry host
    # needs only the database and storage settings).
    role: Literal["all", "registry", "api"] = "all"
    # Worker processes sharing the listening sockets; 1 serves in this process itself.
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    storage: Literal["filesystem", "s3"] = "filesystem"
    s3: S3Settings = S3Settings()
    # Seconds after which an idle upload session is removed.
    upload_timeout: float = Field(default=3600.0, gt=0)
    # Seconds a request writing an upload holds it (renewed while it writes): after a crash,
    # another process may take the upload over, or clean it, this long after.
    upload_lease: float = Field(default=60.0, ge=1, le=3600)
    # Online garbage collection (wharf.registry.collect): every `gc_interval` seconds (0: never)
    # blobs that no manifest references and nothing used for `gc_delay` seconds are deleted,
    # with stray stored blobs and manifests no repository holds. The delay is what keeps a
    # push in progress (layers first, the manifest last) from losing a layer.
    gc_interval: float = Field(default=600.0, ge=0)
    gc_delay: float = Field(default=3600.0, ge=0)
    # Seconds between checks of the spec tags that import with `importPolicy.scheduled` (and
    # of those whose import was never tried): OpenShift's 15 minutes by default; 0: never.
    import_interval: float = Field(default=900.0, ge=0)
    # Off: the registry alone, open to everybody, tags kept without image streams.
    auth: bool = True
    registry_tls: bool = True
    # Seconds an OAuth access token lasts; events kept for watches (older: 410 Gone).
    token_lifetime: int = Field(default=DEFAULT_LIFETIME, ge=1)
    retained_events: int = Field(default=ObjectStore.RETAINED_EVENTS, ge=1)
    # Logs: console lines for a terminal, or JSON lines; the level by OpenShift's names.
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["Normal", "Debug", "Trace", "TraceAll"] = "Normal"
    # Seconds a stopping server lets requests in flight finish before it cuts them.
    shutdown_timeout: float = Field(default=30.0, ge=0)
    # A bearer token that may read the registry's metrics without a cluster login (OpenShift's
    # `openshift.metrics.secret`); unset: only callers allowed `get registry/metrics`.
    metrics_secret: str | None = None

    @field_validator("listen", "api_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None:
            database_backend(value)
        return value

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.storage == "s3" and not self.s3.bucket:
            raise ValueError("storage s3 needs a bucket (--s3-bucket, WHARF_S3__BUCKET)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        file = settings_cls.model_config.get("yaml_file")
        if file is not None:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=file),)
        return sources

    @property
    def listen_host(self) -> str:
        return parse_host_port(self.listen)[0]

    @property
    def listen_port(self) -> int:
        return parse_host_port(self.listen)[1]

    @property
    def api_host(self) -> str:
        return parse_host_port(self.api_listen)[0]

    @property
    def api_port(self) -> int:
        return parse_host_port(self.api_listen)[1]

    @property
    def internal_address(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    @property
    def database(self) -> str:
        """The database's URL: `database_url`, or SQLite in the data directory."""
        return self.database_url or sqlite_url(self.data_dir.resolve())

    @property
    def serves_registry(self) -> bool:
        return self.role in ("all", "registry")

    @property
    def serves_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def upload_lease_time(self) -> timedelta:
        return timedelta(seconds=self.upload_lease)

    @property
    def upload_idle(self) -> timedelta:
        return timedelta(seconds=self.upload_timeout)

    @property
    def gc_grace(self) -> timedelta:
        return timedelta(seconds=self.gc_delay)

    @property
    def sweep_interval(self) -> float:
        """Stale uploads are looked for a few times per timeout, at most once a minute."""
        return min(60.0, max(self.upload_timeout / 4, 0.5))


def load_settings(flags: dict[str, Any], file: Path | None = None) -> Settings:
    """The settings from `flags` (only those given), the environment and the settings `file`
    (default: $WHARF_CONFIG, if set)."""
    named = file or os.environ.get(CONFIG_FILE_VARIABLE)
    if not named:
        return Settings(**flags)
    path = Path(named)
    if not path.is_file():
        raise ValueError(f"settings file {path} does not exist")

    class FromFile(Settings):
        model_config = SettingsConfigDict(yaml_file=path)

    # Validated once more as the one Settings class (no sources are read again here).
    return Settings.model_validate(FromFile(**flags).model_dump())
