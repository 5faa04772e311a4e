"""Small-image pushes and pulls driven by wrk (Debian's `wrk`, a load generator written in C)
through benchmarks/wrk_images.lua: the same requests as the aiohttp client's, but for the HEAD
before each blob (wrk cannot read the answer to a HEAD), at a small part of its CPU. On two
cores the aiohttp client takes a third of the machine, so it cannot show what a second worker
process adds; wrk leaves the cores to the server (the `workers` phase)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SCRIPT = Path(__file__).with_name("wrk_images.lua")


class Image(Protocol):
    @property
    def blobs(self) -> tuple[tuple[str, bytes], ...]: ...

    @property
    def manifest(self) -> bytes: ...


@dataclass(frozen=True)
class WrkResult:
    images: int
    seconds: float
    failures: int  # answers other than the protocol's (a push retries the step)
    ran_out: int  # requests sent after a thread had pushed every image it was given
    per_thread: list[int]

    @property
    def rate(self) -> float:
        return self.images / self.seconds


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def write_images(folder: Path, images: Sequence[Image], threads: int, repository: str) -> None:
    """Deal `images` out to `threads` files (image i to thread i % threads, in repository
    `repository`<thread>, tag t<i>)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [(folder / f"{n}.bin").open("wb") for n in range(threads)]
    try:
        for index, image in enumerate(images):
            thread = index % threads
            out = files[thread]
            out.write(f"IMAGE {repository}{thread} t{index} {len(image.blobs)}\n".encode())
            for digest, data in image.blobs:
                out.write(f"BLOB {digest} {len(data)}\n".encode() + data)
            out.write(f"MANIFEST {len(image.manifest)}\n".encode() + image.manifest)
    finally:
        for out in files:
            out.close()


def run_wrk(
    url: str,
    mode: str,
    folder: Path,
    threads: int,
    seconds: float,
    token: str | None = None,
    pull_counts: Sequence[int] = (),
) -> WrkResult:
    """wrk for `seconds` with `threads` connections (a thread each), pushing the images in
    `folder` or (mode "pull") pulling the first `pull_counts[n]` of thread n's, round and round."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    env = {
        **os.environ,
        "WRK_MODE": mode,
        "WRK_IMAGES": str(folder),
        "WRK_TOKEN": token or "",
        "WRK_PULL_COUNTS": ",".join(str(n) for n in pull_counts),
    }
    argv = [binary, f"-t{threads}", f"-c{threads}", f"-d{seconds:.0f}s", "--timeout", "30s"]
    result = subprocess.run(
        [*argv, "-s", str(SCRIPT), url],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {result.returncode}): {result.stderr[-2000:]}")
    found = json.loads(line.removeprefix("WRK_RESULT "))
    if found["errors"]:
        raise RuntimeError(f"wrk saw {found['errors']} socket or HTTP errors:\n{result.stdout}")
    return WrkResult(
        found["images"], found["seconds"], found["failures"], found["ran_out"], found["per_thread"]
    )
