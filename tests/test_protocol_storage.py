"""Storage behind the protocol: several processes on one data directory, stale sessions,
concurrent pushes, restarts, and the history of a tag."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from tests.support.oci import (
    OCI_MANIFEST,
    OCTET,
    Registry,
    absolute,
    assert_error,
    digest_of,
    open_request,
    push_blob_slowly,
    random_bytes,
    read_response,
    with_query,
)
from tests.support.server import WharfProcess, running_wharf, wait_until
from wharf.storage.base import PartialWrite
from wharf.storage.filesystem import FilesystemBlobStore


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WharfProcess, WharfProcess]]:
    """Two Wharf processes sharing one data directory (and so one database); the tests that
    use them work in repositories of their own."""
    data = tmp_path_factory.mktemp("pair") / "data"
    with running_wharf(data) as first, running_wharf(data) as second:
        yield first, second


def on(server: WharfProcess, url: str) -> str:
    """The same path and query, sent to `server`."""
    parsed = urlparse(url)
    return f"{server.url}{parsed.path}" + (f"?{parsed.query}" if parsed.query else "")


# Two processes, one data directory


def test_chunks_alternate_between_processes(pair: tuple[WharfProcess, WharfProcess]) -> None:
    servers = [Registry(pair[0].url), Registry(pair[1].url)]
    repo = "shared/chunks"
    data = random_bytes(6 * 1024 * 1024 + 1234, seed=70)
    size = 700_000
    url = absolute(servers[0].url, servers[0].start_upload(repo))
    for index, start in enumerate(range(0, len(data), size)):
        server = servers[(index + 1) % 2]  # the first chunk goes to the other process
        chunk = data[start : start + size]
        response = server.http.patch(
            on(pair[(index + 1) % 2], url),
            data=chunk,
            headers={"Content-Range": f"{start}-{start + len(chunk) - 1}", "Content-Type": OCTET},
        )
        assert response.status_code == 202, response.content
        assert response.headers["Range"] == f"0-{start + len(chunk) - 1}"
        url = absolute(server.url, response)
        # Either process reports the same progress.
        for other, process in zip(servers, pair, strict=True):
            assert other.http.get(on(process, url)).headers["Range"] == response.headers["Range"]
    last = (len(range(0, len(data), size))) % 2  # the process that did not take the last chunk
    digest = digest_of(data)
    created = servers[last].http.put(with_query(on(pair[last], url), digest=digest))
    assert created.status_code == 201, created.content
    for server in servers:
        response = server.blob(repo, digest)
        assert response.status_code == 200
        assert response.content == data


def test_streamed_upload_split_across_processes_with_sha512(
    pair: tuple[WharfProcess, WharfProcess],
) -> None:
    first, second = Registry(pair[0].url), Registry(pair[1].url)
    repo = "shared/sha512"
    data = random_bytes(300_000, seed=71)
    url = absolute(first.url, first.start_upload(repo))
    accepted = second.http.patch(on(pair[1], url), data=data[:100_000])
    assert accepted.status_code == 202
    accepted = first.http.patch(on(pair[0], absolute(second.url, accepted)), data=data[100_000:])
    assert accepted.status_code == 202
    digest = digest_of(data, "sha512")
    created = second.http.put(with_query(on(pair[1], absolute(first.url, accepted)), digest=digest))
    assert created.status_code == 201, created.content
    assert first.blob(repo, digest).content == data


def test_what_one_process_pushes_the_other_serves(pair: tuple[WharfProcess, WharfProcess]) -> None:
    first, second = Registry(pair[0].url), Registry(pair[1].url)
    image = first.push_image("shared/image", "v1")
    response = second.get_manifest("shared/image", "v1")
    assert response.status_code == 200
    assert response.content == image.payload
    for digest, data in image.blobs.items():
        assert second.blob("shared/image", digest).content == data
    newer = second.push_image("shared/image", "v1", seed=3)
    assert first.get_manifest("shared/image", "v1").content == newer.payload
    assert (
        second.http.delete(second.v2(f"shared/image/manifests/{newer.digest}")).status_code == 202
    )
    assert_error(first.get_manifest("shared/image", "v1"), 404, "MANIFEST_UNKNOWN")
    assert first.get_manifest("shared/image", image.digest).content == image.payload


def test_concurrent_writes_to_one_session_never_corrupt_a_blob(
    pair: tuple[WharfProcess, WharfProcess],
) -> None:
    """Two requests write the same session at once, through different processes. Whatever
    each is told, no blob may ever be served with bytes other than its digest's."""
    first, second = Registry(pair[0].url), Registry(pair[1].url)
    repo = "shared/race"
    size = 6 * 1024 * 1024
    mine, theirs = random_bytes(size, seed=72), random_bytes(size, seed=73)
    url = absolute(first.url, first.start_upload(repo))
    upload_file = pair[0].data_dir / "uploads" / urlparse(url).path.rsplit("/", 1)[1]
    # The slow writer, through the second process: most of its body, then a pause.
    slow = open_request(
        pair[1].host,
        "PATCH",
        urlparse(url).path,
        {"Content-Length": str(size), "Content-Type": OCTET},
        theirs[: 5 * 1024 * 1024],
    )
    try:
        # Its first bytes are on disk, so it is writing: now a fast writer, through the first.
        wait_until(lambda: upload_file.exists() and upload_file.stat().st_size > 0, timeout=10)
        fast = first.http.patch(on(pair[0], url), data=mine, headers={"Content-Type": OCTET})
        slow.sendall(theirs[5 * 1024 * 1024 :])
        slow_answer = read_response(slow)
    finally:
        slow.close()
    assert fast.status_code in (202, 416), fast.content
    assert slow_answer.status in (202, 416), slow_answer
    # Exactly one of them wrote the upload; the upload finishes as that one's bytes only.
    outcomes = {"mine": fast.status_code, "theirs": slow_answer.status}
    assert sorted(outcomes.values()) == [202, 416], outcomes
    winner, loser = (mine, theirs) if outcomes["mine"] == 202 else (theirs, mine)
    created = second.http.put(with_query(on(pair[1], url), digest=digest_of(winner)))
    assert created.status_code == 201, created.content
    late = first.http.put(with_query(on(pair[0], url), digest=digest_of(loser)))
    assert_error(late, 404, "BLOB_UPLOAD_UNKNOWN")
    for reader in (first, second):
        served = reader.blob(repo, digest_of(winner))
        assert served.status_code == 200
        assert served.content == winner, "a blob is served with bytes that are not its own"
        assert reader.head_blob(repo, digest_of(loser)).status_code == 404


