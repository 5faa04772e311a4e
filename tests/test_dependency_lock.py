"""The lock files agree with pyproject.toml: every dependency declared there is pinned, at a
version its specifier admits, with hashes, and nothing pinned is there for a dependency that was
removed. A failure here means pyproject.toml changed without `scripts/lock` being run."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
PROJECT = "wharf (pyproject.toml)"


@dataclass
class Pin:
    name: str
    version: str
    marker: str
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(?:\s*;\s*(.*?))?\s*\\?$")


def read_lock(name: str) -> list[Pin]:
    """The pins of a lock file written by `uv pip compile --generate-hashes`."""
    pins: list[Pin] = []
    in_via = False
    for line in (REPO / name).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        found = PIN.match(line)
        if found:
            pins.append(Pin(canonicalize_name(found[1]), found[2], found[3] or ""))
            in_via = False
            continue
        text = line.strip()
        assert pins, f"{name}: a line before the first pin: {line!r}"
        if text.startswith("--hash=sha256:"):
            pins[-1].hashes.append(text.removeprefix("--hash=sha256:").rstrip(" \\"))
        elif text.startswith("# via"):
            rest = text.removeprefix("# via").strip()
            if rest:
                pins[-1].via.add(rest)
            in_via = not rest
        elif in_via and text.startswith("#   "):
            pins[-1].via.add(text.removeprefix("#   ").strip())
        else:
            raise AssertionError(f"{name}: unexpected line {line!r}")
    return pins


def declared(extra: str | None) -> list[Requirement]:
    """pyproject.toml's dependencies, its build backend (locked too), and an extra's."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    names = project["project"]["dependencies"] + project["build-system"]["requires"]
    if extra:
        names += project["project"]["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize(
    ("lock", "extra"), [("requirements.lock", None), ("requirements-test.lock", "test")]
)
def test_every_declared_dependency_is_pinned_with_hashes(lock: str, extra: str | None) -> None:
    pins = read_lock(lock)
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        assert re.fullmatch(r"[0-9a-f]{64}", pin.hashes[0] if pin.hashes else ""), (
            f"{lock}: {pin.name} has no hash"
        )
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes)
        by_name.setdefault(pin.name, []).append(pin)
    wanted = declared(extra)
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in by_name, f"{requirement} is not in {lock}: run scripts/lock"
        for pin in by_name[name]:
            assert requirement.specifier.contains(pin.version, prereleases=True), (
                f"{lock} pins {name}=={pin.version}, outside {requirement}: run scripts/lock"
            )
    # Pinned because the project asked, though it no longer does: a dependency was removed.
    direct = {p.name for p in pins if any(v.startswith(PROJECT) for v in p.via)}
    assert direct <= {canonicalize_name(r.name) for r in wanted}, (
        f"{lock} pins dependencies pyproject.toml no longer declares: run scripts/lock"
    )


def test_the_runtime_lock_is_the_test_lock_s_versions() -> None:
    """scripts/serve and scripts/test install the same release of every runtime dependency."""
    test = {(p.name, p.marker): p.version for p in read_lock("requirements-test.lock")}
    for pin in read_lock("requirements.lock"):
        assert test.get((pin.name, pin.marker)) == pin.version, pin.name
