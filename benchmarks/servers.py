"""Start Wharf and the CNCF reference registry (Debian's docker-registry) on fresh data dirs."""

from __future__ import annotations

import base64
import functools
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_BINARY = "docker-registry"
CHALLENGING_CLIENT = "openshift-challenging-client"


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
    api_port: int | None = None  # Wharf's cluster API (HTTPS), where it has --api-listen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str | None:
        return None if self.api_port is None else f"https://127.0.0.1:{self.api_port}"

    @property
    def ca_file(self) -> Path:
        """The CA of Wharf's API serving certificate."""
        return self.data_dir / "tls" / "ca.crt"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def pids(self) -> list[int]:
        """The server's process and its worker processes (Wharf's --workers)."""
        found = [self.pid]
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                found += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                continue
        return found

    def status_kib(self, field: str) -> int | None:
        """A `kB` field of /proc/PID/status (VmHWM, VmRSS), in KiB, summed over the server's
        processes (for peaks: an upper bound of the peak of the sum); None when unreadable."""
        total: int | None = None
        for pid in self.pids:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith(field + ":"):
                    total = (total or 0) + int(line.split()[1])
        return total

    def reset_peak_memory(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
        try:
            for pid in self.pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
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
        capture_output=True,
        timeout=60,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, timeout=60, check=True)
    return target / "src"


@contextmanager
def py_spy(pid: int, output: Path, *options: str) -> Iterator[None]:
    """`py-spy record` of process `pid` into `output` (raw collapsed stacks) while the block
    runs."""
    executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            executable,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--nonblocking",
            *options,
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let it attach: a profile, not synchronisation of what is measured
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
# With authentication on (cluster tokens and RBAC on every request), still plain HTTP.
_AUTH_OPTIONS = ("--no-registry-tls",)


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
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**wharf_env(source), "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"},
    )
    return frozenset(re.findall(r"--[a-z][a-z-]*", result.stdout))


def wharf_supports_auth(python: str | None = None, source: Path | None = None) -> bool:
    """Whether this `wharf serve` can run with auth on and plain HTTP on ports of its own."""
    known = wharf_serve_options(python or sys.executable, source)
    return {"--no-auth", "--no-registry-tls", "--api-listen"} <= known


def wharf_command(
    port: int,
    data_dir: Path,
    python: str | None = None,
    source: Path | None = None,
    auth: bool = False,
    api_port: int | None = None,
    storage: tuple[str, ...] = (),
) -> list[str]:
    """`auth`: registry access by cluster tokens and RBAC (Wharf's default), else `--no-auth`;
    plain HTTP either way."""
    python = python or sys.executable
    known = wharf_serve_options(python, source)
    command = [
        python,
        "-m",
        "wharf",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(data_dir),
    ]
    options = _AUTH_OPTIONS if auth else _COMPARABLE_OPTIONS
    command += [option for option in options if option in known]
    if "--api-listen" in known:
        command += ["--api-listen", f"127.0.0.1:{api_port or free_port()}"]
    return command + list(storage)


@contextmanager
def running_wharf(
    work: Path,
    python: str | None = None,
    timeout: float = 60,
    data_dir: Path | None = None,
    name: str = "wharf",
    source: Path | None = None,
    auth: bool = False,
    storage: tuple[str, ...] = (),
) -> Iterator[Server]:
    """Wharf with its data in `work`/wharf-data, or in `data_dir` (another process's: Wharf
    processes may share a data directory and database). `source`: see wharf_env. `auth`: with
    registry authentication on (log in with cluster_login); it waits for the API too.
    `storage`: options of `wharf serve` for another storage (S3Storage.wharf_options)."""
    port = free_port()
    python = python or sys.executable
    if auth and not wharf_supports_auth(python, source):
        raise RuntimeError("this wharf serve lacks --no-auth, --no-registry-tls or --api-listen")
    if data_dir is None:
        data_dir = work / "wharf-data"
        data_dir.mkdir(parents=True)
    log_path = work / f"{name}.log"
    api_port = free_port() if "--api-listen" in wharf_serve_options(python, source) else None
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            wharf_command(port, data_dir, python, source, auth, api_port, storage),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=wharf_env(source),
            cwd=REPO_ROOT,
        )
    server = Server(name, process, port, data_dir, log_path, api_port)
    try:
        _wait_healthy(server, "/healthz", timeout)
        if auth:
            _wait_api_ready(server, timeout)
        yield server
    finally:
        _stop(process)