def test_a_whole_blob_put_to_a_session_being_written_is_refused(
    pair: tuple[WharfProcess, WharfProcess],
) -> None:
    """A PUT with the whole blob finishes an untouched session without holding it; while a
    PATCH through the other process writes that session, the PUT is refused (and stores no
    session bytes), and the PATCH's bytes are what the session finishes as."""
    first, second = Registry(pair[0].url), Registry(pair[1].url)
    repo = "shared/put-race"
    size = 6 * 1024 * 1024
    patched, whole = random_bytes(size, seed=79), random_bytes(1000, seed=80)
    url = absolute(first.url, first.start_upload(repo))
    upload_file = pair[0].data_dir / "uploads" / urlparse(url).path.rsplit("/", 1)[1]
    slow = open_request(
        pair[1].host,
        "PATCH",
        urlparse(url).path,
        {"Content-Length": str(size), "Content-Type": OCTET},
        patched[: 5 * 1024 * 1024],
    )
    try:
        wait_until(lambda: upload_file.exists() and upload_file.stat().st_size > 0, timeout=10)
        refused = first.http.put(
            with_query(on(pair[0], url), digest=digest_of(whole)),
            data=whole,
            headers={"Content-Type": OCTET},
        )
        slow.sendall(patched[5 * 1024 * 1024 :])
        accepted = read_response(slow)
    finally:
        slow.close()
    assert_error(refused, 416, "BLOB_UPLOAD_INVALID")
    assert accepted.status == 202, accepted
    created = second.http.put(with_query(on(pair[1], url), digest=digest_of(patched)))
    assert created.status_code == 201, created.content
    assert first.blob(repo, digest_of(patched)).content == patched
    # The refused PUT's blob was verified, so it may exist; it is linked to no repository.
    assert first.head_blob(repo, digest_of(whole)).status_code == 404


