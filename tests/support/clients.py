"""Run the real podman, skopeo and buildah against a Wharf, apart from the machine's own
containers configuration and storage.

Every tool runs with:

- its own HOME (so `~/.config/containers/{policy.json,registries.conf}` are ours, and no
  credentials of the machine are read), `REGISTRY_AUTH_FILE`, `TMPDIR` and XDG directories;
- `CONTAINERS_REGISTRIES_CONF` naming a registries.conf with no unqualified-search registries
  and short names disabled, so no name ever resolves to a registry on the network;
- a policy that accepts anything (our images are not signed);
- for podman and buildah, `--storage-driver vfs --root ... --runroot ...` of a `Storage`: vfs
  needs no overlay, fuse or container runtime, and each `Storage` is a directory of its own.

The registry speaks plain HTTP, so every command that talks to it passes `--tls-verify=false`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.server import WharfProcess

TOOLS = ("podman", "skopeo", "buildah")
DEFAULT_TIMEOUT = 120.0
NO_TLS = "--tls-verify=false"

POLICY = {"default": [{"type": "insecureAcceptAnything"}]}
REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_ALL = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

ENV = {"WHARF_TEST": "1", "GREETING": "hello world"}
LABELS = {"org.example.wharf": "yes"}

# A debug log line of containers/image for each HTTP request it makes: `GET http://...`.
_REQUEST = re.compile(r'msg="(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+)"')


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        return json.loads(self.stdout)

    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1].strip() if lines else ""


class ToolError(AssertionError):
    """A client failed or ran out of time; the message carries the command and its stderr."""

    def __init__(self, argv: Sequence[str], what: str, stdout: str, stderr: str) -> None:
        super().__init__(
            f"{shlex.join(argv)}\n{what}\n--- stderr ---\n{_tail(stderr)}\n"
            f"--- stdout ---\n{_tail(stdout)}"
        )
        self.argv = tuple(argv)
        self.stdout = stdout
        self.stderr = stderr


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


@dataclass(frozen=True)
class Storage:
    """A containers-storage of its own, with the vfs driver."""

    root: Path
    runroot: Path
    tmpdir: Path  # podman's libpod state (otherwise /run/libpod)

    @property
    def flags(self) -> list[str]:
        return ["--storage-driver", "vfs", "--root", str(self.root), "--runroot", str(self.runroot)]

    def reference(self, image: str) -> str:
        """`image` in this storage, as a skopeo `containers-storage:` reference."""
        return f"containers-storage:[vfs@{self.root}+{self.runroot}]{image}"


@dataclass(frozen=True)
class BuiltImage:
    """An image built from scratch by `Clients.build`: what it should contain once pulled."""

    reference: str  # localhost/NAME:latest in the storage it was built in
    image_id: str  # hex sha256 of its config
    files: Mapping[str, bytes] = field(repr=False)  # absolute path in the image -> content
    # The files each layer added, base first.
    layer_files: tuple[Mapping[str, bytes], ...] = field(repr=False)
    architecture: str
    os: str
    variant: str | None
    format: str  # "oci" or "docker"
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class Clients:
    """The three tools, configured to touch nothing outside `home` but the registry."""

    def __init__(self, home: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        missing = [tool for tool in TOOLS if shutil.which(tool) is None]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not installed: scripts/test installs them")
        self.home = home
        self.timeout = timeout
        config = home / "home" / ".config" / "containers"
        config.mkdir(parents=True)
        self.policy = config / "policy.json"
        self.policy.write_text(json.dumps(POLICY))
        self.registries_conf = config / "registries.conf"
        self.registries_conf.write_text(REGISTRIES_CONF)
        self.registries_d = config / "registries.d"
        self.registries_d.mkdir()
        # Only used by a tool that was not told where its storage is: keep even that in `home`.
        storage_conf = config / "storage.conf"
        default = home / "default-storage"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{default}/root"\n'
            f'runroot = "{default}/runroot"\n'
        )
        tmp = home / "tmp"
        tmp.mkdir()
        containers_conf = config / "containers.conf"
        containers_conf.write_text(
            f'[engine]\nevents_logger = "none"\nimage_copy_tmp_dir = "{tmp}"\n'
        )
        auth_file = home / "auth.json"
        auth_file.write_text('{"auths": {}}')
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": str(home / "home"),
            "XDG_CONFIG_HOME": str(home / "home" / ".config"),
            "XDG_DATA_HOME": str(home / "home" / ".local" / "share"),
            "TMPDIR": str(tmp),
            "REGISTRY_AUTH_FILE": str(auth_file),
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
            "CONTAINERS_CONF": str(containers_conf),
            "LC_ALL": "C.UTF-8",
        }
        self._sources = home / "sources"
        self._sources.mkdir()
        # podman refuses a runroot longer than 50 characters: keep the runroots in a short path.
        self._runroots = Path(tempfile.mkdtemp(prefix="wharf-runroots-", dir="/tmp"))

    def close(self) -> None:
        """Remove the runroots (the rest lives in `home`, which pytest cleans up)."""
        shutil.rmtree(self._runroots, ignore_errors=True)

    # Running the tools

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float | None = None
    ) -> Result:
        argv = tuple(argv)
        try:
            completed = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=self.env,
                cwd=self.home,
                timeout=timeout or self.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ToolError(
                argv, f"timed out after {exc.timeout}s", _text(exc.stdout), _text(exc.stderr)
            ) from None
        result = Result(argv, completed.returncode, completed.stdout, completed.stderr)
        if check and not result.ok:
            raise ToolError(argv, f"exited {result.returncode}", result.stdout, result.stderr)
        return result

    def storage(self, name: str | None = None) -> Storage:
        """A new, empty storage."""
        name = name or uuid.uuid4().hex[:12]
        base = self.home / "storage" / name
        storage = Storage(base / "root", self._runroots / name, base / "libpod")
        for path in (storage.root, storage.runroot, storage.tmpdir):
            path.mkdir(parents=True)
        return storage

    def podman(self, storage: Storage, *args: str, check: bool = True) -> Result:
        return self.run(
            [
                "podman",
                *storage.flags,
                "--tmpdir",
                str(storage.tmpdir),
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
                *args,
            ],
            check=check,
        )

    def buildah(self, storage: Storage, *args: str, check: bool = True) -> Result:
        return self.run(["buildah", *storage.flags, *args], check=check)

    def skopeo(self, *args: str, check: bool = True, debug: bool = False) -> Result:
        options = ["--policy", str(self.policy), "--registries.d", str(self.registries_d)]
        if debug:
            options.append("--debug")
        return self.run(["skopeo", *options, *args], check=check)

    # Building

    def build(
        self,
        storage: Storage,
        name: str,
        layers: Sequence[Mapping[str, bytes]],
        *,
        base: BuiltImage | None = None,
        format: str = "oci",
        architecture: str = "amd64",
        os_name: str = "linux",
        variant: str | None = None,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> BuiltImage:
        """Build localhost/`name` from scratch (or on `base`), one layer per entry of `layers`.

        A working container's changes are one layer however often it is committed, so each
        layer is committed as an image of its own (`NAME-layerN`) that the next one starts from.
        """
        assert layers, "an image needs at least one layer of its own"
        previous = base.reference if base else "scratch"
        for number, files in enumerate(layers, start=1):
            last = number == len(layers)
            container = self.buildah(storage, "from", "--pull=never", "--quiet", previous)
            container_id = container.last_line()
            source = self._sources / f"{name}-{number}"
            for path, content in files.items():
                target = source / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            self.buildah(storage, "copy", "--quiet", container_id, f"{source}/.", "/")
            target_name = f"localhost/{name}:latest" if last else f"localhost/{name}-layer{number}"
            if last:
                config = ["--arch", architecture, "--os", os_name]
                if variant:
                    config += ["--variant", variant]
                for key, value in (env or {}).items():
                    config += ["--env", f"{key}={value}"]
                for key, value in (labels or {}).items():
                    config += ["--label", f"{key}={value}"]
                config += ["--created-by", f"wharf tests: {name}"]
                self.buildah(storage, "config", *config, container_id)
            committed = self.buildah(
                storage,
                "commit",
                "--quiet",
                "--rm",
                "--format",
                format if last else "oci",
                container_id,
                target_name,
            )
            previous = target_name
        all_files: dict[str, bytes] = dict(base.files) if base else {}
        for files in layers:
            all_files.update(files)
        return BuiltImage(
            reference=f"localhost/{name}:latest",
            image_id=committed.last_line(),
            files=all_files,
            layer_files=(*(base.layer_files if base else ()), *layers),
            architecture=architecture,
            os=os_name,
            variant=variant,
            format=format,
            env=dict(env or {}),
            labels=dict(labels or {}),
        )

    # Registry round trips

    def push(self, storage: Storage, image: str, destination: str, *args: str) -> str:
        """`podman push` to the registry; the manifest digest it pushed."""
        digestfile = self.home / f"digest-{uuid.uuid4().hex}"
        self.podman(
            storage, "push", NO_TLS, "--digestfile", str(digestfile), *args, image, destination
        )
        return digestfile.read_text().strip()

    def pull(self, storage: Storage, reference: str, *args: str) -> str:
        """`podman pull` from the registry; the image id it stored."""
        return self.podman(storage, "pull", NO_TLS, "--quiet", *args, reference).last_line()

    def image_inspect(self, storage: Storage, image: str) -> dict[str, Any]:
        found = self.podman(storage, "image", "inspect", image).json()
        assert isinstance(found, list) and len(found) == 1, found
        return dict(found[0])

    def read_files(self, storage: Storage, image: str, paths: Sequence[str]) -> dict[str, bytes]:
        """The content of `paths` in `image` of `storage`, through `podman image mount`."""
        mountpoint = Path(self.podman(storage, "image", "mount", image).last_line())
        try:
            return {
                path: (mountpoint / path.lstrip("/")).read_bytes()
                for path in paths
                if (mountpoint / path.lstrip("/")).is_file()
            }
        finally:
            self.podman(storage, "image", "unmount", image)

    def inspect(self, reference: str, *args: str) -> dict[str, Any]:
        """`skopeo inspect` of docker://`reference`."""
        return dict(self.skopeo("inspect", NO_TLS, *args, f"docker://{reference}").json())

    def raw_manifest(self, reference: str) -> bytes:
        """The manifest bytes exactly as the registry serves them."""
        return self.skopeo("inspect", NO_TLS, "--raw", f"docker://{reference}").stdout.encode()

    def copy(self, source: str, destination: str, *args: str, debug: bool = False) -> Result:
        """`skopeo copy`; registry references need their `docker://`."""
        return self.skopeo(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *args,
            source,
            destination,
            debug=debug,
        )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def requests_made(debug_log: str) -> list[tuple[str, str]]:
    """The (method, url) of every HTTP request in a containers/image debug log, in order."""
    return [(match[1], match[2]) for match in _REQUEST.finditer(debug_log)]


