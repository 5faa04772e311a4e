"""Online garbage collection with no read-only window: the GC runs every 0.2 s with a 2 s grace
delay while eight clients push and delete images (layers shared between them, so that a layer
one client's delete leaves unreferenced is pushed again by another), for a bounded time. Every
image whose manifest PUT was acknowledged and that was not deleted stays pullable, byte for
byte, during the run and after; once the clients stop, storage (files on disk, objects in the
bucket) holds exactly the blobs the remaining images name: everything else is gone."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    image_manifest,
)
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import WharfProcess, running_wharf, wait_until

CLIENTS = 8
RUN_SECONDS = 12.0
DELAY = 2.0
SHARED_LAYERS = [bytes([n]) * 4096 + uuid.uuid4().bytes for n in range(4)]


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[WharfProcess, str]]:
    args: tuple[str, ...] = ("--gc-interval", "0.2", "--gc-delay", str(DELAY))
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto")
        args += s3_args(moto, moto.new_bucket())
    with running_wharf(tmp_path / "data", *args) as process:
        yield process, request.param


def stored(server: WharfProcess, lane: str, request: pytest.FixtureRequest) -> dict[str, int]:
    """digest -> size of every blob in storage."""
    if lane == "filesystem":
        found = {}
        for path in (server.data_dir / "blobs").glob("*/*/*"):
            # The collector runs meanwhile: a file listed may be gone before its size is read.
            with contextlib.suppress(FileNotFoundError):
                if path.is_file():
                    found[f"{path.parent.parent.name}:{path.name}"] = path.stat().st_size
        return found
    moto: MotoServer = request.getfixturevalue("moto")
    bucket = server_bucket(server)
    client = moto.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="blobs/"):
        for item in page.get("Contents", []):
            algorithm, _, encoded = item["Key"].removeprefix("blobs/").split("/")
            found[f"{algorithm}:{encoded}"] = int(item["Size"])
    return found


def server_bucket(server: WharfProcess) -> str:
    args = server.process.args
    assert isinstance(args, list)
    return str(args[args.index("--s3-bucket") + 1])


@dataclass
class Pushed:
    repository: str
    digest: str
    payload: bytes
    blobs: dict[str, bytes]


@dataclass
class Ledger:
    """What the clients were told: images acknowledged, and those deleted since."""

    live: dict[str, Pushed] = field(default_factory=dict)  # by repository@digest
    deleted: int = 0
    refused_pushes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def push(reg: Registry, repository: str, rng: random.Random) -> Pushed | str:
    """An image of a config, a shared layer and a layer of its own; or why it was refused."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": rng.random()}).encode()
    own = rng.randbytes(rng.randint(500, 20_000))
    shared = rng.choice(SHARED_LAYERS)
    blobs = {digest_of(b): b for b in (config, shared, own)}
    for data in (config, shared, own):
        reg.push_blob(repository, data)
    payload = image_manifest(
        descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, shared), descriptor(OCI_LAYER, own)]
    )
    digest = digest_of(payload)
    answer = reg.put_manifest(repository, digest, payload)
    if answer.status_code != 201:
        return f"{answer.status_code} {answer.text[:200]}"
    return Pushed(repository, digest, payload, blobs)


def check_pullable(reg: Registry, image: Pushed) -> str | None:
    answer = reg.get_manifest(image.repository, image.digest, accept=OCI_MANIFEST)
    if answer.status_code != 200 or answer.content != image.payload:
        return f"manifest {image.repository}@{image.digest}: {answer.status_code}"
    for digest, data in image.blobs.items():
        blob = reg.blob(image.repository, digest)
        if blob.status_code != 200 or blob.content != data:
            return f"blob {digest} of {image.repository}@{image.digest}: {blob.status_code}"
    return None


def client(server: WharfProcess, number: int, ledger: Ledger, until: float) -> None:
    rng = random.Random(number)
    mine: list[Pushed] = []
    with requests.Session() as http:
        reg = Registry(server.url, http)
        while time.monotonic() < until:
            repository = f"gc/client{number}-{rng.randrange(2)}"
            result = push(reg, repository, rng)
            if isinstance(result, str):
                ledger.refused_pushes.append(result)
                continue
            with ledger.lock:
                ledger.live[f"{repository}@{result.digest}"] = result
            mine.append(result)
            if len(mine) > 2 and rng.random() < 0.6:
                doomed = mine.pop(rng.randrange(len(mine)))
                with ledger.lock:
                    del ledger.live[f"{doomed.repository}@{doomed.digest}"]
                answer = http.delete(reg.v2(f"{doomed.repository}/manifests/{doomed.digest}"))
                if answer.status_code != 202:
                    ledger.problems.append(f"delete {doomed.digest}: {answer.status_code}")
                ledger.deleted += 1
            if mine:
                problem = check_pullable(reg, rng.choice(mine))
                if problem is not None:
                    ledger.problems.append(f"during the run: {problem}")


def test_gc_under_concurrent_pushes_and_deletes(
    server: tuple[WharfProcess, str], request: pytest.FixtureRequest
) -> None:
    wharf, lane = server
    ledger = Ledger()
    until = time.monotonic() + RUN_SECONDS
    threads = [
        threading.Thread(target=client, args=(wharf, n, ledger, until)) for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=RUN_SECONDS + 120)
    assert not any(thread.is_alive() for thread in threads)
    assert not ledger.problems, ledger.problems[:5]
    # The clients push layers and their manifest at once: well within the grace delay.
    assert not ledger.refused_pushes, ledger.refused_pushes[:5]
    assert len(ledger.live) > CLIENTS and ledger.deleted > CLIENTS
    # What storage holds right as the clients stop, before the grace delay of the last deletes
    # has passed (reading every image back first would take longer than that on a busy machine).
    before = stored(wharf, lane, request)

    with requests.Session() as http:
        reg = Registry(wharf.url, http)
        for image in ledger.live.values():
            assert check_pullable(reg, image) is None

    wanted = {digest for image in ledger.live.values() for digest in image.blobs}
    sizes = {
        digest: len(data) for image in ledger.live.values() for digest, data in image.blobs.items()
    }
    assert wanted <= set(before)
    garbage = set(before) - wanted
    assert garbage, "the deletes left some blob unreferenced"

    # Once the delay has passed, a few passes leave exactly what the live images name.
    wait_until(lambda: set(stored(wharf, lane, request)) == wanted, timeout=DELAY + 30)
    after = stored(wharf, lane, request)
    assert after == sizes
    freed = sum(before[d] for d in garbage)
    print(
        f"\n{lane}: {len(ledger.live)} images kept, {ledger.deleted} deleted; "
        f"{len(garbage)} blobs ({freed} bytes) collected, {len(after)} remain"
    )
    assert "garbage collected" in wharf.log()
    with requests.Session() as http:
        reg = Registry(wharf.url, http)
        for image in ledger.live.values():
            assert check_pullable(reg, image) is None
