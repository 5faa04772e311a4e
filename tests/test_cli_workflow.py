"""The seed workflow of DESIGN.md, as written with `oc` replaced by `wharf`: log in, make a
project, log podman in to the registry's route with `wharf whoami` and `wharf whoami -t`, push,
read the image stream with kubectl, and let another user push once granted image-builder."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Cli, kubectl, new_cli
from tests.support.clients import Clients, Result
from tests.support.server import WharfProcess, running_wharf

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    with running_wharf(
        tmp_path_factory.mktemp("cli-flow") / "data", integrated=True, cold=True
    ) as w:
        yield w


def user_next_to_the_server(tmp_path: Path, server: WharfProcess, name: str) -> Cli:
    """A user working in the directory where `wharf serve` keeps ./wharf-data, running
    `python -m wharf` as installed (cold)."""
    cli = new_cli(tmp_path / name, cold=True)
    (cli.cwd / "wharf-data").symlink_to(server.data_dir)
    return cli


def test_the_seed_workflow(tmp_path: Path, server: WharfProcess) -> None:
    alice = user_next_to_the_server(tmp_path, server, "alice")
    bob = user_next_to_the_server(tmp_path, server, "bob")
    alice.ok("user", "add", "alice", "--password", "secret")
    alice.ok("user", "add", "bob", "--password", "builder")

    assert alice.ok("login", "-u", "alice", "-p", "secret", server.api_url).startswith(
        "Login successful."
    )
    project = f"demo-{uuid.uuid4().hex[:6]}"
    alice.ok("new-project", project)
    host = alice.ok(
        "-n",
        "openshift-image-registry",
        "get",
        "route",
        "default-route",
        "-o",
        "jsonpath={.spec.host}",
    )
    assert host == server.host

    clients = Clients(tmp_path / "clients")
    try:
        storage = clients.storage()
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(server.ca_file.read_bytes())

        def podman_login(cli: Cli) -> None:
            user = cli.ok("whoami").strip()
            token = cli.ok("whoami", "-t").strip()
            done = clients.podman(
                storage, "login", "--cert-dir", str(certs), "-u", user, "-p", token, host
            )
            assert done.stdout.strip() == "Login Succeeded!", done

        def push(tag: str) -> Result:
            return clients.podman(
                storage,
                "push",
                "--cert-dir",
                str(certs),
                image.reference,
                f"{host}/{project}/app:{tag}",
                check=False,
            )

        image = clients.build(storage, "app", [{"/app/hello.txt": b"hello\n"}])
        podman_login(alice)
        pushed = push("1.0")
        assert pushed.ok, pushed

        done = subprocess.run(
            [kubectl(), "get", "imagestreams", "-n", project, "-o", "name"],
            capture_output=True,
            text=True,
            env=alice.environment(),
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["imagestream.image.openshift.io/app"]
        assert alice.ok("get", "istag", "app:1.0", "-o", "name") == (
            "imagestreamtag.image.openshift.io/app:1.0\n"
        )

        # Bob may not push into alice's project until she grants him image-builder.
        bob.ok("login", "-u", "bob", "-p", "builder", server.api_url)
        podman_login(bob)
        refused = push("bob")
        assert not refused.ok
        assert "denied" in refused.stderr or "unauthorized" in refused.stderr, refused
        out = alice.ok("policy", "add-role-to-user", "system:image-builder", "bob", "-n", project)
        assert out == 'clusterrole.rbac.authorization.k8s.io/system:image-builder added: "bob"\n'
        pushed = push("bob")
        assert pushed.ok, pushed
        tags = alice.ok("get", "is", "app", "-o", "jsonpath={.status.tags[*].tag}").split()
        assert sorted(tags) == ["1.0", "bob"]
    finally:
        clients.close()
