"""The newcomer's S3 walk-through: `wharf serve --storage s3` against a moto server, podman
pushes, Wharf is killed and started again, podman pulls the same image back, and the bucket
holds its blobs under content-addressed keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.clients import Clients, Images, Storage
from tests.support.s3 import MotoServer
from tests.support.server import running_wharf

pytest_plugins = ("tests.support.client_fixtures",)
pytestmark = [pytest.mark.clients, pytest.mark.s3]


def test_push_kill_restart_pull_on_s3(
    clients: Clients,
    images: Images,
    clean_storage: Storage,
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    bucket = moto.new_bucket()
    data_dir = tmp_path / "data"
    args = ("--storage", "s3", "--s3-bucket", bucket, "--s3-endpoint", moto.url)
    with running_wharf(data_dir, *args) as first:
        reference = f"{first.host}/demo/app:1.0"
        digest = clients.push(images.storage, images.app.reference, reference)
        first.process.kill()  # no orderly shutdown: what was acknowledged must be durable
        first.process.wait()
    with running_wharf(data_dir, *args, port=first.port) as second:
        image_id = clients.pull(clean_storage, reference)
        assert image_id == images.app.image_id
        pulled = clients.image_inspect(clean_storage, reference)
        assert pulled["Digest"] == digest
        files = clients.read_files(clean_storage, reference, list(images.app.files))
        assert files == images.app.files
        manifest = clients.inspect(f"{second.host}/demo/app:1.0", "--raw")
    s3 = moto.client()
    expected = set()
    for descriptor in [manifest["config"], *manifest["layers"]]:
        encoded = descriptor["digest"].removeprefix("sha256:")
        key = f"blobs/sha256/{encoded[:2]}/{encoded}"
        expected.add(key)
        stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == encoded
        assert len(stored) == descriptor["size"]
    # Exactly the blobs: no upload left over, and manifests live in the database.
    assert set(moto.keys(bucket)) == expected
    assert not moto.multipart_uploads(bucket)
