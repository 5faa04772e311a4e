"""An upstream registry for import and pull-through tests: Debian's docker-registry (the CNCF
distribution) on a free loopback port, plain HTTP, filesystem storage, optionally behind
htpasswd authentication."""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.oci import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    descriptor,
    digest_of,
    image_index,
    image_manifest,
)
from tests.support.server import end_process, free_port

BINARY = "/usr/bin/docker-registry"

_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  # No descriptor cache: a blob deleted or a tag moved by a test is seen at once.
http:
  addr: 127.0.0.1:{port}
  secret: wharf-tests-upstream
{auth}"""

_HTPASSWD = """\
auth:
  htpasswd:
    realm: wharf-tests-upstream
    path: {path}
"""


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for docker-registry's htpasswd file (it accepts no other scheme).

    Python 3.11's `crypt` over Debian's libxcrypt makes one; the module is deprecated (gone in
    3.13), so the warning is silenced here, the one place that uses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        # The lowest cost (2**4 rounds): docker-registry checks the hash on every request.
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@dataclass
class PushedImage:
    """What `Upstream.push_image` or `push_index` put upstream."""

    digest: str
    media_type: str
    payload: bytes
    blobs: dict[str, bytes] = field(default_factory=dict)
    children: list[PushedImage] = field(default_factory=list)


@dataclass
class Upstream:
    """One docker-registry process; `stop()` and `start()` keep its port and data."""

    workdir: Path
    port: int
    credentials: tuple[str, str] | None
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "upstream.log"

    def http(self) -> Registry:
        """A protocol client for the tests' own pushes (authenticated when the upstream is)."""
        session = requests.Session()
        session.trust_env = False  # no proxy between the tests and the loopback
        if self.credentials is not None:
            session.auth = self.credentials
        return Registry(self.url, session)

    def start(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        config = self.workdir / "upstream-config.yml"
        auth = ""
        if self.credentials is not None:
            username, password = self.credentials
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(f"{username}:{bcrypt_hash(password)}\n")
            auth = _HTPASSWD.format(path=htpasswd)
        data = self.workdir / "upstream-data"
        data.mkdir(parents=True, exist_ok=True)
        config.write_text(_CONFIG.format(root=data, port=self.port, auth=auth))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [BINARY, "serve", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
            )
        self._wait_up(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            end_process(self.process)
        self.process = None

    def _wait_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        session = requests.Session()
        session.trust_env = False
        last: object = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                # 401 is an answer too: the upstream is up and asks for credentials.
                status = session.get(f"{self.url}/v2/", timeout=2).status_code
                if status in (200, 401):
                    return
                last = status
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry not up within {timeout}s (last: {last})")

    # Putting images there

    def push_image(
        self,
        repository: str,
        tag: str | None = "latest",
        *,
        architecture: str = "amd64",
        os: str = "linux",
        seed: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> PushedImage:
        """An OCI image of one small layer (its bytes vary with `seed`), pushed by tag (or by
        digest when `tag` is None)."""
        registry = self.http()
        layer = f"layer {repository} {seed} {time.time_ns()}".encode() * 8
        config_document: dict[str, Any] = {
            "architecture": architecture,
            "os": os,
            "created": "2026-01-02T03:04:05Z",
            "config": {"Labels": labels or {}, "Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
        config = json.dumps(config_document).encode()
        for blob in (config, layer):
            registry.push_blob(repository, blob)
        payload = image_manifest(
            descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)], media_type=OCI_MANIFEST
        )
        digest = digest_of(payload)
        response = registry.put_manifest(repository, tag or digest, payload, OCI_MANIFEST)
        assert response.status_code == 201, (response.status_code, response.text)
        return PushedImage(
            digest, OCI_MANIFEST, payload, {digest_of(config): config, digest_of(layer): layer}
        )

    def push_index(
        self,
        repository: str,
        tag: str = "latest",
        platforms: Sequence[tuple[str, str]] = (("linux", "arm64"), ("linux", "amd64")),
    ) -> PushedImage:
        """A multi-arch OCI index of one image per (os, architecture), children by digest."""
        children = [
            self.push_image(repository, None, os=os, architecture=arch, seed=n)
            for n, (os, arch) in enumerate(platforms)
        ]
        payload = image_index(
            [
                {
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": len(child.payload),
                    "platform": {"os": os, "architecture": arch},
                }
                for child, (os, arch) in zip(children, platforms, strict=True)
            ]
        )
        response = self.http().put_manifest(repository, tag, payload, OCI_INDEX)
        assert response.status_code == 201, (response.status_code, response.text)
        return PushedImage(digest_of(payload), OCI_INDEX, payload, children=children)

    def delete_manifest(self, repository: str, digest: str) -> None:
        response = self.http().http.delete(f"{self.url}/v2/{repository}/manifests/{digest}")
        assert response.status_code == 202, (response.status_code, response.text)


@contextmanager
def running_upstream(
    workdir: Path, *, credentials: tuple[str, str] | None = None
) -> Iterator[Upstream]:
    """docker-registry serving plain HTTP on 127.0.0.1, its data and log in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    upstream = Upstream(workdir, free_port(), credentials)
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()
