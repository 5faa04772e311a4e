"""`./scripts/serve` sets up once: pip runs the first time (and again only when pyproject.toml,
requirements.lock or the script change, or the virtual environment is gone), and a later start
goes straight to `wharf serve`. Run in a copy of the checkout whose python3, pip and wharf are
stand-ins that record their calls, so that no real environment is built."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A stand-in for python3: `-m venv DIR` makes a venv of stand-ins; anything else succeeds.
PYTHON3 = """#!/bin/sh
echo "python3 $*" >> "$CALLS"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  for tool in python pip; do cp "$STANDIN" "$3/bin/$tool"; done
fi
exit 0
"""
# pip's stand-in installs the `wharf` command, as `pip install -e .` does.
STANDIN = """#!/bin/sh
name=$(basename "$0")
[ "$name" = python ] && exit 0
echo "$name $*" >> "$CALLS"
[ "$name" = pip ] && cp "$0" "$(dirname "$0")/wharf"
exit 0
"""


class Checkout:
    def __init__(self, base: Path) -> None:
        self.root = base / "wharf"
        (self.root / "scripts").mkdir(parents=True)
        shutil.copy(REPO / "scripts" / "serve", self.root / "scripts" / "serve")
        for name in ("pyproject.toml", "requirements.lock"):
            shutil.copy(REPO / name, self.root / name)
        self.calls = base / "calls"
        self.calls.touch()
        shims = base / "shims"
        shims.mkdir()
        standin = base / "standin"
        standin.write_text(STANDIN)
        (shims / "python3").write_text(PYTHON3)
        for path in (standin, shims / "python3"):
            path.chmod(0o755)
        self.env = {
            **os.environ,
            "PATH": f"{shims}:{os.environ['PATH']}",
            "CALLS": str(self.calls),
            "STANDIN": str(standin),
        }

    def serve(self, *args: str, setup_only: bool = True) -> tuple[list[str], str, float]:
        """Run scripts/serve; the calls it made, its stderr, and how long it took."""
        before = len(self.calls.read_text().splitlines())
        env = {**self.env, **({"WHARF_SETUP_ONLY": "1"} if setup_only else {})}
        started = time.monotonic()
        done = subprocess.run(
            [str(self.root / "scripts" / "serve"), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=60,
        )
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        return self.calls.read_text().splitlines()[before:], done.stderr, elapsed


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    return Checkout(tmp_path)


# The locked dependencies, hashes checked, then Wharf itself without resolving anything.
PIP = [
    "pip install --disable-pip-version-check --require-hashes -r requirements.lock",
    "pip install --disable-pip-version-check --no-deps --no-build-isolation -e .",
]


def test_a_fresh_checkout_is_set_up_once(checkout: Checkout) -> None:
    calls, err, _ = checkout.serve()
    assert calls == [
        "python3 -c import sys; sys.exit(sys.version_info < (3, 11))",
        "python3 -c import ensurepip, venv",
        "python3 -m venv .venv",
        *PIP,
    ]
    assert "Setting up Wharf in .venv" in err and "Creating the virtual environment" in err
    assert (checkout.root / ".venv" / ".wharf-setup").is_file()

    # Again: nothing to do, and quickly.
    calls, err, elapsed = checkout.serve()
    assert calls == [] and err == ""
    assert elapsed < 2.0
    # Serving goes straight to `wharf serve` with the arguments.
    calls, err, _ = checkout.serve("--listen", "127.0.0.1:5001", setup_only=False)
    assert calls == ["wharf serve --listen 127.0.0.1:5001"] and err == ""


def test_pip_runs_again_only_when_the_setup_changed(checkout: Checkout) -> None:
    checkout.serve()
    pyproject = checkout.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a new dependency\n")
    calls, err, _ = checkout.serve()
    assert calls == PIP  # the venv is kept: no new one
    assert "Setting up Wharf" in err
    assert checkout.serve()[0] == []
    # A refreshed lock file (scripts/lock) installs again.
    lock = checkout.root / "requirements.lock"
    lock.write_text(lock.read_text() + "# refreshed\n")
    assert checkout.serve()[0] == PIP
    assert checkout.serve()[0] == []
    # A venv without the command (or without the stamp) is set up again.
    (checkout.root / ".venv" / "bin" / "wharf").unlink()
    assert checkout.serve()[0] == PIP
    (checkout.root / ".venv" / ".wharf-setup").unlink()
    assert checkout.serve()[0] == PIP
    assert checkout.serve()[0] == []
