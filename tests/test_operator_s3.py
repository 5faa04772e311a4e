"""The operator's S3 storage, checked through the S3 API of the moto server: a bucket the
Config names that does not exist is created and Managed (public access blocked, default
encryption, tags, the incomplete-upload lifecycle rule); its encryption follows the Config;
disableRedirect switches blob redirects; Removed deletes a Managed bucket and Managed makes it
again; a bucket that exists already is the user's, Unmanaged and left as it is."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.operator_admin import RegistryAdmin
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import running_wharf, wait_until

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def bucket() -> str:
    return f"wharf-managed-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def cluster(
    moto: MotoServer, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A Wharf on S3 whose bucket does not exist yet: the operator makes it."""
    base = tmp_path_factory.mktemp("operator-s3")
    with running_wharf(base / "data", *s3_args(moto, bucket)) as process:
        yield Cluster(process, base)


@pytest.fixture(scope="module")
def admin(cluster: Cluster) -> RegistryAdmin:
    return RegistryAdmin(cluster.kubectl())


def test_a_missing_bucket_is_created_and_managed(
    moto: MotoServer, bucket: str, admin: RegistryAdmin
) -> None:
    s3 = moto.client()
    s3.head_bucket(Bucket=bucket)
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle == [
        {
            "ID": "cleanup-incomplete-multipart-registry-uploads",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["Name"] == "wharf-image-registry"

    config = admin.config()
    assert config["spec"]["storage"]["managementState"] == "Managed"
    assert config["spec"]["storage"]["s3"]["bucket"] == bucket
    assert config["status"]["storageManaged"] is True
    assert config["status"]["storage"]["s3"]["bucket"] == bucket
    for kind in (
        "StorageExists",
        "StorageEncrypted",
        "StoragePublicAccessBlocked",
        "StorageIncompleteUploadCleanupEnabled",
    ):
        assert admin.condition(kind, config)["status"] == "True", kind
    assert admin.condition("Available", config)["reason"] == "Ready"


def test_encryption_follows_the_config(moto: MotoServer, bucket: str, admin: RegistryAdmin) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/wharf-test"
    config = admin.patch({"storage": {"s3": {"encrypt": True, "keyID": key}}})
    assert "KMS" in admin.condition("StorageEncrypted", config)["message"]
    rule = moto.client().get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key,
    }
    admin.patch({"storage": {"s3": {"encrypt": False, "keyID": None}}})
    rule = moto.client().get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def _push_blob(cluster: Cluster, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    base = cluster.wharf.url
    started = requests.post(
        f"{base}/v2/s3ops/app/blobs/uploads/?digest={digest}", data=data, timeout=30
    )
    assert started.status_code == 201, started.text
    return digest


def test_disable_redirect_switches_redirects(cluster: Cluster, admin: RegistryAdmin) -> None:
    data = b"redirected or not " * 1000
    digest = _push_blob(cluster, data)
    url = f"{cluster.wharf.url}/v2/s3ops/app/blobs/{digest}"
    redirected = requests.get(url, allow_redirects=False, timeout=30)
    assert redirected.status_code == 307
    admin.patch({"disableRedirect": True})
    streamed = requests.get(url, allow_redirects=False, timeout=30)
    assert streamed.status_code == 200 and streamed.content == data
    admin.patch({"disableRedirect": False})
    assert requests.get(url, allow_redirects=False, timeout=30).status_code == 307


def test_removed_deletes_a_managed_bucket_and_managed_makes_it_again(
    moto: MotoServer, bucket: str, cluster: Cluster, admin: RegistryAdmin
) -> None:
    _push_blob(cluster, b"gone with the bucket")
    config = admin.patch({"managementState": "Removed"})
    assert admin.condition("Removed", config)["status"] == "True"
    assert bucket not in [b["Name"] for b in moto.client().list_buckets()["Buckets"]]
    config = admin.patch({"managementState": "Managed"})
    assert admin.condition("StorageExists", config)["status"] == "True"
    moto.client().head_bucket(Bucket=bucket)
    assert moto.keys(bucket) == []  # back on empty storage
    assert requests.get(f"{cluster.wharf.url}/v2/", timeout=10).status_code == 200


def test_a_bucket_that_exists_is_unmanaged(moto: MotoServer, tmp_path: Path) -> None:
    existing = moto.new_bucket()
    with running_wharf(tmp_path / "data", *s3_args(moto, existing)) as process:
        admin = RegistryAdmin(Cluster(process, tmp_path).kubectl())
        config = admin.config()
        assert config["spec"]["storage"]["managementState"] == "Unmanaged"
        assert config["status"]["storageManaged"] is False
        assert admin.condition("StorageExists", config)["status"] == "True"
    # Left as the user made it: no encryption or lifecycle added.
    client = moto.client()
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_lifecycle_configuration(Bucket=existing)


def test_storage_switches_to_a_managed_bucket_and_back_without_a_restart(
    moto: MotoServer, tmp_path: Path
) -> None:
    """Local disk to a new bucket and back, by patching spec.storage: each time the registry
    serves from the new storage within seconds, empty (as OpenShift's registry on new storage),
    and what it stores lands there."""
    bucket = f"wharf-switch-{uuid.uuid4().hex[:12]}"
    data_dir = tmp_path / "data"
    with running_wharf(data_dir) as process:
        cluster = Cluster(process, tmp_path)
        admin = RegistryAdmin(cluster.kubectl())
        on_disk = _push_blob(cluster, b"on local disk first")

        s3 = {"bucket": bucket, "region": "us-east-1", "regionEndpoint": moto.url}
        admin.patch({"storage": {"pvc": None, "managementState": None, "s3": s3}})
        wait_until(lambda: (admin.config()["status"]["storage"].get("s3") or {}).get("bucket"))
        config = admin.config()
        assert config["status"]["storage"]["s3"]["bucket"] == bucket
        assert config["spec"]["storage"]["managementState"] == "Managed"  # made by the operator
        wait_until(lambda: _registry_status(cluster, "/v2/") == 200)
        assert _registry_status(cluster, f"/v2/s3ops/app/blobs/{on_disk}") == 404
        in_bucket = _push_blob(cluster, b"in the bucket now")
        assert any(in_bucket.removeprefix("sha256:") in key for key in moto.keys(bucket))
        assert _registry_status(cluster, f"/v2/s3ops/app/blobs/{in_bucket}") == 307

        admin.patch({"storage": {"s3": None, "pvc": {"claim": "image-registry-storage"}}})
        wait_until(lambda: "pvc" in admin.config()["status"]["storage"])
        wait_until(lambda: _registry_status(cluster, "/v2/") == 200)
        assert _registry_status(cluster, f"/v2/s3ops/app/blobs/{in_bucket}") == 404
        back = _push_blob(cluster, b"back on local disk")
        assert any(p.name == back.removeprefix("sha256:") for p in (data_dir / "blobs").rglob("*"))
        assert _registry_status(cluster, f"/v2/s3ops/app/blobs/{back}") == 200


def _registry_status(cluster: Cluster, path: str) -> int:
    found = requests.get(f"{cluster.wharf.url}{path}", allow_redirects=False, timeout=10)
    return found.status_code
