"""Calling S3: its failures as the storage seam's exceptions, and object bodies read as they
arrive."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import aiohttp
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from .base import StorageUnavailable, UploadGone

T = TypeVar("T")

_READ_BYTES = 1024 * 1024
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}
# How a call to S3 fails besides an error answer: no connection, a timeout, a broken body,
# no credentials. Other botocore errors (a parameter refused before sending) are bugs.
FAILURES = (
    BotoConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    OSError,
    TimeoutError,
    aiohttp.ClientError,
)


def is_missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return str(error.get("Code")) in MISSING


def unavailable(exc: BaseException) -> StorageUnavailable:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return StorageUnavailable(f"S3 answered {status} {error.get('Code')}")
    return StorageUnavailable(f"S3 unreachable: {type(exc).__name__}")


async def guarded(call: Awaitable[T]) -> T:
    """`call`. A missing key or upload stays a ClientError, for the caller to handle; every
    other failure (S3 away, slow, answering 5xx, throttling, refusing) is StorageUnavailable:
    the registry answers 503 and the client retries after S3 returned (botocore has retried a
    few times already)."""
    try:
        return await call
    except ClientError as exc:
        if is_missing(exc):
            raise
        raise unavailable(exc) from exc
    except FAILURES as exc:
        raise unavailable(exc) from exc


@contextlib.contextmanager
def gone_as(upload_id: str) -> Iterator[None]:
    """A key or multipart upload of the upload missing: it was aborted meanwhile."""
    try:
        yield
    except ClientError as exc:
        if is_missing(exc):
            raise UploadGone(upload_id) from exc
        raise


class S3Content:
    """A GetObject body, read as it arrives."""

    def __init__(self, body: Any) -> None:
        self._body = body

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            data = await guarded(self._body.read(_READ_BYTES))
            if not data:
                return
            yield data

    async def close(self) -> None:
        self._body.close()
