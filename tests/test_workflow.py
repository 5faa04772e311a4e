"""The documented workflow, end to end, as users type it: every step is a `wharf`, `podman` or
`kubectl` command line run by bash (with its `$(...)`), in the user's own directory, against a
Wharf run as users run it (registry over TLS, cluster logins).

Only the machine is prepared for them: a `wharf` on PATH, and for podman a storage and settings
of each user's own (vfs, through CONTAINERS_STORAGE_CONF and CONTAINERS_CONF) and an auth file
of their own ($REGISTRY_AUTH_FILE), so that no flag appears on the command lines. The CA goes
where `wharf registry trust` puts it, /etc/containers/certs.d, and is removed afterwards; only
when that is not writable (not root) does it go to a directory of the test's, named to podman
with --cert-dir."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.clients import Clients, Storage
from tests.support.server import WharfProcess, running_wharf

pytestmark = pytest.mark.clients

CERTS_D = Path("/etc/containers/certs.d")
PODMAN_LOGIN = (
    "podman login -u $(wharf whoami) -p $(wharf whoami -t) "
    "$(wharf -n openshift-image-registry get route default-route -o jsonpath='{.spec.host}')"
)


@dataclass(frozen=True)
class Done:
    command: str
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"$ {self.command}\n-> {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Person:
    """Someone at a shell: a directory of their own (their kubeconfig, and ./wharf-data of
    the server next to it, as `wharf serve` leaves it), a podman storage and auth file."""

    name: str
    home: Path
    storage: Storage
    env: dict[str, str] = field(repr=False)

    def sh(self, command: str, *, check: bool = True) -> Done:
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            timeout=180,
        )
        result = Done(command, done.returncode, done.stdout, done.stderr)
        if check:
            assert result.code == 0, str(result)
        return result

    def fails(self, command: str) -> Done:
        result = self.sh(command, check=False)
        assert result.code != 0, str(result)
        return result

    def with_storage(self, storage: Storage) -> Person:
        """The same person, with podman working in another (clean) storage."""
        settings = podman_settings(storage, self.home)
        return Person(self.name, self.home, storage, {**self.env, **settings})


def podman_settings(storage: Storage, directory: Path) -> dict[str, str]:
    """podman's storage and engine settings as files, so that no flag is needed."""
    name = storage.root.parent.name
    storage_conf = directory / f"storage-{name}.conf"
    storage_conf.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{storage.root}"\nrunroot = "{storage.runroot}"\n'
    )
    containers_conf = directory / f"containers-{name}.conf"
    containers_conf.write_text(
        f'[engine]\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n'
        f'tmp_dir = "{storage.tmpdir}"\nimage_copy_tmp_dir = "{storage.tmpdir}"\n'
    )
    return {"CONTAINERS_STORAGE_CONF": str(storage_conf), "CONTAINERS_CONF": str(containers_conf)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    # Started as users start it (python -m wharf serve), not forked: see tests/support/forked.py.
    with running_wharf(
        tmp_path_factory.mktemp("workflow") / "data", integrated=True, cold=True
    ) as w:
        yield w


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    tools = Clients(tmp_path_factory.mktemp("workflow-clients"))
    yield tools
    tools.close()


@pytest.fixture(scope="module")
def wharf_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with `wharf` in it, as an installation puts it on PATH."""
    directory = tmp_path_factory.mktemp("bin")
    script = directory / "wharf"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m wharf "$@"\n')
    script.chmod(0o755)
    return directory


@dataclass(frozen=True)
class Trust:
    certs_option: str  # for `wharf registry trust`
    podman_option: str  # for podman, when the CA is not where podman looks by itself


@pytest.fixture(scope="module")
def trust(server: WharfProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trust]:
    """Where `wharf registry trust` installs the CA: podman's own place when writable; what
    was there before for this host comes back afterwards."""
    existing = next(p for p in (CERTS_D, *CERTS_D.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        certs = tmp_path_factory.mktemp("certs.d")
        yield Trust(f" --certs-dir {certs}", f" --cert-dir {certs / server.host}")
        return
    target = CERTS_D / server.host
    before = (target / "ca.crt").read_bytes() if (target / "ca.crt").is_file() else None
    try:
        yield Trust("", "")
    finally:
        shutil.rmtree(target, ignore_errors=True)
        if before is not None:
            target.mkdir(parents=True, exist_ok=True)
            (target / "ca.crt").write_bytes(before)


@pytest.fixture
def people(
    server: WharfProcess, clients: Clients, wharf_bin: Path, tmp_path: Path
) -> dict[str, Person]:
    found = {}
    for name in ("kubeadmin", "alice"):
        home = tmp_path / name
        home.mkdir()
        (home / "wharf-data").symlink_to(server.data_dir)
        env = {
            **clients.env,
            "PATH": f"{wharf_bin}{os.pathsep}{clients.env['PATH']}",
            "KUBECONFIG": str(home / "kubeconfig"),
            "WHARF_CACHE_DIR": str(home / ".cache"),
            "REGISTRY_AUTH_FILE": str(home / "auth.json"),
        }
        storage = clients.storage(name)
        found[name] = Person(name, home, storage, {**env, **podman_settings(storage, home)})
    return found


def test_the_documented_workflow(
    server: WharfProcess, clients: Clients, people: dict[str, Person], trust: Trust
) -> None:
    admin, alice = people["kubeadmin"], people["alice"]
    api = f"https://127.0.0.1:{server.api_port}"

    # 1. The administrator logs in and adds alice; alice logs in.
    logged_in = admin.sh(
        f'wharf login -u kubeadmin -p "$(cat wharf-data/auth/kubeadmin-password)" {api}'
    )
    assert logged_in.out.startswith("Login successful.")
    admin.sh(f"wharf user add alice --password secret --data-dir {server.data_dir}")
    assert alice.sh(f"wharf login -u alice -p secret {api}").out.startswith("Login successful.")
    route = alice.sh(
        "wharf -n openshift-image-registry get route default-route -o jsonpath='{.spec.host}'"
    ).out
    assert route == server.host

    # 2. Until the machine trusts Wharf's CA, podman refuses the registry; then it logs in.
    refused = alice.fails(PODMAN_LOGIN + trust.podman_option)
    assert "certificate" in refused.err, refused
    out = alice.sh("wharf registry trust" + trust.certs_option).out
    if not trust.certs_option:
        assert out == f"Wrote the CA for {route} to {CERTS_D / route / 'ca.crt'}\n"
        assert (CERTS_D / route / "ca.crt").read_bytes() == server.ca_file.read_bytes()
    login = alice.sh(PODMAN_LOGIN + trust.podman_option)
    assert login.out.strip() == "Login Succeeded!", login

    # 3. kubeadmin shares an image from project `shared`; alice may pull it once granted.
    admin.sh("wharf new-project shared")
    clients.build(admin.storage, "image", [{"/hello.txt": b"hello from shared\n"}])
    saved = admin.sh("wharf registry login").out
    assert saved == f"Saved credentials for {route} in {admin.env['REGISTRY_AUTH_FILE']}\n"
    admin.sh(f"podman push{trust.podman_option} localhost/image:latest {route}/shared/image")
    denied = alice.fails(f"podman pull{trust.podman_option} {route}/shared/image")
    assert "unauthorized" in denied.err or "denied" in denied.err, denied
    granted = admin.sh("wharf policy add-role-to-user system:image-puller alice -n shared").out
    assert granted == 'clusterrole.rbac.authorization.k8s.io/system:image-puller added: "alice"\n'
    alice.sh(f"podman pull{trust.podman_option} {route}/shared/image")

    # 4. alice may view project `team` but not push to it.
    admin.sh("wharf new-project team")
    admin.sh("wharf policy add-role-to-user view alice -n team")
    alice.sh(f"podman tag {route}/shared/image {route}/team/image")
    refused = alice.fails(f"podman push{trust.podman_option} {route}/team/image")
    assert "unauthorized" in refused.err or "denied" in refused.err, refused

    # 5. With system:image-builder there, the push goes through.
    admin.sh("wharf policy add-role-to-user system:image-builder alice -n team")
    alice.sh(f"podman push{trust.podman_option} {route}/team/image")

    # 6. The image and its stream, seen by the real kubectl.
    streams = alice.sh("kubectl get imagestreams -n team").out.splitlines()
    assert streams[0].split()[:3] == ["NAME", "IMAGE", "REPOSITORY"]
    assert streams[1].split()[:3] == ["image", f"{route}/team/image", "latest"]
    tags = alice.sh("kubectl get istag -n team -o name").out
    assert tags == "imagestreamtag.image.openshift.io/image:latest\n"
    digest = alice.sh(
        "wharf -n team get istag image:latest -o jsonpath='{.image.metadata.name}'"
    ).out
    assert digest.startswith("sha256:")
    repositories = alice.sh(
        "kubectl get is image -n team -o "
        "jsonpath='{.status.dockerImageRepository} {.status.publicDockerImageRepository}'"
    ).out
    assert repositories == f"{route}/team/image {route}/team/image"
    assert digest in admin.sh("kubectl get images").out
    assert "forbidden" in alice.fails("kubectl get images").err.lower()
    assert alice.sh("wharf -n team registry info --public").out == f"{route}\n"

    # 7. Pulled back, by tag and by digest, into a clean storage.
    clean = alice.with_storage(clients.storage())
    for reference in (f"{route}/team/image", f"{route}/team/image@{digest}"):
        clean.sh(f"podman pull{trust.podman_option} {reference}")
        pulled = clean.sh(f"podman image inspect --format '{{{{.Digest}}}}' {reference}").out
        assert pulled.strip() == digest
    files = clients.read_files(clean.storage, f"{route}/team/image", ["/hello.txt"])
    assert files == {"/hello.txt": b"hello from shared\n"}

    # 8. In a project of her own: push, tag prod, pull prod; once the tag is deleted, no pull.
    alice.sh("wharf new-project alice-own")
    alice.sh(f"podman tag {route}/shared/image {route}/alice-own/image")
    alice.sh(f"podman push{trust.podman_option} {route}/alice-own/image")
    own = alice.sh("wharf get istag image:latest -o jsonpath='{.image.metadata.name}'").out
    out = alice.sh("wharf tag alice-own/image:latest alice-own/image:prod").out
    assert out == f"Tag image:prod set to alice-own/image@{own}.\n"
    clean.sh(f"podman pull{trust.podman_option} {route}/alice-own/image:prod")
    out = alice.sh("wharf tag -d alice-own/image:prod").out
    assert out == "Deleted tag alice-own/image:prod.\n"
    gone = clean.fails(f"podman pull{trust.podman_option} {route}/alice-own/image:prod")
    assert "manifest unknown" in gone.err or "not found" in gone.err, gone