def test_store_keeps_what_arrived_before_the_body_broke(tmp_path: Path) -> None:
    """Below the protocol: when a body breaks off, every byte the registry had read of it is
    kept (and hashed), so that the client can resume from the reported offset."""
    store = FilesystemBlobStore(tmp_path)
    pieces = [random_bytes(1000, seed=seed) for seed in range(5)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
        raise ConnectionResetError("Connection lost")

    async def write() -> PartialWrite:
        state = await store.begin("broken")
        with pytest.raises(PartialWrite) as broke:
            await store.append("broken", state, 0, body(), hasher)
        return broke.value

    hasher = hashlib.sha256()
    partial = asyncio.run(write())
    arrived = b"".join(pieces)
    assert partial.written == len(arrived)
    assert (tmp_path / "uploads" / "broken").read_bytes() == arrived
    assert hasher.hexdigest() == hashlib.sha256(arrived).hexdigest()


# Restarts


def test_everything_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    partial = random_bytes(200_000, seed=74)
    with running_wharf(data_dir) as before:
        reg = Registry(before.url)
        image = reg.push_image("durable/image", "v1")
        session = absolute(reg.url, reg.start_upload("durable/image"))
        accepted = reg.http.patch(session, data=partial[:120_000])
        assert accepted.status_code == 202
        session_path = urlparse(absolute(reg.url, accepted)).path
    with running_wharf(data_dir) as after:
        reg = Registry(after.url)
        assert reg.get_manifest("durable/image", "v1").content == image.payload
        for digest, data in image.blobs.items():
            assert reg.blob("durable/image", digest).content == data
        # The open session continues where it was, in the new process.
        url = f"{after.url}{session_path}"
        assert reg.http.get(url).headers["Range"] == "0-119999"
        accepted = reg.http.patch(
            url, data=partial[120_000:], headers={"Content-Range": "120000-199999"}
        )
        assert accepted.status_code == 202
        created = reg.http.put(with_query(absolute(reg.url, accepted), digest=digest_of(partial)))
        assert created.status_code == 201
        assert reg.blob("durable/image", digest_of(partial)).content == partial


# Stale sessions


def test_stale_sessions_are_removed_after_the_timeout(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", "--upload-timeout", "1") as server:
        reg = Registry(server.url)
        url = absolute(reg.url, reg.start_upload("stale/repo"))
        accepted = reg.http.patch(url, data=b"abandoned bytes")
        assert accepted.status_code == 202
        upload_file = server.data_dir / "uploads" / urlparse(url).path.rsplit("/", 1)[1]
        assert upload_file.exists()

        def gone() -> bool:
            return reg.http.get(url).status_code == 404

        wait_until(gone, timeout=15)
        assert_error(reg.http.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_error(
            reg.http.put(with_query(url, digest=digest_of(b"abandoned bytes"))),
            404,
            "BLOB_UPLOAD_UNKNOWN",
        )
        wait_until(lambda: not upload_file.exists(), timeout=5)
        # A new session after the sweep works as ever.
        digest = reg.push_blob("stale/repo", b"fresh")
        assert reg.blob("stale/repo", digest).content == b"fresh"


def test_a_whole_blob_written_slowly_outlives_the_sweeps(tmp_path: Path) -> None:
    """A blob PUT whole has no session while it is written: paused longer than the upload
    timeout, its file is idle by its time, and still the sweep leaves it alone."""
    with running_wharf(tmp_path / "data", "--upload-timeout", "1") as server:
        reg = Registry(server.url)
        data = random_bytes(3 * 1024 * 1024, seed=13)
        answer = push_blob_slowly(reg, "slow/repo", data, pause=2.0)
        assert answer.status_code == 201, answer.text
        assert reg.blob("slow/repo", digest_of(data)).content == data


# Concurrency


def run_all(count: int, work: Callable[[int], requests.Response]) -> list[requests.Response]:
    barrier = threading.Barrier(count)

    def start(index: int) -> requests.Response:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def test_many_clients_push_the_same_blob(wharf: WharfProcess, repo: str) -> None:
    data = random_bytes(2 * 1024 * 1024 + 7, seed=75)
    digest = digest_of(data)

    def push(index: int) -> requests.Response:
        with requests.Session() as http:
            if index % 3 == 0:  # monolithic POST
                return http.post(f"{wharf.url}/v2/{repo}/blobs/uploads/?digest={digest}", data=data)
            session = http.post(f"{wharf.url}/v2/{repo}/blobs/uploads/")
            url = absolute(wharf.url, session)
            if index % 3 == 1:  # POST then PUT
                return http.put(with_query(url, digest=digest), data=data)
            half = len(data) // 2  # two chunks, then PUT
            first = http.patch(url, data=data[:half], headers={"Content-Range": f"0-{half - 1}"})
            second = http.patch(
                absolute(wharf.url, first),
                data=data[half:],
                headers={"Content-Range": f"{half}-{len(data) - 1}"},
            )
            return http.put(with_query(absolute(wharf.url, second), digest=digest))

    answers = run_all(12, push)
    assert [answer.status_code for answer in answers] == [201] * 12, [a.content for a in answers]
    assert {answer.headers["Docker-Content-Digest"] for answer in answers} == {digest}
    reg = Registry(wharf.url)
    assert reg.blob(repo, digest).content == data
    assert reg.head_blob(repo, digest).headers["Content-Length"] == str(len(data))


def test_many_clients_push_the_same_blob_to_many_repositories(
    wharf: WharfProcess, repo: str
) -> None:
    data = random_bytes(500_000, seed=76)
    digest = digest_of(data)

    def push(index: int) -> requests.Response:
        return requests.post(
            f"{wharf.url}/v2/{repo}/n{index}/blobs/uploads/?digest={digest}", data=data
        )

    answers = run_all(10, push)
    assert [answer.status_code for answer in answers] == [201] * 10
    reg = Registry(wharf.url)
    for index in range(10):
        assert reg.blob(f"{repo}/n{index}", digest).content == data


def test_many_clients_push_the_same_manifest(wharf: WharfProcess, repo: str) -> None:
    reg = Registry(wharf.url)
    image = reg.push_image(repo, seed=77)  # by digest: the blobs and the manifest exist

    def push(index: int) -> requests.Response:
        reference = "v1" if index % 2 else image.digest
        return requests.put(
            f"{wharf.url}/v2/{repo}/manifests/{reference}",
            data=image.payload,
            headers={"Content-Type": OCI_MANIFEST},
        )

    answers = run_all(12, push)
    assert [answer.status_code for answer in answers] == [201] * 12, [a.content for a in answers]
    assert {answer.headers["Docker-Content-Digest"] for answer in answers} == {image.digest}
    assert reg.get_manifest(repo, "v1").content == image.payload
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["v1"]


def test_many_clients_move_one_tag(wharf: WharfProcess, repo: str) -> None:
    reg = Registry(wharf.url)
    images = [reg.push_image(repo, seed=100 + i, layers=0) for i in range(8)]

    def push(index: int) -> requests.Response:
        return requests.put(
            f"{wharf.url}/v2/{repo}/manifests/latest",
            data=images[index].payload,
            headers={"Content-Type": OCI_MANIFEST},
        )

    answers = run_all(8, push)
    assert [answer.status_code for answer in answers] == [201] * 8
    head = reg.get_manifest(repo, "latest")
    assert head.status_code == 200
    assert head.content in {image.payload for image in images}
    assert head.headers["Docker-Content-Digest"] == digest_of(head.content)


def test_concurrent_pushes_through_two_processes(pair: tuple[WharfProcess, WharfProcess]) -> None:
    data = random_bytes(1_000_000, seed=78)
    digest = digest_of(data)

    def push(index: int) -> requests.Response:
        server = pair[index % 2]
        blob = requests.post(
            f"{server.url}/v2/shared/many{index % 3}/blobs/uploads/?digest={digest}", data=data
        )
        assert blob.status_code == 201, blob.content
        return requests.get(f"{pair[(index + 1) % 2].url}/v2/shared/many{index % 3}/blobs/{digest}")

    answers = run_all(12, push)
    assert all(answer.status_code == 200 and answer.content == data for answer in answers)


# The history of a tag


def test_tag_follows_the_newest_push(reg: Registry, repo: str) -> None:
    first = reg.push_image(repo, "stable", seed=1)
    second = reg.push_image(repo, "stable", seed=2)
    response = reg.get_manifest(repo, "stable")
    assert response.content == second.payload
    assert response.headers["Docker-Content-Digest"] == second.digest
    # The older image is still there by digest, only no longer the tag's head.
    assert reg.get_manifest(repo, first.digest).content == first.payload
    # Pushing the first again makes it the newest.
    assert reg.put_manifest(repo, "stable", first.payload).status_code == 201
    assert reg.get_manifest(repo, "stable").content == first.payload
    assert reg.http.get(reg.v2(f"{repo}/tags/list")).json()["tags"] == ["stable"]


def test_deleting_the_newest_image_does_not_revive_an_older_one(reg: Registry, repo: str) -> None:
    first = reg.push_image(repo, "stable", seed=1)
    second = reg.push_image(repo, "stable", seed=2)
    assert reg.http.delete(reg.v2(f"{repo}/manifests/{second.digest}")).status_code == 202
    assert_error(reg.get_manifest(repo, "stable"), 404, "MANIFEST_UNKNOWN")
    assert reg.get_manifest(repo, first.digest).content == first.payload


def test_untagging_then_tagging_again(reg: Registry, repo: str) -> None:
    image = reg.push_image(repo, "stable")
    assert reg.http.delete(reg.v2(f"{repo}/manifests/stable")).status_code == 202
    assert_error(reg.get_manifest(repo, "stable"), 404, "MANIFEST_UNKNOWN")
    assert reg.put_manifest(repo, "stable", image.payload).status_code == 201
    assert reg.get_manifest(repo, "stable").content == image.payload
