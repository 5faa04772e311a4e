"""Wharf killed with SIGKILL (no cleanup of any kind) and started again on the same data.

- Uploads whose writing request died with the process are removed at the next start, once
  their lease has lapsed (another process sharing the database could hold a live one), and
  the log says how many; an upload that was idle between chunks is kept and resumable.
- Killed at random moments during concurrent pushes: every manifest that was acknowledged,
  and its blobs, is intact afterwards, and no upload is half-visible.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.oci import (
    OCTET,
    Registry,
    absolute,
    assert_error,
    digest_of,
    finish,
    open_request,
    patch,
    random_bytes,
)
from tests.support.server import WharfProcess, running_wharf, wait_until

MiB = 1024 * 1024
REMOVED = re.compile(r"removed abandoned uploads.*count=(\d+)")


def removed_counts(wharf: WharfProcess) -> list[int]:
    return [int(found) for found in REMOVED.findall(wharf.log())]


def kill(wharf: WharfProcess) -> None:
    wharf.process.send_signal(signal.SIGKILL)
    wharf.process.wait(timeout=10)


def upload_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


@pytest.mark.slow
def test_uploads_whose_writer_died_are_removed_at_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    uploads = data_dir / "uploads"
    pending = random_bytes(12 * MiB, seed=1)
    kept = random_bytes(3 * MiB, seed=2)
    with running_wharf(data_dir) as first:
        reg = Registry(first.url)
        # Idle between chunks when the process dies: its client may go on.
        idle = absolute(reg.url, reg.start_upload("crash/app"))
        accepted = patch(reg, idle, kept[: 2 * MiB], start=0)
        assert accepted.status_code == 202
        idle_path = urlsplit(absolute(reg.url, accepted)).path
        # Being written when the process dies: a body that stops part way.
        cut = reg.start_upload("crash/app").headers["Location"]
        sock = open_request(
            first.host,
            "PATCH",
            cut,
            {"Content-Type": OCTET, "Content-Length": str(len(pending))},
            pending[: 8 * MiB],
        )
        try:
            cut_file = uploads / upload_id(cut)
            wait_until(lambda: cut_file.is_file() and cut_file.stat().st_size > 0, timeout=20)
            kill(first)
        finally:
            sock.close()
        assert removed_counts(first) == [0]  # its own start found nothing to remove

    assert cut_file.is_file()  # what the killed request left behind
    with running_wharf(data_dir, database_url=first.database_url) as second:
        # The killed request's lease lapses within a minute of its last renewal.
        wait_until(lambda: removed_counts(second) != [], timeout=90, interval=0.5)
        assert removed_counts(second) == [1], second.log()
        assert "leases lapse" in second.log()
        assert not cut_file.exists()
        reg = Registry(second.url)
        gone = reg.http.get(reg.url + cut)
        assert_error(gone, 404, "BLOB_UPLOAD_UNKNOWN")
        # The idle upload survived the crash and its cleanup, and finishes.
        idle = reg.url + idle_path
        status = reg.http.get(idle)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{2 * MiB - 1}"
        rest = {"Content-Range": f"{2 * MiB}-{len(kept) - 1}"}
        done = finish(reg, idle, digest_of(kept), kept[2 * MiB :], **rest)
        assert done.status_code == 201, done.text
        assert reg.blob("crash/app", digest_of(kept)).content == kept
        assert [p.name for p in uploads.iterdir()] == []
