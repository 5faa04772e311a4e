"""Start real Wharf processes on free ports for the tests."""

from __future__ import annotations

import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass
class WharfProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _healthy(url: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"wharf exited with {process.returncode}")
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def _own_api_port(args: tuple[str, ...]) -> tuple[str, ...]:
    """Give the API server of each test process a free port of its own (its default, 8443,
    would let only one Wharf run at a time), where the command has that option."""
    from wharf.cli.main import serve_command

    if "api_listen" not in inspect.signature(serve_command).parameters:
        return args
    if any(arg.startswith("--api-listen") for arg in args):
        return args
    return (*args, "--api-listen", f"127.0.0.1:{free_port()}")


@contextmanager
def running_wharf(data_dir: Path, *args: str, port: int | None = None) -> Iterator[WharfProcess]:
    port = port or free_port()
    args = _own_api_port(args)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"wharf-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wharf", "serve", "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(data_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    wharf = WharfProcess(process, port, data_dir, log_path)
    try:
        wait_until(lambda: _healthy(wharf.url, process), timeout=60)
        yield wharf
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
