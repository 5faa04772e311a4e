"""Start Wharf and the CNCF reference registry (Debian's docker-registry) on fresh data dirs."""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One running registry process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def status_kib(self, field: str) -> int | None:
        """A `kB` field of /proc/PID/status (VmHWM, VmRSS), in KiB; None when unreadable."""
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return None

    def reset_peak_memory(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


# Only ever 127.0.0.1: never through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_healthy(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with _DIRECT.open(server.url + path, timeout=2) as response:
                if response.status == 200:
                    return
                last = response.status
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(
        f"{server.name} not healthy at {server.url}{path} within {timeout}s (last: {last}):\n"
        f"{server.log_tail()}"
    )


def export_source(revision: str, target: Path) -> Path:
    """Write `src/` of git `revision` into `target`; return the `src` directory."""
    target.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", revision, "src"],
        capture_output=True, timeout=60, check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, timeout=60, check=True)
    return target / "src"


def stop_server(server: Server) -> None:
    _stop(server.process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    took = time.monotonic() - started
    if took > 3:
        print(f"  (pid {process.pid} took {took:.0f}s to stop)", file=sys.stderr, flush=True)


# Options of `wharf serve` that make it comparable with the reference registry (plain HTTP,
# no authentication) and let several processes run side by side (the API's own port).
_COMPARABLE_OPTIONS = ("--no-auth", "--no-registry-tls")


def wharf_env(source: Path | None) -> dict[str, str]:
    """The environment of a Wharf process; `source` is a `src` directory that takes precedence
    over the installed package (a snapshot of another revision)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    return env


@functools.cache
def wharf_serve_options(python: str, source: Path | None = None) -> frozenset[str]:
    """The options this `wharf serve` knows (they grow as Wharf does)."""
    result = subprocess.run(
        [python, "-m", "wharf", "serve", "--help"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
        env={**wharf_env(source), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"},
    )
    return frozenset(re.findall(r"--[a-z][a-z-]*", result.stdout))


def wharf_command(
    port: int, data_dir: Path, python: str | None = None, source: Path | None = None
) -> list[str]:
    python = python or sys.executable
    known = wharf_serve_options(python, source)
    command = [
        python, "-m", "wharf", "serve",
        "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
    ]
    command += [option for option in _COMPARABLE_OPTIONS if option in known]
    if "--api-listen" in known:
        command += ["--api-listen", f"127.0.0.1:{free_port()}"]
    return command


@contextmanager
def running_wharf(
    work: Path,
    python: str | None = None,
    timeout: float = 60,
    data_dir: Path | None = None,
    name: str = "wharf",
    source: Path | None = None,
) -> Iterator[Server]:
    """Wharf with its data in `work`/wharf-data, or in `data_dir` (another process's: Wharf
    processes may share a data directory and database). `source`: see wharf_env."""
    port = free_port()
    if data_dir is None:
        data_dir = work / "wharf-data"
        data_dir.mkdir(parents=True)
    log_path = work / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            wharf_command(port, data_dir, python, source),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=wharf_env(source),
            cwd=REPO_ROOT,
        )
    server = Server(name, process, port, data_dir, log_path)
    try:
        _wait_healthy(server, "/healthz", timeout)
        yield server
    finally:
        _stop(process)


REFERENCE_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
"""


def reference_binary() -> str | None:
    return shutil.which(REFERENCE_BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )


@contextmanager
def running_reference(
    work: Path, binary: str | None = None, timeout: float = 30
) -> Iterator[Server]:
    """docker-registry with filesystem storage in `work`, delete enabled, no auth."""
    binary = binary or reference_binary()
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    data_dir = work / "reference-data"
    data_dir.mkdir(parents=True)
    config = work / "reference-config.yml"
    config.write_text(REFERENCE_CONFIG.format(root=data_dir, port=port))
    log_path = work / "reference.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
        )
    server = Server("reference", process, port, data_dir, log_path)
    try:
        _wait_healthy(server, "/v2/", timeout)
        yield server
    finally:
        _stop(process)
