"""Start real Wharf processes on free ports for the tests."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.forked import Forked
from tests.support.lanes import database_lane

# Ports for the servers a test starts, by lane, below the kernel's ephemeral range (32768 and
# up): a port the kernel handed out with bind(0) is free again once closed, and the other lane
# or an outgoing connection may take it before our server binds it (a server that then exits
# with "address already in use"). Each lane counts through a range of its own instead.
_LANE_PORTS = {"sqlite": range(20000, 26000), "postgresql": range(26000, 32000)}
_next_port = itertools.count(random.randrange(6000))


def free_port() -> int:
    ports = _LANE_PORTS[database_lane()]
    for _ in ports:
        port = ports[next(_next_port) % len(ports)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port in {ports}")


def end_process(process: subprocess.Popen[Any] | Forked, timeout: float = 10) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# On PostgreSQL, the database of each data directory: a Wharf started again on the same folder
# (a restart), or beside another on it (two processes), finds the same metadata, as on SQLite.
_databases: dict[Path, str] = {}


def database_for_new_wharf(data_dir: Path | None = None) -> str | None:
    """The database URL for a Wharf on `data_dir` (a new one for a new folder), or None for
    its default SQLite file."""
    if database_lane() == "sqlite":
        return None
    from tests.support.postgres import shared_cluster

    if data_dir is None:
        return shared_cluster().new_database()
    key = data_dir.resolve()
    if key not in _databases:
        _databases[key] = shared_cluster().new_database()
    return _databases[key]


@dataclass
class WharfProcess:
    process: subprocess.Popen[bytes] | Forked
    port: int
    data_dir: Path
    log_path: Path
    api_port: int
    integrated: bool = False
    # Where its metadata lives: None for the SQLite file in `data_dir`.
    database_url: str | None = None
    role: str = "all"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.integrated else 'http'}://{self.host}"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the API's serving certificate: pass it as `verify=`."""
        return self.data_dir / "tls" / "ca.crt"

    @property
    def kubeadmin_password(self) -> str:
        return (self.data_dir / "auth" / "kubeadmin-password").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def database_name(self) -> str | None:
        """Its PostgreSQL database's name (None on SQLite)."""
        return self.database_url.rsplit("/", 1)[1] if self.database_url else None

    def sql(self, statement: str) -> None:
        """Run `statement` on its database from outside, as another program would."""
        if self.database_name is None:
            with sqlite3.connect(self.data_dir / "wharf.db") as conn:
                conn.execute(statement)
            return
        from tests.support.postgres import shared_cluster

        shared_cluster().sql(statement, self.database_name)

    def stored_bytes(self) -> bytes:
        """Everything its database keeps (SQLite's files, WAL included; PostgreSQL's dump)."""
        if self.database_name is None:
            return b"".join(p.read_bytes() for p in sorted(self.data_dir.glob("wharf.db*")))
        from tests.support.postgres import shared_cluster

        return shared_cluster().dump(self.database_name)

    def wait_ready(self) -> None:
        """Until the servers of its role answer (a minute at most)."""
        registry_ca = self.ca_file if self.integrated else None
        wait_until(
            lambda: (
                (self.role == "registry" or self._healthy(f"{self.api_url}/readyz", self.ca_file))
                and (self.role == "api" or self._healthy(f"{self.url}/healthz", registry_ca))
            ),
            timeout=60,
        )

    def _healthy(self, url: str, ca_file: Path | None = None) -> bool:
        if self.process.poll() is not None:
            tail = "\n".join(self.log().splitlines()[-15:])
            raise AssertionError(f"wharf exited with {self.process.returncode}:\n{tail}")
        if ca_file is not None and not ca_file.exists():
            return False
        try:
            return requests.get(url, timeout=2, verify=str(ca_file or True)).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False


@contextmanager
def running_wharf(
    data_dir: Path,
    *args: str,
    port: int | None = None,
    api_port: int | None = None,
    integrated: bool = False,
    workers: int = 1,
    database_url: str | None = None,
    role: str = "all",
    wait: bool = True,
    cold: bool = False,
) -> Iterator[WharfProcess]:
    """A Wharf process. By default its registry stands alone (plain HTTP, open to everybody);
    `integrated` runs it as users do: TLS, cluster logins and permissions, image streams.
    One worker process unless `workers` says otherwise (the tests of workers do); a database
    of its own unless `database_url` names one to share. `wait`: return once it serves (or
    at once: call `wait_ready`). Forked from a server that imported Wharf once
    (tests/support/forked.py), unless `cold`: `python -m wharf serve` itself."""
    port = port or free_port()
    # Each process gets an API port of its own: the default, 8443, would allow only one.
    api_port = api_port or free_port()
    args = ("--workers", str(workers), "--role", role, *args)
    if not integrated:
        args = ("--no-auth", "--no-registry-tls", *args)
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = database_url or database_for_new_wharf(data_dir)
    if database_url is not None:
        args = ("--database-url", database_url, *args)
    log_path = data_dir.parent / f"wharf-{port}.log"
    argv = [
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--api-listen",
        f"127.0.0.1:{api_port}",
        "--data-dir",
        str(data_dir),
        *args,
    ]
    process: subprocess.Popen[bytes] | Forked
    if cold:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "wharf", *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
    else:
        log_path.write_bytes(b"")
        process = Forked(argv, env=dict(os.environ), cwd=Path.cwd(), stdout=log_path)
    wharf = WharfProcess(
        process, port, data_dir, log_path, api_port, integrated, database_url, role
    )
    try:
        if wait:
            wharf.wait_ready()
        yield wharf
    finally:
        end_process(process, timeout=20)
