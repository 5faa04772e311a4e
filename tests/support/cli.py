"""Run the real `wharf` command, as a user would, against a test server: each run a process
of its own, forked from a server that imported Wharf once (tests/support/forked.py), or
`python -m wharf` itself with `Cli(cold=True)`, as the seed workflow does."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import forked
from tests.support.server import WharfProcess


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        command = " ".join(self.args)
        return f"wharf {command} -> {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Cli:
    """`wharf` with its own kubeconfig (through $KUBECONFIG) and working directory."""

    kubeconfig: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    cold: bool = False

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "WHARF_DEBUG"}
        return {
            **env,
            "KUBECONFIG": str(self.kubeconfig),
            # The discovery cache of this kubeconfig's user, rather than ~/.kube/cache.
            "WHARF_CACHE_DIR": str(self.cwd / ".cache"),
            "COLUMNS": "200",
            **self.env,
        }

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> Result:
        if not self.cold:
            code, out, err = forked.run(
                list(args), env=self.environment(), cwd=self.cwd, stdin=input or "", timeout=timeout
            )
            return Result(tuple(args), code, out, err)
        done = subprocess.run(
            [sys.executable, "-m", "wharf", *args],
            capture_output=True,
            text=True,
            input=input if input is not None else "",
            env=self.environment(),
            cwd=self.cwd,
            timeout=timeout,
        )
        return Result(tuple(args), done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, input: str | None = None) -> str:
        """Run; it must succeed. Returns stdout."""
        result = self.run(*args, input=input)
        assert result.code == 0, str(result)
        return result.out

    def fails(self, *args: str, input: str | None = None) -> str:
        """Run; it must fail as every Wharf verb fails: `error: ...`, exit 1, no traceback.
        Returns stderr."""
        result = self.run(*args, input=input)
        assert result.code == 1, str(result)
        assert result.err.startswith("error: "), str(result)
        assert "Traceback" not in result.err, str(result)
        return result.err

    def config(self) -> dict[str, Any]:
        loaded = yaml.safe_load(self.kubeconfig.read_text())
        assert isinstance(loaded, dict)
        return loaded

    def login_admin(self, wharf: WharfProcess) -> str:
        return self.ok(
            "login",
            wharf.api_url,
            "-u",
            "kubeadmin",
            "-p",
            wharf.kubeadmin_password,
            "--certificate-authority",
            str(wharf.ca_file),
        )

    def token(self) -> str:
        return self.ok("whoami", "-t").strip()


def new_cli(directory: Path, *, cold: bool = False) -> Cli:
    directory.mkdir(parents=True, exist_ok=True)
    return Cli(directory / "kubeconfig", directory, cold=cold)


def entry(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """The body of a named kubeconfig entry (a cluster, user or context)."""
    for item in config.get(section) or []:
        if item.get("name") == name:
            body = item[section[:-1]]
            assert isinstance(body, dict)
            return body
    raise AssertionError(f"no {section[:-1]} named {name!r} in {config}")


def ca_data(wharf: WharfProcess) -> str:
    return base64.b64encode(wharf.ca_file.read_bytes()).decode()


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl is not installed")
    return found


def manifest(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(documents), sort_keys=False)
