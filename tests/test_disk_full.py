"""What a user gets when the disk under Wharf's data directory is full: a clear 503 in each
protocol's form (OCI UNAVAILABLE with Retry-After on /v2/, a Kubernetes Status on the API)
saying that storage is full, a line in the log and no traceback, the server up; everything
acknowledged before stays readable, and once space is freed the same work succeeds.

The disk is a tmpfs of a few MiB mounted for the test, filled to its last byte by a file that
the test then removes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.lanes import database_lane
from tests.support.oci import OCTET, Registry, absolute, assert_error, digest_of, with_query
from tests.support.server import free_port, running_wharf


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs privileges this machine lacks: {mounted.stderr}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Fill `disk` to its last byte with one file; removing the file frees the space."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    out.write(bytes(size))
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    assert os.statvfs(disk).f_bavail == 0
    return filler


def assert_full(answer: requests.Response) -> None:
    error = assert_error(answer, 503, "UNAVAILABLE")
    assert "full" in error["message"], error
    assert int(answer.headers["Retry-After"]) > 0


def test_pushes_to_a_full_disk_are_refused_with_503_and_nothing_stored_is_lost(
    small_disk: Path,
) -> None:
    with running_wharf(small_disk / "data") as wharf:
        registry = Registry(wharf.url)
        first = registry.push_image("team/app", "v1", layers=2, seed=1)
        filler = fill(small_disk)

        blob = os.urandom(256 * 1024)
        digest = digest_of(blob)
        assert_full(
            registry.http.post(
                registry.v2(f"team/app/blobs/uploads/?digest={digest}"),
                data=blob,
                headers={"Content-Type": OCTET},
            )
        )
        # A session: its POST may still fit (SQLite reuses its log's pages); its bytes do not.
        opened = registry.http.post(registry.v2("team/app/blobs/uploads/"))
        if opened.status_code != 503:
            assert opened.status_code == 202, opened.text
            assert_full(
                registry.http.put(
                    with_query(absolute(wharf.url, opened), digest=digest),
                    data=blob,
                    headers={"Content-Type": OCTET},
                )
            )
        else:
            assert_full(opened)
        # A manifest of stored blobs under a new tag: on PostgreSQL it needs no room here.
        tagged = registry.put_manifest("team/app", "v2", first.payload)
        if tagged.status_code != 201:
            assert_full(tagged)

        assert registry.get_manifest("team/app", "v1").content == first.payload
        for stored, data in first.blobs.items():
            assert registry.blob("team/app", stored).content == data
        assert registry.http.get(f"{wharf.url}/healthz").status_code == 200

        filler.unlink()
        again = registry.http.post(
            registry.v2(f"team/app/blobs/uploads/?digest={digest}"),
            data=blob,
            headers={"Content-Type": OCTET},
        )
        assert again.status_code == 201, again.text
        assert registry.blob("team/app", digest).content == blob
        second = registry.push_image("team/app", "v3", layers=2, seed=3)
        assert registry.get_manifest("team/app", "v3").content == second.payload
        assert registry.get_manifest("team/app", "v1").content == first.payload
        log = wharf.log()
    assert "Traceback" not in log
    assert "status=500" not in log
    assert "no space left" in log


@pytest.mark.skipif(
    database_lane() != "sqlite", reason="the database is on PostgreSQL, not on the full disk"
)
def test_api_writes_to_a_full_disk_are_refused_with_503_and_nothing_stored_is_lost(
    small_disk: Path, tmp_path: Path
) -> None:
    with running_wharf(small_disk / "data", integrated=True) as wharf:
        cluster = Cluster(wharf, tmp_path)
        cluster.new_project(cluster.admin, "team")
        path = "/api/v1/namespaces/team/configmaps"
        filler = fill(small_disk)

        created: dict[str, str] = {}
        refused = None
        # SQLite writes into its log's free pages first: the log grows until the disk refuses.
        for number in range(400):
            value = os.urandom(24 * 1024).hex()
            answer = cluster.admin.post(
                path, json={"metadata": {"name": f"c{number}"}, "data": {"v": value}}
            )
            if answer.status_code != 201:
                refused = answer
                break
            created[f"c{number}"] = value
        assert refused is not None, "400 writes of 48 KiB fitted on a full disk"
        assert refused.status_code == 503, refused.text
        status = refused.json()
        assert (status["kind"], status["reason"]) == ("Status", "ServiceUnavailable"), status
        assert "full" in status["message"], status
        assert int(refused.headers["Retry-After"]) > 0
        for name, value in created.items():
            assert cluster.admin.get(f"{path}/{name}").json()["data"]["v"] == value

        filler.unlink()
        answer = cluster.admin.post(path, json={"metadata": {"name": "after"}, "data": {}})
        assert answer.status_code == 201, answer.text
        log = wharf.log()
    assert "Traceback" not in log
    assert "no space left" in log


@pytest.mark.skipif(
    database_lane() != "sqlite", reason="the database is on PostgreSQL, not on the full disk"
)
def test_starting_on_a_full_disk_ends_with_one_clear_line(small_disk: Path) -> None:
    data = small_disk / "data"
    data.mkdir()
    fill(small_disk)
    started = subprocess.run(
        [
            sys.executable, "-m", "wharf", "serve", "--no-auth", "--no-registry-tls",
            "--data-dir", str(data), "--workers", "1",
            "--listen", f"127.0.0.1:{free_port()}", "--api-listen", f"127.0.0.1:{free_port()}",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert started.returncode == 1, started.stderr
    assert started.stderr.startswith("error: the database is full"), started.stderr
    assert "Traceback" not in started.stderr