def _api_context(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def _api_get(
    server: Server, path: str, headers: dict[str, str], timeout: float = 30
) -> tuple[int, str, bytes]:
    """GET `path` of Wharf's API (HTTPS with its CA), redirects not followed:
    (status, Location header, body)."""
    if server.api_port is None:
        raise RuntimeError(f"{server.name} has no API port of its own")
    connection = http.client.HTTPSConnection(
        "127.0.0.1", server.api_port, context=_api_context(server), timeout=timeout
    )
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()
    finally:
        connection.close()


def _wait_api_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        if server.ca_file.exists():
            try:
                status, _, _ = _api_get(server, "/readyz", {}, timeout=2)
                if status == 200:
                    return
                last = status
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                last = exc
        time.sleep(0.05)
    raise RuntimeError(
        f"{server.name}'s API not ready at {server.api_url}/readyz within {timeout}s "
        f"(last: {last}):\n{server.log_tail()}"
    )


def cluster_login(server: Server, user: str = "kubeadmin", password: str | None = None) -> str:
    """Log in to Wharf's API like `oc login` (the challenging client's implicit grant) and
    return the access token; by default as kubeadmin, with the password of the data dir."""
    if password is None:
        password = (server.data_dir / "auth" / "kubeadmin-password").read_text().strip()
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    query = urlencode({"client_id": CHALLENGING_CLIENT, "response_type": "token"})
    status, location, body = _api_get(
        server,
        f"/oauth/authorize?{query}",
        {"Authorization": f"Basic {credentials}", "X-CSRF-Token": "1"},
    )
    token = parse_qs(urlsplit(location).fragment).get("access_token", [""])[0]
    if status != 302 or not token:
        raise RuntimeError(
            f"logging in to {server.name} as {user} answered {status} "
            f"(Location {location!r}): {body[:300].decode(errors='replace')}"
        )
    return token


REFERENCE_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
{storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  # One secret for every instance: replicas behind a balancer check each other's upload state.
  secret: wharf-benchmark-shared-secret
"""
REFERENCE_FILESYSTEM = """\
  filesystem:
    rootdirectory: {root}"""
# The reference's s3 driver, as Wharf's: 10 MiB parts, path-style (its default with an
# endpoint), redirects to presigned URLs on.
REFERENCE_S3 = """\
  s3:
    accesskey: {access_key}
    secretkey: {secret_key}
    region: us-east-1
    regionendpoint: {endpoint}
    bucket: {bucket}
    secure: false
    v4auth: true
    chunksize: 10485760
  redirect:
    disable: false"""


@dataclass
class S3Storage:
    """A moto server (moto's standalone S3) with a bucket for each registry."""

    endpoint: str
    access_key: str = "bench"
    secret_key: str = "bench-secret"

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def create_bucket(self, name: str) -> str:
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with _DIRECT.open(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"creating bucket {name} answered {response.status}")
        return name

    def wharf_options(self, bucket: str) -> tuple[str, ...]:
        return ("--storage", "s3", "--s3-bucket", bucket, "--s3-endpoint", self.endpoint)

    def reference_storage(self, bucket: str) -> str:
        return REFERENCE_S3.format(
            access_key=self.access_key,
            secret_key=self.secret_key,
            endpoint=self.endpoint,
            bucket=bucket,
        )


@contextmanager
def running_moto(work: Path, timeout: float = 60) -> Iterator[S3Storage]:
    """moto's standalone S3 server on a free port, its credentials in this process's
    environment (every Wharf started from here inherits them)."""
    port = free_port()
    log_path = work / "moto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    storage = S3Storage(f"http://127.0.0.1:{port}")
    saved = {name: os.environ.get(name) for name in storage.environment()}
    os.environ.update(storage.environment())
    try:
        _wait_healthy(Server("moto", process, port, work, log_path), "/moto-api/", timeout)
        yield storage
    finally:
        _stop(process)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reference_binary() -> str | None:
    return shutil.which(REFERENCE_BINARY) or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None
    )


@contextmanager
def running_reference(
    work: Path, binary: str | None = None, timeout: float = 30, storage: str | None = None
) -> Iterator[Server]:
    """docker-registry with filesystem storage in `work` (or the `storage` section given,
    S3Storage.reference_storage), delete enabled, no auth."""
    binary = binary or reference_binary()
    if binary is None:
        raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    data_dir = work / "reference-data"
    data_dir.mkdir(parents=True)
    config = work / "reference-config.yml"
    storage = storage or REFERENCE_FILESYSTEM.format(root=data_dir)
    config.write_text(REFERENCE_CONFIG.format(storage=storage, port=port))
    log_path = work / "reference.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=work,
            # The AWS SDK of this build cannot take a CA bundle (it panics); S3 here is plain
            # HTTP on the loopback anyway.
            env={k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
        )
    server = Server("reference", process, port, data_dir, log_path)
    try:
        _wait_healthy(server, "/v2/", timeout)
        yield server
    finally:
        _stop(process)
