"""Every kubectl command of the README's "Operating the registry", run in order against a new
Wharf, each one succeeding, and the registry checked where a command changes what it does."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import requests

from tests.support.cluster import Cluster
from tests.support.operator_admin import RegistryAdmin

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Operating the registry", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.startswith("kubectl ")]


def test_the_readme_commands_work(cluster: Cluster) -> None:
    kubectl = cluster.kubectl()
    admin = RegistryAdmin(kubectl)

    def v2(method: str = "POST") -> int:
        path = "/v2/readme/app/blobs/uploads/" if method == "POST" else "/v2/"
        return requests.request(method, f"{cluster.wharf.url}{path}", timeout=10).status_code

    # What each command changes, checked right after it (the key is part of the command).
    checks: dict[str, Callable[[], None]] = {
        '"readOnly":true': lambda: _equal(v2(), 405),
        '"readOnly":false': lambda: _equal(v2(), 202),
        '"managementState":"Removed"': lambda: _equal(v2("GET"), 503),
        '"managementState":"Managed"': lambda: _equal(v2("GET"), 200),
        '"defaultRoute":false': lambda: _equal(
            kubectl.run(
                "get", "-n", "openshift-image-registry", "route", "default-route", check=False
            ).returncode,
            1,
        ),
        '"replicas":2': lambda: _equal(
            admin.condition("Progressing")["reason"], "DeploymentNotCompleted"
        ),
        '"logLevel":"Debug"': lambda: _equal(admin.config()["spec"]["logLevel"], "Debug"),
    }
    commands = readme_commands()
    assert len(commands) >= 15, commands
    for command in commands:
        args = shlex.split(command)[1:]
        result = kubectl.run(*args, check=False)
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        if args[0] == "patch" and args[1].startswith("configs."):
            admin.patch({})  # waits until the operator observed the patch
        for key, check in checks.items():
            if key in command:
                check()
    config = admin.config()
    assert config["spec"]["replicas"] == 1 and config["spec"]["disableRedirect"] is True
    assert admin.condition("Available", config)["reason"] == "Ready"


def _equal(found: object, wanted: object) -> None:
    assert found == wanted, (found, wanted)
