"""What the registry asks of a place that keeps blob bytes."""

from __future__ import annotations

from collections.abc import AsyncIterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class PartialWrite(Exception):
    """The request body ended early; `written` bytes of it are stored and hashed."""

    def __init__(self, written: int, cause: BaseException) -> None:
        super().__init__(f"body ended after {written} bytes: {cause}")
        self.written = written


class UploadBusy(Exception):
    """Another request, in this process or another, holds the upload."""


class UploadGone(Exception):
    """The upload is not, or no longer, in the store."""


class BlobStore(Protocol):
    async def start_upload(self, upload_id: str) -> None:
        """Prepare an empty upload."""

    def hold(self, upload_id: str) -> AbstractAsyncContextManager[None]:
        """Keep every other request, in any process, off the upload until the block ends.

        Raises UploadBusy at once when another request holds it, and UploadGone when the
        upload is not there.
        """

    async def append(
        self, upload_id: str, offset: int, body: AsyncIterable[bytes], hasher: Any
    ) -> int:
        """Store `body` at `offset` of the upload, feeding `hasher`; return the bytes written.

        Raises PartialWrite when the body breaks off, after storing what arrived.
        """

    async def rehash(self, upload_id: str, size: int, hasher: Any) -> None:
        """Feed the first `size` stored bytes of the upload to `hasher`."""

    async def commit(self, upload_id: str, digest: str, size: int) -> None:
        """Make the first `size` bytes of the upload durable as the blob `digest` (bytes past
        them belong to no recorded write) and forget the upload."""

    async def idle_uploads(self, idle_since: datetime) -> list[str]:
        """Uploads whose bytes nobody touched since `idle_since` (UTC)."""

    async def discard(self, upload_id: str) -> None:
        """Forget an upload and its bytes."""

    async def stat(self, digest: str) -> int | None:
        """How many bytes of the blob the store holds; None when it holds no such blob."""

    def local_path(self, digest: str) -> Path | None:
        """Where the blob lies on local disk, for sendfile; None when it is not local."""

    async def read(self, digest: str, limit: int) -> bytes | None:
        """The whole blob, when it is stored and no larger than `limit` bytes."""
