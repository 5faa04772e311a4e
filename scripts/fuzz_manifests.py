"""Fuzz target: bytes into the manifest parser, which must parse them or refuse them with
InvalidManifest, and whatever it accepts must encode again as strict JSON in UTF-8.

Run through `scripts/fuzz-manifests`. With atheris (libFuzzer, coverage-guided over Wharf's
own code) when it is installed; otherwise, or with WHARF_FUZZ_ENGINE=random, with random
mutations of valid manifests in a plain loop. Either way: a bounded time, a non-zero exit and
the failing input written to the artifacts directory on the first failure. Files given as
arguments are run once each instead (to replay a failure).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Types the first byte of an input chooses among; "" leaves the document's own mediaType.
CONTENT_TYPES = [
    "",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/json",
]
# Words of manifests, for libFuzzer's dictionary and the random mutator.
_TOKEN_TEXT = """
    "schemaVersion" "mediaType" "config" "layers" "manifests" "digest" "size" "urls"
    "annotations" "artifactType" "subject" "platform" "architecture" "os" "os.version"
    "os.features" "variant" 2 -1 1e999 NaN true null [] {} "\\ud800" "sha256: "sha512:
    "application/vnd.oci.image.layer.nondistributable.v1.tar" 9223372036854775808
"""
TOKENS = _TOKEN_TEXT.split()


def _descriptor(media_type: str, payload: bytes, **extra: Any) -> dict[str, Any]:
    digest = hashlib.sha256(payload).hexdigest()
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(payload), **extra}


def seeds() -> list[bytes]:
    """Valid manifests and indexes of the four media types: where mutations start."""
    config = _descriptor("application/vnd.oci.image.config.v1+json", b"{}")
    layer = _descriptor("application/vnd.oci.image.layer.v1.tar+gzip", b"layer")
    foreign = _descriptor(
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        b"far",
        urls=["https://example.com/far"],
    )
    image = {
        "schemaVersion": 2,
        "mediaType": CONTENT_TYPES[1],
        "artifactType": "application/vnd.example+json",
        "config": config,
        "layers": [layer, foreign],
        "annotations": {"org.opencontainers.image.title": "x"},
    }
    child = _descriptor(
        CONTENT_TYPES[1], b"child", platform={"architecture": "amd64", "os": "linux"}
    )
    index = {"schemaVersion": 2, "mediaType": CONTENT_TYPES[2], "manifests": [child]}
    referrer = {**image, "subject": _descriptor(CONTENT_TYPES[1], b"subject"), "layers": []}
    docker = {"schemaVersion": 2, "mediaType": CONTENT_TYPES[3], "config": config, "layers": []}
    docker_list = {**index, "mediaType": CONTENT_TYPES[4]}
    documents = [image, index, referrer, docker, docker_list]
    # The first byte chooses the Content-Type: 0 leaves it to the document.
    return [b"\x00" + json.dumps(d, indent=1).encode() for d in documents]


def make_target() -> Callable[[bytes], None]:
    """The check of one input, with Wharf's modules imported (instrumented under atheris)."""
    from wharf.oci.manifest import InvalidManifest, parse_manifest

    def target(data: bytes) -> None:
        content_type = CONTENT_TYPES[data[0] % len(CONTENT_TYPES)] if data else ""
        try:
            parsed = parse_manifest(data[1:], content_type)
        except InvalidManifest:
            return
        # Accepted means stored and served again: the model must encode as strict JSON.
        described = [d.model_dump(by_alias=True) for d in (*parsed.blobs, *parsed.children)]
        if parsed.subject is not None:
            described.append(parsed.subject.model_dump(by_alias=True))
        json.dumps([described, parsed.annotations], allow_nan=False).encode("utf-8")

    return target


