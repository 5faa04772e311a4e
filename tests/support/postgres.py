"""A throwaway PostgreSQL cluster from Debian's `postgresql` package: initdb in a temporary
folder, pg_ctl on a free port, one fresh database per Wharf, stopped at the end.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` user that the
package creates."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.server import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="wharf-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return command

    def _command_status(self, tool: str, *args: str) -> int:
        command = self._command(tool, *args)
        return subprocess.run(command, capture_output=True, timeout=120).returncode

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._command(tool, *args), check=True, capture_output=True, text=True, timeout=120
        )

    def _client(self, database: str) -> tuple[str, ...]:
        """How psql and pg_dump reach `database`."""
        return ("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database)

    def start(self) -> PostgresCluster:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server (its clients' connections end), keeping its data for `resume`."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
            # A test cluster: durability is the suite's concern only where a test kills it.
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=400 -c shared_buffers=128MB"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        try:
            if self._command_status("pg_ctl", "-D", str(self.data), "status") == 0:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._run(
            "psql", *self._client(database), "-v", "ON_ERROR_STOP=1", "-Atc", statement
        ).stdout

    def dump(self, database: str) -> bytes:
        """Everything `database` holds, as pg_dump writes it."""
        command = self._command("pg_dump", *self._client(database))
        return subprocess.run(command, check=True, capture_output=True, timeout=120).stdout

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a database made for one Wharf."""
        name = f"wharf_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)


_shared: PostgresCluster | None = None


def shared_cluster() -> PostgresCluster:
    """The run's one cluster, started at first use (stop it with `stop_shared_cluster`)."""
    global _shared
    if _shared is None:
        _shared = PostgresCluster().start()
    return _shared


def stop_shared_cluster() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
