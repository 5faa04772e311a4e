"""`wharf adm prune images` against a real integrated server: the dry run changes nothing,
`--confirm` removes old tag revisions, their Images, manifest and layer links and blobs (files
on disk too), never a tag's current image nor a layer a kept image shares; the role
system:image-pruner is what it takes, and `DELETE /admin/blobs/<digest>` answers as the
registry's protocol says."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.cli import Cli, new_cli
from tests.support.cluster import bearer, registry_session
from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    Registry,
    assert_error,
    descriptor,
    digest_of,
    image_manifest,
    random_bytes,
)
from tests.support.server import WharfProcess, running_wharf, wait_until

IMAGES = "/apis/image.openshift.io/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfProcess]:
    data = tmp_path_factory.mktemp("prune") / "data"
    with running_wharf(data, integrated=True) as process:
        yield process


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, server: WharfProcess) -> Cli:
    cli = new_cli(tmp_path_factory.mktemp("admin"))
    cli.login_admin(server)
    return cli


@dataclass
class Pushed:
    digest: str
    blobs: list[str]  # config first


def push(reg: Registry, repository: str, tag: str, shared: bytes) -> Pushed:
    """An image of a config, the `shared` layer and a layer of its own, pushed by tag."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": uuid.uuid4().hex}).encode()
    own = random_bytes(2000)
    for data in (config, shared, own):
        reg.push_blob(repository, data)
    payload = image_manifest(
        descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, shared), descriptor(OCI_LAYER, own)]
    )
    answer = reg.put_manifest(repository, tag, payload)
    assert answer.status_code == 201, answer.text
    return Pushed(digest_of(payload), [digest_of(config), digest_of(shared), digest_of(own)])


def blob_file(server: WharfProcess, digest: str) -> Path:
    encoded = digest.split(":", 1)[1]
    return server.data_dir / "blobs" / "sha256" / encoded[:2] / encoded


def history(admin: Cli, project: str, stream: str) -> list[str]:
    found = json.loads(admin.ok("get", "is", stream, "-n", project, "-o", "json"))
    tags = (found.get("status") or {}).get("tags") or []
    return [item["image"] for tag in tags for item in tag["items"]]


def test_prune_dry_run_then_confirm(server: WharfProcess, admin: Cli) -> None:
    project = f"prune-{uuid.uuid4().hex[:6]}"
    admin.ok("new-project", project)
    repository = f"{project}/app"
    shared = random_bytes(3000)
    with registry_session(server, bearer(admin.token())) as session:
        reg = Registry(server.url, session)
        pushed = [push(reg, repository, "latest", shared) for _ in range(4)]
        other = push(reg, f"{project}/other", "v1", shared)  # shares the layer
    newest_first = [p.digest for p in reversed(pushed)]
    assert history(admin, project, "app") == newest_first

    flags = ("--keep-tag-revisions", "2", "--keep-younger-than", "0s")
    dry = admin.run("adm", "prune", "images", *flags)
    assert dry.code == 0, str(dry)
    assert "Dry run enabled - no modifications will be made" in dry.err
    old = pushed[:2]
    for image in old:
        assert image.digest in dry.out
    for kept in pushed[2:]:
        assert f"image   {kept.digest}" not in dry.out
    assert "would delete 2 image stream tag history items, 2 images" in dry.out
    assert history(admin, project, "app") == newest_first  # nothing changed

    # Without --keep-younger-than, images pushed just now are all too young to go.
    young = admin.ok("adm", "prune", "images", "--keep-tag-revisions", "2")
    assert "would delete 0 image stream tag history items, 0 images" in young

    done = admin.run("adm", "prune", "images", *flags, "--confirm", "--registry-url", server.host)
    assert done.code == 0, str(done)
    assert "Summary: deleted 2 image stream tag history items, 2 images" in done.out
    assert history(admin, project, "app") == newest_first[:2]
    with registry_session(server, bearer(admin.token())) as session:
        reg = Registry(server.url, session)
        for image in old:
            assert reg.get_manifest(repository, image.digest).status_code == 404
            answer = session.get(f"{server.api_url}{IMAGES}/images/{image.digest}")
            assert answer.status_code == 404
            for digest in (image.blobs[0], image.blobs[2]):  # its config and own layer
                assert reg.blob(repository, digest).status_code == 404
                assert not blob_file(server, digest).exists()
        # The shared layer stays: kept images and the other stream use it.
        assert reg.blob(repository, other.blobs[1]).status_code in (200, 307)
        assert blob_file(server, other.blobs[1]).exists()
        for image in pushed[2:]:
            assert reg.get_manifest(repository, image.digest).status_code == 200
            for digest in image.blobs:
                assert reg.blob(repository, digest).content == (
                    blob_file(server, digest).read_bytes()
                )
        assert reg.get_manifest(f"{project}/other", "v1").status_code == 200

    # A second run finds nothing more to do with these limits.
    again = admin.run("adm", "prune", "images", *flags, "--confirm", "--registry-url", server.host)
    assert again.code == 0, str(again)
    assert history(admin, project, "app") == newest_first[:2]


