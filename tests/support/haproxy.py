"""Debian's haproxy in front of Wharf replicas: round robin per request (haproxy balances each
HTTP request of a kept-alive connection on its own), health checks every 500 ms (three failed
in a row: down), and failed connections tried again on another server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.server import end_process, free_port, wait_until


def _config(port: int, servers: Sequence[int], check: str) -> str:
    lines = [
        "global",
        "    maxconn 2000",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 120s",
        "    timeout server 120s",
        # A request whose server refused or dropped the connection goes to another one.
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        "frontend registry",
        f"    bind 127.0.0.1:{port}",
        "    default_backend replicas",
        "backend replicas",
        "    balance roundrobin",
        f"    option httpchk GET {check}",
        "    timeout check 3s",
        "    default-server inter 500ms fall 3 rise 1",
        *(f"    server r{i} 127.0.0.1:{p} check" for i, p in enumerate(servers)),
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def running_haproxy(
    workdir: Path, servers: Sequence[int], check: str = "/healthz"
) -> Iterator[str]:
    """haproxy balancing `servers` (ports on 127.0.0.1), each checked with GET `check`;
    yields its host:port."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(_config(port, servers, check))
    subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True, timeout=30)
    log = (workdir / "haproxy.log").open("wb")
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    host = f"127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"haproxy exited with {process.returncode}")
        try:
            return requests.get(f"http://{host}{check}", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout=30)
        yield host
    finally:
        end_process(process)
        log.close()
