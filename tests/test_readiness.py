"""/readyz (readiness) on both ports fails with 503 while the database does not answer, and
names the part that failed; /healthz (liveness) stays 200. (Storage going away is in
test_registry_s3_faults.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.server import WharfProcess, running_wharf, wait_until

# Another program (a backup, a stuck sqlite3 shell) holds the database's write lock until told.
HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def wharf(tmp_path: Path) -> Iterator[WharfProcess]:
    with running_wharf(tmp_path / "data") as server:
        if server.database_url is not None:
            pytest.skip("holds SQLite's write lock; this run's database is another")
        yield server


def readyz(url: str, ca: Path) -> requests.Response:
    return requests.get(f"{url}/readyz", timeout=15, verify=str(ca))


def test_a_database_that_does_not_answer_makes_both_ports_unready(wharf: WharfProcess) -> None:
    ca = wharf.ca_file
    for url in (wharf.url, wharf.api_url):
        answer = readyz(url, ca)
        assert (answer.status_code, answer.text) == (200, "ok")
    verbose = requests.get(f"{wharf.url}/readyz?verbose", timeout=15)
    assert verbose.text.splitlines() == ["[+]database ok", "[+]storage ok", "readyz check passed"]

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(wharf.data_dir / "wharf.db")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        registry, api = readyz(wharf.url, ca), readyz(wharf.api_url, ca)
        assert registry.status_code == 503
        assert registry.text.splitlines() == [
            "[-]database failed: reason withheld",
            "[+]storage ok",
            "readyz check failed",
        ]
        assert api.status_code == 503
        assert api.text.splitlines() == [
            "[-]database failed: reason withheld",
            "readyz check failed",
        ]
        assert registry.headers["Cache-Control"] == "no-cache"
        # Liveness: the process serves.
        for url in (wharf.url, wharf.api_url):
            assert requests.get(f"{url}/healthz", timeout=5, verify=str(ca)).status_code == 200
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)

    wait_until(lambda: readyz(wharf.url, ca).status_code == 200, timeout=20)
    wait_until(lambda: readyz(wharf.api_url, ca).status_code == 200, timeout=20)
    log = wharf.log()
    # Said once per port when it stopped answering, with the reason, and once when it came back.
    not_ready = [line for line in log.splitlines() if "not ready" in line]
    assert len(not_ready) == 2, not_ready
    assert all("part=database" in line and "SQLITE_BUSY" in line for line in not_ready)
    assert log.count("ready again") == 2