def test_the_pruner_role_is_what_it_takes(server: WharfProcess, admin: Cli, tmp_path: Path) -> None:
    name, password = f"p-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.ok("user", "add", name, "-p", password, "--data-dir", str(server.data_dir))
    cli = new_cli(tmp_path / name)
    cli.ok(
        "login", server.api_url, "--certificate-authority", str(server.ca_file),
        "-u", name, "-p", password,
    )  # fmt: skip
    refused = cli.fails("adm", "prune", "images")
    assert "forbidden" in refused.lower()
    admin.ok("adm", "policy", "add-cluster-role-to-user", "system:image-pruner", name)
    result = cli.run("adm", "prune", "images", "--keep-younger-than", "0s")
    assert result.code == 0, str(result)
    # The pruner may delete blobs at the registry; a user without the role may not.
    digest = digest_of(b"no such blob " + uuid.uuid4().bytes)
    with registry_session(server, bearer(cli.token())) as session:
        assert_error(session.delete(f"{server.url}/admin/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_admin_blob_endpoint(server: WharfProcess, admin: Cli) -> None:
    project = f"adm-{uuid.uuid4().hex[:6]}"
    admin.ok("new-project", project)
    with registry_session(server, bearer(admin.token())) as session:
        reg = Registry(server.url, session)
        image = push(reg, f"{project}/app", "latest", random_bytes(1000))
        # Still named by a manifest a repository holds: refused, and nothing is lost.
        answer = session.delete(f"{server.url}/admin/blobs/{image.blobs[2]}")
        assert_error(answer, 403, "DENIED")
        assert reg.blob(f"{project}/app", image.blobs[2]).status_code == 200
        assert_error(
            session.delete(f"{server.url}/admin/blobs/sha256:nothex"), 400, "DIGEST_INVALID"
        )
        assert_error(session.get(f"{server.url}/admin/blobs/{image.blobs[2]}"), 405, "UNSUPPORTED")
        # An unreferenced blob goes at once, bytes and all.
        lone = reg.push_blob(f"{project}/app", random_bytes(500))
        assert session.delete(f"{server.url}/admin/blobs/{lone}").status_code == 204
        assert reg.blob(f"{project}/app", lone).status_code == 404
        assert not blob_file(server, lone).exists()
    anonymous = requests.delete(
        f"{server.url}/admin/blobs/{image.blobs[2]}", verify=str(server.ca_file)
    )
    assert anonymous.status_code == 401
    assert_error(anonymous, 401, "UNAUTHORIZED")


def test_bad_flags(admin: Cli) -> None:
    err = admin.fails(
        "adm", "prune", "images", "--prune-over-size-limit", "--keep-tag-revisions", "1"
    )
    assert "--prune-over-size-limit cannot be specified" in err
    assert "--keep-younger-than" in admin.fails(
        "adm", "prune", "images", "--keep-younger-than", "soon"
    )
    assert "--all" in admin.fails("adm", "prune", "images", "--all=maybe")
    assert admin.run("adm", "prune", "images", "--all=false").code == 0


@pytest.mark.slow
def test_the_image_pruner_prunes_on_its_schedule(server: WharfProcess, admin: Cli) -> None:
    """Every minute, keeping one revision: within a minute and a half (the schedule's minute,
    plus the operator's 30 s resync) the older revisions are gone, and the pruner's status says
    what its last run deleted."""
    project = f"cron-{uuid.uuid4().hex[:6]}"
    admin.ok("new-project", project)
    with registry_session(server, bearer(admin.token())) as session:
        reg = Registry(server.url, session)
        pushed = [push(reg, f"{project}/app", "latest", random_bytes(800)) for _ in range(3)]
    spec = {"schedule": "* * * * *", "keepTagRevisions": 1, "keepYoungerThanDuration": "0s"}
    pruner = "imagepruners.imageregistry.operator.openshift.io"
    admin.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "imageregistry.operator.openshift.io/v1", "kind": "ImagePruner",
         "metadata": {"name": "cluster"}, "spec": spec}
    ))  # fmt: skip

    def failed_condition() -> dict[str, str]:
        found = json.loads(admin.ok("get", pruner, "cluster", "-o", "json"))
        conditions = {c["type"]: c for c in found["status"]["conditions"]}
        assert conditions["Scheduled"]["status"] == "True"
        return dict(conditions["Failed"])

    wait_until(lambda: failed_condition()["reason"] == "Complete", timeout=120, interval=1)
    assert "Pruner completed successfully: deleted" in failed_condition()["message"]
    assert history(admin, project, "app") == [pushed[-1].digest]
    with registry_session(server, bearer(admin.token())) as session:
        reg = Registry(server.url, session)
        for image in pushed[:2]:
            assert reg.get_manifest(f"{project}/app", image.digest).status_code == 404
            assert not blob_file(server, image.blobs[2]).exists()
        assert reg.get_manifest(f"{project}/app", "latest").status_code == 200
    suspended = {**spec, "suspend": True}
    admin.ok("apply", "-f", "-", input=json.dumps(
        {"apiVersion": "imageregistry.operator.openshift.io/v1", "kind": "ImagePruner",
         "metadata": {"name": "cluster"}, "spec": suspended}
    ))  # fmt: skip
