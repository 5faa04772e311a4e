"""Wharf killed with SIGKILL (no cleanup of any kind) and started again on the same data.

- Uploads whose writing request died with the process are removed at the next start, once
  their lease has lapsed (another process sharing the database could hold a live one), and
  the log says how many; an upload that was idle between chunks is kept and resumable.
- Killed at random moments during concurrent pushes: every manifest that was acknowledged,
  and its blobs, is intact afterwards, and no upload is half-visible.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCTET,
    Registry,
    absolute,
    assert_error,
    descriptor,
    digest_of,
    finish,
    image_manifest,
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
    # Leases of ten seconds: the dead writer's still holds when the next process starts (well
    # within that), and lapses soon after.
    lease = ("--upload-lease", "10")
    with running_wharf(data_dir, *lease) as first:
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
    with running_wharf(data_dir, *lease, database_url=first.database_url) as second:
        # The killed request's lease lapses within its length of its last renewal.
        wait_until(lambda: removed_counts(second) != [], timeout=30, interval=0.2)
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


# Killed at random moments during concurrent pushes

TRIALS = 5
PUSHERS = 4


@dataclass(frozen=True)
class Pushed:
    repository: str
    tag: str
    digest: str
    blobs: tuple[str, ...]  # config and layers


@dataclass
class Record:
    """What the pushers tried and what the registry acknowledged, over every trial."""

    acknowledged: list[Pushed] = field(default_factory=list)
    blobs_tried: dict[str, set[str]] = field(default_factory=dict)  # repository -> digests
    manifests_tried: dict[str, set[str]] = field(default_factory=dict)  # repository -> digests
    unexpected: list[str] = field(default_factory=list)  # answers that are no crash's doing
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tried(self, table: dict[str, set[str]], repository: str, digest: str) -> None:
        with self.lock:
            table.setdefault(repository, set()).add(digest)


def push_blob(reg: Registry, repository: str, data: bytes, chunked: bool) -> str:
    """One blob, monolithic (POST, PUT with the body) or in 2 MiB PATCHes; the digest."""
    digest = digest_of(data)
    url = absolute(reg.url, reg.start_upload(repository))
    if chunked:
        for start in range(0, len(data), 2 * MiB):
            accepted = patch(reg, url, data[start : start + 2 * MiB], start=start)
            assert accepted.status_code == 202, accepted.text
            url = absolute(reg.url, accepted)
        done = finish(reg, url, digest)
    else:
        done = finish(reg, url, digest, data)
    assert done.status_code == 201, done.text
    return digest


def pusher(url: str, repository: str, seed: int, record: Record) -> None:
    """Push images (a config and one to three layers, some of several MiB) until the server
    goes away."""
    reg = Registry(url)
    rng = random.Random(seed)
    number = 0
    try:
        while True:
            number += 1
            config = json.dumps({"architecture": "amd64", "os": "linux", "n": seed + number})
            layers = []
            blobs = [config.encode()]
            for _ in range(rng.randint(1, 3)):
                size = rng.choice((rng.randint(100, 64 * 1024), rng.randint(1, 12) * MiB))
                blobs.append(rng.randbytes(size))
            for data in blobs:
                record.tried(record.blobs_tried, repository, digest_of(data))
                push_blob(reg, repository, data, chunked=len(data) > 4 * MiB and rng.random() < 0.5)
            layers = [descriptor(OCI_LAYER, data) for data in blobs[1:]]
            payload = image_manifest(descriptor(OCI_CONFIG, blobs[0]), layers)
            digest = digest_of(payload)
            tag = f"n{number}"
            record.tried(record.manifests_tried, repository, digest)
            answer = reg.put_manifest(repository, tag, payload)
            assert answer.status_code == 201, answer.text
            with record.lock:
                digests = tuple(digest_of(data) for data in blobs)
                record.acknowledged.append(Pushed(repository, tag, digest, digests))
    except requests.RequestException:
        return  # the server was killed: whatever was in flight is unacknowledged
    except AssertionError as exc:
        with record.lock:
            record.unexpected.append(f"{repository}: {exc}")


def verify(reg: Registry, record: Record, data_dir: Path, seed: int) -> None:
    where = f"(WHARF_CRASH_SEED={seed})"
    # Every acknowledged manifest, by tag and by digest, and its blobs, byte for byte.
    for pushed in record.acknowledged:
        by_tag = reg.get_manifest(pushed.repository, pushed.tag)
        assert by_tag.status_code == 200, (pushed, by_tag.text, where)
        assert digest_of(by_tag.content) == pushed.digest, (pushed, where)
        assert reg.get_manifest(pushed.repository, pushed.digest).content == by_tag.content
        for blob in pushed.blobs:
            got = reg.blob(pushed.repository, blob)
            assert got.status_code == 200, (pushed, blob, where)
            assert digest_of(got.content) == blob, (pushed, blob, where)
    # Nothing half-visible: whatever answers for a blob or manifest that was tried (a 201
    # lost with the process, or never sent) is whole, and every tag leads to a whole image.
    for repository, digests in record.blobs_tried.items():
        for blob in digests:
            head = reg.head_blob(repository, blob)
            assert head.status_code in (200, 404), (repository, blob, head.status_code, where)
            if head.status_code == 200:
                got = reg.blob(repository, blob)
                assert digest_of(got.content) == blob, (repository, blob, where)
                assert int(head.headers["Content-Length"]) == len(got.content)
    for repository, digests in record.manifests_tried.items():
        listed = reg.http.get(reg.v2(f"{repository}/tags/list"))
        assert listed.status_code in (200, 404), (repository, listed.text, where)
        tags = listed.json().get("tags") or [] if listed.status_code == 200 else []
        for tag in tags:
            manifest = reg.get_manifest(repository, tag)
            assert manifest.status_code == 200, (repository, tag, where)
            assert digest_of(manifest.content) in digests, (repository, tag, where)
            document = json.loads(manifest.content)
            for descriptor_ in [document["config"], *document["layers"]]:
                got = reg.blob(repository, descriptor_["digest"])
                assert digest_of(got.content) == descriptor_["digest"], (repository, tag, where)
    # On disk, no file under a blob's name holds anything but that blob.
    for path in (data_dir / "blobs").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, (path, where)


@pytest.mark.slow
def test_kill_9_during_concurrent_pushes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = int(os.environ.get("WHARF_CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    record = Record()
    database_url: str | None = None
    for trial in range(TRIALS):
        with running_wharf(data_dir, database_url=database_url) as server:
            database_url = server.database_url
            reg = Registry(server.url)
            verify(reg, record, data_dir, seed)  # what the trials before left
            before = len(record.acknowledged)
            threads = [
                threading.Thread(
                    target=pusher,
                    args=(server.url, f"trial{trial}/p{i}", rng.randrange(1 << 30), record),
                )
                for i in range(PUSHERS)
            ]
            for thread in threads:
                thread.start()
            # Some acknowledged pushes in each trial, then a kill at a random moment.
            wait_until(lambda: len(record.acknowledged) > before, timeout=60)  # noqa: B023
            time.sleep(rng.uniform(0.0, 1.5))  # the moment of the kill, not a synchronisation
            kill(server)
            for thread in threads:
                thread.join(timeout=60)
            assert not any(thread.is_alive() for thread in threads)
            assert record.unexpected == [], (record.unexpected, seed)
    with running_wharf(data_dir, database_url=database_url) as server:
        verify(Registry(server.url), record, data_dir, seed)
        assert server.process.poll() is None
    assert len(record.acknowledged) >= TRIALS
