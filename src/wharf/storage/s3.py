"""Blobs in an S3 bucket (or any S3-compatible store), on aiobotocore.

Keys, under the configured root: `blobs/<algorithm>/<first two>/<encoded>` for finished blobs
(content-addressed), `uploads/<id>/data` for the multipart upload of an upload session, and
`uploads/<id>/tail-<random>` for its last bytes that do not fill a part yet.

An upload is an S3 multipart upload whose parts are sent as the body arrives, each exactly one
part size (the last one may be smaller, which S3 allows only for the last). What is left over
at the end of a request is kept as the tail object; the next request reads it back (at most
one part size) and carries on. The state in the uploads row names the multipart upload, its
parts' ETags and the tail. The commit completes the multipart upload and copies it to the
blob's key inside S3; the bytes never come back through the registry.

A process without the running hash of an upload must read the bytes, but S3 cannot read the
parts of an unfinished multipart upload: `resume` completes it, reads it, and opens a new one
whose first parts are server-side copies of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from ..settings import S3Settings
from .base import PartialWrite, StorageUnavailable, UploadGone, Written
from .s3_calls import FAILURES, S3Content, gone_as, guarded, is_missing, unavailable
from .s3_uploads import PartBuffers, PartWriter, UploadState

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CopySourceTypeDef, ObjectIdentifierTypeDef

MiB = 1024 * 1024
# S3's bounds: a part (or one copy request) at most 5 GiB.
MAX_COPY = 5 * 1024 * MiB
# What a presigned URL is good for: long enough for a slow client to start every download.
REDIRECT_SECONDS = 20 * 60


class S3BlobStore:
    checks_sizes = False
    # The most one copy request moves (S3's limit); larger objects are copied in parts.
    copy_limit = MAX_COPY

    def __init__(self, settings: S3Settings) -> None:
        if not settings.bucket:
            raise ValueError("the s3 storage needs a bucket")
        self.settings = settings
        self.bucket = settings.bucket
        self.part_size = settings.chunk_size_mib * MiB
        self.buffers = PartBuffers(self.part_size)
        root = settings.root_directory
        self._prefix = f"{root}/" if root else ""
        self._client: S3Client | None = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._opening = asyncio.Lock()

    # The client

    async def client(self) -> S3Client:
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._client is None:
                stack = contextlib.AsyncExitStack()
                config = AioConfig(
                    s3={
                        "addressing_style": (
                            "virtual" if self.settings.virtual_hosted_style else "path"
                        )
                    },
                    signature_version="s3v4",
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=self.settings.request_timeout,
                    read_timeout=self.settings.request_timeout,
                    max_pool_connections=64,
                    # Checksums of every body in Python are for stores that demand them;
                    # the registry verifies digests itself.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        region_name=self.settings.region,
                        endpoint_url=self.settings.region_endpoint,
                        config=config,
                    )
                )
                self._exit = stack
        assert self._client is not None
        return self._client

    async def close(self) -> None:
        if self._exit is not None:
            await self._exit.aclose()
        self._client = self._exit = None

    def _blob_key(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        return f"{self._prefix}blobs/{algorithm}/{encoded[:2]}/{encoded}"

    def upload_prefix(self, upload_id: str) -> str:
        return f"{self._prefix}uploads/{upload_id}/"

    def encryption(self) -> dict[str, Any]:
        if not self.settings.encrypt:
            return {}
        if self.settings.key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.key_id}
        return {"ServerSideEncryption": "AES256"}

    # Reading

    async def stat(self, digest: str) -> int | None:
        s3 = await self.client()
        try:
            found = await guarded(s3.head_object(Bucket=self.bucket, Key=self._blob_key(digest)))
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return int(found["ContentLength"])

    async def read(self, digest: str, limit: int) -> bytes | None:
        content = await self._get(digest, None)
        if content is None:
            return None
        data = bytearray()
        try:
            async for chunk in content.chunks():
                data += chunk
                if len(data) > limit:
                    return None
        finally:
            await content.close()
        return bytes(data)

    async def open(self, digest: str, offset: int, count: int) -> S3Content | None:
        if count == 0:  # S3 has no empty range: the whole (empty) object
            return await self._get(digest, None)
        return await self._get(digest, f"bytes={offset}-{offset + count - 1}")

    async def _get(self, digest: str, byte_range: str | None) -> S3Content | None:
        s3 = await self.client()
        ranged: dict[str, Any] = {} if byte_range is None else {"Range": byte_range}
        try:
            found = await guarded(
                s3.get_object(Bucket=self.bucket, Key=self._blob_key(digest), **ranged)
            )
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise
        return S3Content(found["Body"])

    async def redirect_url(self, digest: str) -> str | None:
        if self.settings.disable_redirect:
            return None
        s3 = await self.client()
        return await s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=REDIRECT_SECONDS,
        )

    async def delete(self, digest: str) -> bool:
        if await self.stat(digest) is None:
            return False
        s3 = await self.client()
        await guarded(s3.delete_object(Bucket=self.bucket, Key=self._blob_key(digest)))
        return True

    async def ready(self) -> bool:
        try:
            s3 = await self.client()
            # Shorter than botocore's retries: readiness is a question of now.
            await asyncio.wait_for(s3.head_bucket(Bucket=self.bucket), timeout=3)
        except (ClientError, *FAILURES):
            return False
        return True

    # Uploads

    async def begin(self, upload_id: str) -> str:
        return ""  # nothing in S3 until bytes arrive

    async def append(
        self, upload_id: str, state: str, offset: int, body: AsyncIterable[bytes], hasher: Any
    ) -> Written:
        with gone_as(upload_id):
            return await self._append(upload_id, state, body, hasher)

    async def _append(
        self, upload_id: str, state: str, body: AsyncIterable[bytes], hasher: Any
    ) -> Written:
        current = UploadState.parse(state)
        writer = PartWriter(self, upload_id, current, hasher)
        await writer.start()
        try:
            async for chunk in body:
                await writer.add(chunk)
        except (StorageUnavailable, asyncio.CancelledError):
            await writer.drop()
            raise
        except Exception as exc:
            # Whatever arrived before the break is kept, so the client may resume.
            return_state = await writer.finish()
            raise PartialWrite(writer.received, return_state, exc) from exc
        return Written(writer.received, await writer.finish())

    async def resume(self, upload_id: str, state: str, size: int, hasher: Any) -> str:
        with gone_as(upload_id):
            return await self._resume(upload_id, state, hasher)

    async def _resume(self, upload_id: str, state: str, hasher: Any) -> str:
        current = UploadState.parse(state)
        if current.parts:
            data = await self._complete(upload_id, current)
            await self._hash_object(data, hasher)
            current = await self._reopen(upload_id, data, current.parts_size, current)
        if current.tail is not None:
            await self._hash_object(current.tail, hasher)
        return current.dump()

    async def _hash_object(self, key: str, hasher: Any) -> None:
        s3 = await self.client()
        found = await guarded(s3.get_object(Bucket=self.bucket, Key=key))
        content = S3Content(found["Body"])
        try:
            async for chunk in content.chunks():
                await asyncio.to_thread(hasher.update, chunk)
        finally:
            await content.close()

    async def _complete(self, upload_id: str, current: UploadState) -> str:
        """Complete the multipart upload of `current`; return its key."""
        assert current.multipart is not None
        s3 = await self.client()
        key = self.upload_prefix(upload_id) + "data"
        try:
            await guarded(
                s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=current.multipart,
                    MultipartUpload={
                        "Parts": [
                            {"ETag": etag, "PartNumber": number}
                            for number, (etag, _) in enumerate(current.parts, start=1)
                        ]
                    },
                )
            )
        except (ClientError, StorageUnavailable):
            # Completed already, by an attempt that failed later (S3 went away before the
            # new state was recorded): the object is there if it has every part's bytes.
            if await self._size_of(key) == current.parts_size:
                return key
            await self.check_multipart(upload_id, key, current.multipart)
            raise
        return key

    async def check_multipart(self, upload_id: str, key: str, multipart: str) -> None:
        """Raise UploadGone if the multipart upload was aborted. Asked after a call on it
        failed: some S3-compatible stores (moto among them) answer 500, not NoSuchUpload,
        to a part sent to an aborted upload."""
        s3 = await self.client()
        try:
            await guarded(
                s3.list_parts(Bucket=self.bucket, Key=key, UploadId=multipart, MaxParts=1)
            )
        except ClientError as exc:
            raise UploadGone(upload_id) from exc

    async def _reopen(
        self, upload_id: str, source: str, size: int, current: UploadState
    ) -> UploadState:
        """A new multipart upload whose parts are copies of the object `source`."""
        s3 = await self.client()
        key = self.upload_prefix(upload_id) + "data"
        created = await guarded(
            s3.create_multipart_upload(Bucket=self.bucket, Key=key, **self.encryption())
        )
        multipart = created["UploadId"]
        parts = await self.copy_parts(key, multipart, source, size)
        return UploadState(multipart, parts, current.tail, current.tail_size, current.stale)

    async def copy_parts(
        self, key: str, multipart: str, source: str, size: int, first: int = 1
    ) -> list[tuple[str, int]]:
        """Copy `source` into parts `first`... of the multipart upload, 5 GiB at most each."""
        s3 = await self.client()
        parts = []
        for number, start in enumerate(range(0, size, self.copy_limit), start=first):
            end = min(start + self.copy_limit, size) - 1
            copied = await guarded(
                s3.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=multipart,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source},
                    CopySourceRange=f"bytes={start}-{end}",
                )
            )
            parts.append((copied["CopyPartResult"]["ETag"], end - start + 1))
        return parts

    async def commit(self, upload_id: str, state: str, size: int, digest: str) -> None:
        with gone_as(upload_id):
            await self._commit(upload_id, UploadState.parse(state), size, digest)

    async def _commit(self, upload_id: str, current: UploadState, size: int, digest: str) -> None:
        s3 = await self.client()
        target = self._blob_key(digest)
        data = self.upload_prefix(upload_id) + "data"
        if not current.parts:
            if current.tail is None:
                await guarded(
                    s3.put_object(Bucket=self.bucket, Key=target, Body=b"", **self.encryption())
                )
            else:
                await self._copy(current.tail, target, current.tail_size)
        else:
            # A commit tried again (S3 went away after it completed the multipart upload)
            # finds the upload's object whole already.
            if await self._size_of(data) != size:
                if current.tail is not None:
                    assert current.multipart is not None
                    current.parts += await self.copy_parts(
                        data,
                        current.multipart,
                        current.tail,
                        current.tail_size,
                        first=len(current.parts) + 1,
                    )
                await self._complete(upload_id, current)
            await self._copy(data, target, size)
        # What the state names; anything else under the upload's prefix (bytes of a write
        # that was never recorded) is the sweeper's, once idle.
        known = [key for key in (current.tail, *current.stale) if key is not None]
        if current.parts:
            known.append(data)
        if known:
            await guarded(
                s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in known], "Quiet": True},
                )
            )

    async def _size_of(self, key: str) -> int | None:
        s3 = await self.client()
        try:
            found = await guarded(s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError:
            return None
        return int(found["ContentLength"])

    async def _copy(self, source: str, target: str, size: int) -> None:
        """Copy an object inside S3: one request up to 5 GiB, a multipart copy beyond."""
        s3 = await self.client()
        copy_source: CopySourceTypeDef = {"Bucket": self.bucket, "Key": source}
        if size <= self.copy_limit:
            await guarded(
                s3.copy_object(
                    Bucket=self.bucket, Key=target, CopySource=copy_source, **self.encryption()
                )
            )
            return
        created = await guarded(
            s3.create_multipart_upload(Bucket=self.bucket, Key=target, **self.encryption())
        )
        multipart = created["UploadId"]
        parts = await self.copy_parts(target, multipart, source, size)
        await guarded(
            s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=multipart,
                MultipartUpload={
                    "Parts": [
                        {"ETag": etag, "PartNumber": number}
                        for number, (etag, _) in enumerate(parts, start=1)
                    ]
                },
            )
        )

    async def abort(self, upload_id: str, state: str | None) -> None:
        await self._remove_upload(upload_id, None if state is None else UploadState.parse(state))

    async def _remove_upload(self, upload_id: str, current: UploadState | None) -> None:
        """Abort the upload's multipart uploads (every one under its prefix, when `current`
        does not name it) and delete its objects."""
        s3 = await self.client()
        prefix = self.upload_prefix(upload_id)
        multiparts: list[str] = []
        if current is not None and current.multipart is not None:
            multiparts.append(current.multipart)
        else:
            listed = await guarded(s3.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix))
            multiparts += [upload["UploadId"] for upload in listed.get("Uploads", [])]
        for multipart in multiparts:
            with contextlib.suppress(ClientError):  # already completed or aborted
                await guarded(
                    s3.abort_multipart_upload(
                        Bucket=self.bucket, Key=prefix + "data", UploadId=multipart
                    )
                )
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        try:
            async for page in pages:  # at most 1000 keys a page, as many as one delete takes
                keys: list[ObjectIdentifierTypeDef] = [
                    {"Key": item["Key"]} for item in page.get("Contents", [])
                ]
                if keys:
                    await guarded(
                        s3.delete_objects(
                            Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                        )
                    )
        except (ClientError, *FAILURES) as exc:
            raise unavailable(exc) from exc

    async def leftovers(self, idle_since: datetime) -> list[str]:
        try:
            return await self._leftovers(idle_since)
        except (ClientError, *FAILURES) as exc:
            raise unavailable(exc) from exc

    async def stored_before(self, moment: datetime) -> list[str]:
        try:
            return await self._stored_before(moment)
        except (ClientError, *FAILURES) as exc:
            raise unavailable(exc) from exc

    async def _stored_before(self, moment: datetime) -> list[str]:
        s3 = await self.client()
        prefix = f"{self._prefix}blobs/"
        limit = moment.replace(tzinfo=UTC)
        found = []
        objects = s3.get_paginator("list_objects_v2")
        async for listing in objects.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in listing.get("Contents", []):
                parts = item["Key"][len(prefix) :].split("/")
                if len(parts) == 3 and item["LastModified"] < limit:
                    found.append(f"{parts[0]}:{parts[2]}")
        return found

    async def _leftovers(self, idle_since: datetime) -> list[str]:
        s3 = await self.client()
        prefix = f"{self._prefix}uploads/"
        limit = idle_since.replace(tzinfo=UTC)
        found: set[str] = set()

        def upload_id(key: str) -> str:
            return key[len(prefix) :].split("/", 1)[0]

        paginator = s3.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < limit:
                    found.add(upload_id(upload["Key"]))
        objects = s3.get_paginator("list_objects_v2")
        async for listing in objects.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in listing.get("Contents", []):
                if item["LastModified"] < limit:
                    found.add(upload_id(item["Key"]))
        return sorted(found)