@dataclass(frozen=True)
class Images:
    """What the session built, all in `storage`."""

    storage: Storage
    base: BuiltImage  # two layers: a small file, and 5 MiB of random bytes
    app: BuiltImage  # OCI, amd64: base plus a third layer of two files
    app_docker: BuiltImage  # the same files, committed in Docker format
    arm: BuiltImage  # OCI, arm64 v8: base plus a layer of its own
    index: str  # a buildah manifest list of `app` and `arm`


@dataclass(frozen=True)
class RegistryHTTP:
    """Plain HTTP questions to the registry, to check what the clients left there."""

    wharf: WharfProcess
    http: requests.Session

    def manifest(self, repository: str, reference: str) -> requests.Response:
        return self.http.get(
            f"{self.wharf.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": ACCEPT_ALL},
            timeout=30,
        )

    def blob_status(self, repository: str, digest: str) -> int:
        return self.http.head(
            f"{self.wharf.url}/v2/{repository}/blobs/{digest}", timeout=30
        ).status_code

    def blob(self, repository: str, digest: str) -> bytes:
        response = self.http.get(f"{self.wharf.url}/v2/{repository}/blobs/{digest}", timeout=30)
        assert response.status_code == 200, (repository, digest, response.text)
        return response.content

    def tags(self, repository: str) -> requests.Response:
        return self.http.get(f"{self.wharf.url}/v2/{repository}/tags/list", timeout=30)
