"""Every command of the README's "Keeping the registry tidy", run in order as a user types it:
against a new integrated Wharf (as kubeadmin, with the wharf command, kubectl and podman), with
Debian's docker-registry behind htpasswd as the upstream, each step's visible outcome checked.

The section's hosts are placeholders: 127.0.0.1:5000 is this Wharf's registry,
upstream.example.com:5000 the upstream. Its podman lines run with a storage of their own and
without TLS verification (the README's user trusts Wharf's CA instead). A `podman pull` of a
reference pulled before runs with the upstream stopped, as the README says."""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Cli, new_cli
from tests.support.clients import NO_TLS, Clients, Storage
from tests.support.cluster import Cluster, bearer, integrated_cluster, registry_session
from tests.support.upstream import Upstream, running_upstream

pytestmark = pytest.mark.clients

README = Path(__file__).resolve().parents[1] / "README.md"
REGISTRY = "127.0.0.1:5000"
UPSTREAM = "upstream.example.com:5000"
UPSTREAM_USER = ("puller", "s3cret")  # as the README's secret names them
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def readme_commands() -> list[str]:
    text = README.read_text()
    section = text.split("## Keeping the registry tidy", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    tools = ("wharf ", "kubectl ", "podman ")
    return [line for block in blocks for line in block.splitlines() if line.startswith(tools)]


@dataclass
class World:
    cluster: Cluster
    upstream: Upstream
    clients: Clients
    storage: Storage  # the README user's
    cli: Cli
    images: dict[str, str]  # localhost/app:1.1 and 1.2, and the upstream's: their digests

    def substitute(self, command: str) -> list[str]:
        command = command.replace(REGISTRY, self.cluster.wharf.host)
        return shlex.split(command.replace(UPSTREAM, self.upstream.host), comments=True)

    @property
    def upstream_layers(self) -> list[str]:
        registry = self.upstream.http()
        answer = registry.http.get(
            f"{self.upstream.url}/v2/team/base/manifests/{self.images['upstream']}",
            headers={"Accept": MANIFEST_ACCEPT},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return [layer["digest"] for layer in answer.json()["layers"]]

    def holds(self, digest: str) -> bool:
        """Whether Wharf's storage has a file of the blob."""
        algorithm, _, encoded = digest.partition(":")
        path = self.cluster.wharf.data_dir / "blobs" / algorithm / encoded[:2] / encoded
        return path.exists()

    def manifest_status(self, repository: str, digest: str) -> int:
        wharf = self.cluster.wharf
        with registry_session(wharf, bearer(self.cluster.admin_token)) as session:
            answer = session.get(
                f"{wharf.url}/v2/{repository}/manifests/{digest}",
                headers={"Accept": MANIFEST_ACCEPT},
                timeout=30,
            )
        return answer.status_code


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("readme-tidy")
    clients = Clients(base / "clients")
    try:
        with (
            integrated_cluster(base / "wharf") as cluster,
            running_upstream(base / "upstream", credentials=UPSTREAM_USER) as upstream,
        ):
            # What the README's first section left: a project demo, podman logged in to it.
            cli = new_cli(base / "cli")
            cli.login_admin(cluster.wharf)
            cli.ok("new-project", "demo")
            storage = clients.storage("user")
            login = ["login", NO_TLS, "-u", "kubeadmin", "-p", cluster.admin_token]
            clients.podman(storage, *login, cluster.wharf.host)
            images: dict[str, str] = {}
            for version in ("1.1", "1.2"):
                files = {"/app/version": f"{version} {uuid.uuid4().hex}\n".encode()}
                built = clients.build(storage, f"app-{version}", [files])
                clients.podman(storage, "tag", built.reference, f"localhost/app:{version}")
            # The upstream's image, built elsewhere: the user's storage has none of its layers.
            elsewhere = clients.storage("upstream")
            built = clients.build(elsewhere, "base", [{"/base": uuid.uuid4().bytes}])
            creds = ":".join(UPSTREAM_USER)
            images["upstream"] = clients.push(
                elsewhere, built.reference, f"{upstream.host}/team/base:2.0", "--creds", creds
            )
            yield World(cluster, upstream, clients, storage, cli, images)
            log = cluster.wharf.log()
            assert "Traceback" not in log, log[-5000:]
    finally:
        clients.close()


def test_the_readme_commands_work(world: World) -> None:
    commands = readme_commands()
    assert len(commands) >= 10, commands
    kubectl = world.cluster.kubectl()
    pulled: set[str] = set()
    for command in commands:
        args = world.substitute(command)
        tool, verb = args[0], args[1]
        if tool == "wharf":
            result = world.cli.run(*args[1:])
            code, out, err = result.code, result.out, result.err
        elif tool == "kubectl":
            done = kubectl.run(*args[1:], check=False)
            code, out, err = done.returncode, done.stdout, done.stderr
        else:
            tls = [NO_TLS] if verb in ("push", "pull") else []
            if verb == "pull" and args[-1] in pulled:
                world.upstream.stop()  # the same pull again: the upstream is gone
            ran = world.clients.podman(world.storage, verb, *tls, *args[2:], check=False)
            code, out, err = ran.returncode, ran.stdout, ran.stderr
            if verb == "pull":
                pulled.add(args[-1])
        what = f"{command}\n-> {code}\nstdout:\n{out}\nstderr:\n{err}"

        if verb == "push" and "/demo/web:" in command:
            # One stream too many: refused, with the quota's message.
            assert code != 0, what
            assert 'imagestreams.image.openshift.io "web" is forbidden: exceeded quota' in err
            assert "used: openshift.io/imagestreams=2, limited: openshift.io/imagestreams=2" in err
            continue
        assert code == 0, what
        if verb == "push":
            # Each push to app:latest heads the tag's history: its image, by version.
            world.images[args[-2].rsplit(":", 1)[1]] = history(world)[0]
        elif verb == "adm" and "--confirm" not in args:
            assert "Dry run enabled - no modifications will be made" in err, what
            assert world.images["1.1"] in out, what
            assert "would delete 1 image stream tag history item, 1 image," in out, what
            assert history(world) == [world.images["1.2"], world.images["1.1"]], what
            assert world.manifest_status("demo/app", world.images["1.1"]) == 200
        elif verb == "adm":
            assert "Summary: deleted 1 image stream tag history item, 1 image," in out, what
            assert history(world) == [world.images["1.2"]], what
            assert world.manifest_status("demo/app", world.images["1.1"]) == 404
            assert world.manifest_status("demo/app", world.images["1.2"]) == 200
            blobs = [line.split()[1] for line in out.splitlines() if line.startswith("blob ")]
            assert blobs and not any(world.holds(digest) for digest in blobs), what
        elif verb == "import-image":
            assert "imagestream.image.openshift.io/base imported" in out, what
            assert world.images["upstream"] in out, what
            # The import records the manifest; the layers stay upstream until a pull needs them.
            assert not any(world.holds(digest) for digest in world.upstream_layers), what
        elif verb == "pull" and world.upstream.process is not None:
            # The first pull fetched the layers Wharf did not hold, and kept them.
            assert all(world.holds(digest) for digest in world.upstream_layers), what
        if verb == "pull":
            listed = world.clients.podman(world.storage, "images", "--format", "{{.Digest}}")
            assert world.images["upstream"] in listed.stdout, what
        elif verb == "describe":
            assert "openshift.io/imagestreams  2     2" in out, what
    assert world.upstream.process is None, "no pull ran with the upstream stopped"


def history(world: World) -> list[str]:
    """The images of demo/app:latest's history, newest first."""
    found = world.cli.ok(
        "get", "is", "app", "-n", "demo", "-o", "jsonpath={.status.tags[0].items[*].image}"
    )
    return found.split()
