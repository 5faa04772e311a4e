"""Blob files damaged on disk behind the registry's back: cut short, emptied, grown, deleted or
overwritten. The database knows each blob's size; a file of another size is never served under
the digest (GET and HEAD answer 404 BLOB_UNKNOWN, and one warning is logged for it), and pushing
the blob again, in any upload mode, replaces the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.oci import (
    Registry,
    assert_error,
    digest_of,
    random_bytes,
    upload_in_mode,
)
from tests.support.server import WharfProcess, running_wharf, wait_until

SIZE = 5000
MODES = ["post-only", "post-put", "stream", "chunked", "chunked-put-chunk"]


@pytest.fixture(scope="module")
def wharf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    """A Wharf of this module's own (the shared `reg` fixture uses it): its log is read for
    the warnings."""
    with running_wharf(tmp_path_factory.mktemp("damaged") / "data") as process:
        yield process


def blob_file(wharf: WharfProcess, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    return wharf.data_dir / "blobs" / algorithm / encoded[:2] / encoded


def cut_short(path: Path) -> None:
    os.truncate(path, 100)


def emptied(path: Path) -> None:
    os.truncate(path, 0)


def grown(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b"more")


def deleted(path: Path) -> None:
    path.unlink()


DAMAGES: dict[str, Callable[[Path], None]] = {
    "cut-short": cut_short,
    "emptied": emptied,
    "grown": grown,
    "deleted": deleted,
}


def warnings_about(wharf: WharfProcess, digest: str) -> int:
    return sum(
        1 for line in wharf.log().splitlines() if "blob file damaged" in line and digest in line
    )


def assert_not_served(reg: Registry, repo: str, digest: str) -> None:
    assert_error(reg.blob(repo, digest), 404, "BLOB_UNKNOWN")
    assert_error(reg.blob(repo, digest, headers={"Range": "bytes=0-9"}), 404, "BLOB_UNKNOWN")
    head = reg.head_blob(repo, digest)
    assert head.status_code == 404
    assert head.content == b""


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_blob_is_not_served_and_warned_about_once(
    wharf: WharfProcess, reg: Registry, repo: str, damage: Callable[[Path], None]
) -> None:
    data = random_bytes(SIZE)
    digest = reg.push_blob(repo, data)
    damage(blob_file(wharf, digest))
    for _ in range(3):
        assert_not_served(reg, repo, digest)
    wait_until(lambda: warnings_about(wharf, digest) >= 1, timeout=5)
    line = next(line for line in wharf.log().splitlines() if "blob file damaged" in line)
    assert f"expected={SIZE}" in line, line
    assert warnings_about(wharf, digest) == 1


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
@pytest.mark.parametrize("mode", MODES)
def test_pushing_a_damaged_blob_again_repairs_it(
    wharf: WharfProcess, reg: Registry, repo: str, mode: str, damage: Callable[[Path], None]
) -> None:
    data = random_bytes(SIZE)
    digest = reg.push_blob(repo, data)
    damage(blob_file(wharf, digest))
    assert reg.head_blob(repo, digest).status_code == 404
    response = upload_in_mode(reg, repo, mode, data, digest)
    assert response.status_code == 201, response.content
    served = reg.blob(repo, digest)
    assert served.status_code == 200
    assert served.content == data
    assert reg.head_blob(repo, digest).headers["Content-Length"] == str(SIZE)


def test_pushing_again_replaces_a_file_of_the_right_size_but_wrong_bytes(
    wharf: WharfProcess, reg: Registry, repo: str
) -> None:
    """Bytes changed in place cannot be seen without hashing the file on every read; a push of
    the blob, which hashes what it receives, puts the right ones back."""
    data = random_bytes(SIZE)
    digest = reg.push_blob(repo, data)
    blob_file(wharf, digest).write_bytes(bytes(SIZE))
    assert reg.push_blob(repo, data) == digest
    assert reg.blob(repo, digest).content == data


def test_damaged_blob_is_not_mounted_but_uploaded(
    wharf: WharfProcess, reg: Registry, repo: str
) -> None:
    data = random_bytes(SIZE)
    digest = reg.push_blob(repo, data)
    cut_short(blob_file(wharf, digest))
    target = f"{repo}-mounted"
    mount = reg.http.post(
        reg.v2(f"{target}/blobs/uploads/"), params={"mount": digest, "from": repo}
    )
    # Not "201 Created": the client is asked to upload, and its upload repairs the file.
    assert mount.status_code == 202, mount.content
    assert reg.head_blob(target, digest).status_code == 404
    assert reg.push_blob(target, data) == digest
    assert reg.blob(repo, digest).content == data
    assert digest_of(reg.blob(target, digest).content) == digest


def test_damage_after_a_repair_is_warned_about_again(
    wharf: WharfProcess, reg: Registry, repo: str
) -> None:
    data = random_bytes(SIZE)
    digest = reg.push_blob(repo, data)
    emptied(blob_file(wharf, digest))
    assert reg.head_blob(repo, digest).status_code == 404
    reg.push_blob(repo, data)
    assert reg.blob(repo, digest).content == data
    cut_short(blob_file(wharf, digest))
    assert reg.head_blob(repo, digest).status_code == 404
    assert reg.head_blob(repo, digest).status_code == 404
    wait_until(lambda: warnings_about(wharf, digest) == 2, timeout=5)
