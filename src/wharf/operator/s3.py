"""Provisioning of the registry's S3 bucket, in the order OpenShift's operator uses: the bucket
(created when missing: then it is Managed; one that exists already is the user's, Unmanaged
and left as it is), then for a Managed bucket the public access block, tags, default
encryption and the lifecycle rule that aborts incomplete multipart uploads after a day. Each
step is a condition of the Config's status. Credentials are found as the registry finds them
(the AWS environment and files)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

# botocore is imported where S3 is used (its import is a quarter of a second of every start of
# a server that may never use S3): the exception classes come from _errors().
if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import ServerSideEncryptionByDefaultTypeDef

LIFECYCLE_RULE = "cleanup-incomplete-multipart-registry-uploads"
# What the tags call the cluster (OpenShift uses the infrastructure name).
INFRA_NAME = "wharf"


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


class StorageError(Exception):
    """S3 refused or could not be reached; the message says which step."""


def _errors() -> tuple[type[Exception], ...]:
    """What botocore raises when S3 refuses or cannot be reached."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


def _is_client_error(exc: Exception) -> TypeGuard[ClientError]:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


@contextlib.asynccontextmanager
async def client(s3: dict[str, Any]) -> AsyncIterator[S3Client]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        s3={"addressing_style": "virtual" if s3.get("virtualHostedStyle") else "path"},
        signature_version="s3v4",
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=10,
        read_timeout=20,
    )
    async with get_session().create_client(
        "s3",
        region_name=s3.get("region") or "us-east-1",
        endpoint_url=s3.get("regionEndpoint") or None,
        config=config,
    ) as found:
        yield found


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


async def _exists(s3: S3Client, bucket: str) -> bool:
    try:
        await s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if _is_client_error(exc) and _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise
    return True


async def provision(spec: dict[str, Any], management: str | None) -> tuple[str, list[Condition]]:
    """Make the bucket of `spec` (the Config's storage.s3) match it; returns the storage's
    managementState (decided here when `management` is None) and the storage conditions."""
    bucket = spec["bucket"]
    conditions: list[Condition] = []
    try:
        async with client(spec) as s3:
            if await _exists(s3, bucket):
                management = management or "Unmanaged"
                conditions.append(
                    Condition(
                        "StorageExists", True, "S3 Bucket Exists", f"S3 bucket {bucket} exists"
                    )
                )
            elif management == "Unmanaged":
                conditions.append(
                    Condition(
                        "StorageExists",
                        False,
                        "S3 Bucket Missing",
                        f"S3 bucket {bucket} does not exist and storage is Unmanaged",
                    )
                )
                return management, conditions
            else:
                await _create(s3, bucket, spec.get("region") or "us-east-1")
                management = "Managed"
                conditions.append(
                    Condition(
                        "StorageExists",
                        True,
                        "Creation Successful",
                        f"S3 bucket {bucket} successfully created",
                    )
                )
            if management == "Managed":
                conditions += await _configure(s3, bucket, spec)
    except _errors() as exc:
        raise StorageError(f"S3 bucket {bucket}: {exc}") from None
    return management, conditions


async def _create(s3: S3Client, bucket: str, region: str) -> None:
    extra: dict[str, Any] = {}
    if region != "us-east-1":
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        await s3.create_bucket(Bucket=bucket, **extra)
    except Exception as exc:
        # Ours already: reused, as OpenShift does.
        if not _is_client_error(exc) or _code(exc) != "BucketAlreadyOwnedByYou":
            raise


async def _configure(s3: S3Client, bucket: str, spec: dict[str, Any]) -> list[Condition]:
    await s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    await s3.put_bucket_tagging(
        Bucket=bucket,
        Tagging={
            "TagSet": [
                {"Key": f"kubernetes.io/cluster/{INFRA_NAME}", "Value": "owned"},
                {"Key": "Name", "Value": f"{INFRA_NAME}-image-registry"},
            ]
        },
    )
    key_id = spec.get("keyID") or ""
    rule: ServerSideEncryptionByDefaultTypeDef = (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_id}
        if key_id
        else {"SSEAlgorithm": "AES256"}
    )
    await s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": rule, "BucketKeyEnabled": True}]
        },
    )
    await s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": LIFECYCLE_RULE,
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
    how = f"KMS encryption with key {key_id}" if key_id else "AES256 encryption"
    return [
        Condition(
            "StoragePublicAccessBlocked",
            True,
            "Public Access Block Successful",
            "Public access to the S3 bucket and its contents have been successfully blocked.",
        ),
        Condition(
            "StorageTagged",
            True,
            "Tagging Successful",
            "UserTags were successfully applied to the S3 bucket",
        ),
        Condition(
            "StorageEncrypted",
            True,
            "Encryption Successful",
            f"Default {how} was successfully enabled on the S3 bucket",
        ),
        Condition(
            "StorageIncompleteUploadCleanupEnabled",
            True,
            "Enable Cluster Lifecycle Policy",
            "Default cleanup of incomplete multipart uploads after one (1) day was successfully "
            "enabled",
        ),
    ]


async def remove(spec: dict[str, Any]) -> None:
    """Empty the bucket of `spec` and delete it (managementState Removed, storage Managed)."""
    bucket = spec["bucket"]
    try:
        async with client(spec) as s3:
            if not await _exists(s3, bucket):
                return
            paginator = s3.get_paginator("list_object_versions")
            async for page in paginator.paginate(Bucket=bucket):
                doomed = [
                    {"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                ]
                if doomed:
                    await s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})  # type: ignore[typeddict-item]
            uploads = await s3.list_multipart_uploads(Bucket=bucket)
            for upload in uploads.get("Uploads", []):
                await s3.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
            await s3.delete_bucket(Bucket=bucket)
    except _errors() as exc:
        raise StorageError(f"S3 bucket {bucket}: {exc}") from None