def mutate(data: bytes, pool: list[bytes], rng: random.Random) -> bytes:
    """A few random edits of `data`: bytes changed, inserted, deleted, repeated; a token of
    manifests dropped in; a splice with another input."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randint(0, len(buffer))
        choice = rng.randrange(6)
        if choice == 0 and buffer:
            buffer[min(at, len(buffer) - 1)] = rng.randrange(256)
        elif choice == 1:
            buffer[at:at] = bytes([rng.randrange(256)])
        elif choice == 2:
            del buffer[at : at + rng.randint(1, 16)]
        elif choice == 3:
            buffer[at:at] = buffer[at : at + rng.randint(1, 64)] * rng.randint(1, 50)
        elif choice == 4:
            buffer[at:at] = rng.choice(TOKENS).encode()
        else:
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            buffer[at:] = other[start:]
    return bytes(buffer)


def fail(data: bytes, artifacts: Path) -> None:
    traceback.print_exc()
    path = artifacts / f"crash-{hashlib.sha256(data).hexdigest()[:16]}"
    path.write_bytes(data)
    print(f"\nthe failing input is in {path}; replay: scripts/fuzz-manifests {path}", flush=True)
    sys.exit(1)


def run_random(seconds: float, artifacts: Path, seed: int) -> None:
    target = make_target()
    rng = random.Random(seed)
    pool = seeds()
    deadline = time.monotonic() + seconds
    runs = 0
    print(f"random mutations for {seconds:g} s, seed {seed} (WHARF_FUZZ_SEED)", flush=True)
    while time.monotonic() < deadline:
        data = mutate(rng.choice(pool), pool, rng)
        try:
            target(data)
        except Exception:
            fail(data, artifacts)
        runs += 1
        if runs % 64 == 0 and len(pool) < 512:
            pool.append(data)  # mutations of mutations reach further from the seeds
    print(f"done: {runs} inputs, no failure", flush=True)


def run_atheris(seconds: float, artifacts: Path, replay: list[str]) -> None:
    import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]

    with atheris.instrument_imports(include=["wharf"]):
        target = make_target()
    work = Path(tempfile.mkdtemp(prefix="wharf-fuzz-corpus-"))
    for number, seed in enumerate(seeds()):
        (work / f"seed-{number}").write_bytes(seed)
    dictionary = work.with_name(work.name + ".dict")
    dictionary.write_text("".join(f"{json.dumps(token)}\n" for token in TOKENS))
    options = [f"-artifact_prefix={artifacts}/", f"-dict={dictionary}"]
    if replay:
        argv = [sys.argv[0], *options, *replay]
    else:
        argv = [sys.argv[0], *options, f"-max_total_time={int(seconds)}", "-max_len=65536"]
        argv.append(str(work))
        print(f"atheris for {seconds:g} s, corpus in {work}", flush=True)
    atheris.Setup(argv, target)
    atheris.Fuzz()


def replay_plain(files: list[str], artifacts: Path) -> None:
    target = make_target()
    for name in files:
        data = Path(name).read_bytes()
        try:
            target(data)
        except Exception:
            fail(data, artifacts)
        print(f"{name}: no failure")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--artifacts", default=os.environ.get("WHARF_FUZZ_ARTIFACTS", ""))
    parser.add_argument("replay", nargs="*", help="inputs to run once each")
    args = parser.parse_args()
    artifacts = Path(args.artifacts or tempfile.mkdtemp(prefix="wharf-fuzz-artifacts-"))
    artifacts.mkdir(parents=True, exist_ok=True)
    engine = os.environ.get("WHARF_FUZZ_ENGINE", "atheris")
    if engine == "atheris" and importlib.util.find_spec("atheris") is None:
        print("atheris is not installed: random mutations instead", flush=True)
        engine = "random"
    if engine == "atheris":
        run_atheris(args.seconds, artifacts, args.replay)
    elif args.replay:
        replay_plain(args.replay, artifacts)
    else:
        seed = int(os.environ.get("WHARF_FUZZ_SEED", str(random.randrange(2**32))))
        run_random(args.seconds, artifacts, seed)


if __name__ == "__main__":
    main()
