"""The settings: `wharf serve` flags, WHARF_* environment variables and a settings file give the
same fields, in that order of precedence; bad values stop `wharf serve` with a message."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import forked
from wharf.settings import S3Settings, Settings, load_settings

S3_FIELDS = {
    "bucket": "images",
    "region": "eu-west-1",
    "region_endpoint": "http://127.0.0.1:9000",
    "virtual_hosted_style": True,
    "encrypt": True,
    "key_id": "alias/wharf",
    "chunk_size_mib": 16,
    "disable_redirect": True,
    "root_directory": "registry",
}


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`wharf serve ARGS` in a process of its own (forked: tests/support/forked.py)."""
    argv = ["serve", *args]
    code, out, err = forked.run(
        argv, env={**os.environ, **(env or {})}, cwd=Path.cwd(), stdin="", timeout=60
    )
    return subprocess.CompletedProcess(argv, code, out, err)


# Bad input first


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--s3-chunk-size", "4"], "chunk_size_mib"),
        (["--s3-chunk-size", "5121"], "chunk_size_mib"),
        (["--storage", "nfs"], "storage"),
        (["--storage", "s3"], "needs a bucket"),
        (["--listen", "nowhere"], "HOST:PORT"),
        (["--upload-timeout", "0"], "upload_timeout"),
        (["--config", "/nonexistent/wharf.yaml"], "does not exist"),
        (["--database-url", "sqlite:////tmp/w.db?timeout=soon"], "settings: database_url: "),
        (["--database-url", "sqlite:////tmp/w.db?timeout=0"], "timeout is seconds"),
        (["--database-url", "mysql://root:hunter2@db/wharf"], "unsupported database 'mysql'"),
        (["--database-url", "not a url"], "settings: database_url: "),
    ],
)
def test_bad_settings_stop_serve_with_a_message(args: list[str], message: str) -> None:
    done = serve(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("error: ")
    assert message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "hunter2" not in done.stderr  # a URL's password is never repeated


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--database-url", "mysql://root:hunter2@db/wharf"], {}, "database_url: "),
        (
            [],
            {"WHARF_DATABASE_URL": "postgresql://u:hunter2@db/w", "WHARF_WORKERS": "x"},
            "workers: ",
        ),
    ],
)
def test_bad_settings_stop_migrate_without_repeating_them(
    args: list[str], env: dict[str, str], message: str
) -> None:
    code, _out, err = forked.run(
        ["migrate", *args], env={**os.environ, **env}, cwd=Path.cwd(), stdin="", timeout=60
    )
    assert code == 1
    assert err.startswith(f"error: bad settings: {message}"), err
    assert len(err.splitlines()) == 1, err
    assert "hunter2" not in err


def test_a_bad_environment_variable_stops_serve() -> None:
    done = serve(env={"WHARF_S3__CHUNK_SIZE_MIB": "3"})
    assert done.returncode == 1
    assert "chunk_size_mib" in done.stderr


def test_unknown_fields_in_a_settings_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "wharf.yaml"
    file.write_text("storage: s3\ns3:\n  bucket: b\n  bukcet: typo\n")
    done = serve("--config", str(file))
    assert done.returncode == 1
    assert "bukcet" in done.stderr


# One set of fields, three sources


def test_flags_environment_and_file_give_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("WHARF_"):
            monkeypatch.delenv(name)
    from_flags = load_settings({"storage": "s3", "upload_timeout": 60, "s3": S3_FIELDS})

    file = tmp_path / "wharf.json"
    file.write_text(json.dumps({"storage": "s3", "upload_timeout": 60, "s3": S3_FIELDS}))
    from_file = load_settings({}, file)

    monkeypatch.setenv("WHARF_STORAGE", "s3")
    monkeypatch.setenv("WHARF_UPLOAD_TIMEOUT", "60")
    for name, value in S3_FIELDS.items():
        monkeypatch.setenv(f"WHARF_S3__{name.upper()}", str(value).lower())
    from_environment = load_settings({})

    assert from_flags == from_file == from_environment
    assert from_flags.s3 == S3Settings.model_validate(S3_FIELDS)
    assert from_flags.upload_timeout == 60


def test_flags_win_over_the_environment_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "wharf.yaml"
    file.write_text(
        "listen: 127.0.0.1:7001\napi_listen: 127.0.0.1:7002\n"
        "storage: s3\ns3:\n  bucket: from-file\n  region: file-region\n"
    )
    monkeypatch.setenv("WHARF_CONFIG", str(file))
    monkeypatch.setenv("WHARF_API_LISTEN", "127.0.0.1:7003")
    monkeypatch.setenv("WHARF_S3__BUCKET", "from-environment")
    settings = load_settings({"listen": "127.0.0.1:7004"})
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 7004)
    assert settings.api_port == 7003
    # Nested fields merge across sources: the bucket from the environment, the region from
    # the file.
    assert settings.s3.bucket == "from-environment"
    assert settings.s3.region == "file-region"


def test_defaults_are_todays_behaviour() -> None:
    settings = Settings()
    assert settings.storage == "filesystem"
    assert settings.internal_address == "127.0.0.1:5000"
    assert settings.s3.chunk_size_mib == 10
    assert settings.s3.virtual_hosted_style is False
    assert settings.sweep_interval == 60.0
