"""GET, HEAD and DELETE of blobs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETag
from aiohttp.web_request import BaseRequest

from .access import Action
from .context import authorized_repository, existing_repository_id, parse_digest, registry_of
from .errors import RegistryError
from .sendfile import send_file

# Larger bodies are sent from worker threads (wharf.registry.sendfile); smaller ones take one
# sendfile call on the event loop, cheaper than a hop to a thread.
THREADED_SENDFILE_BYTES = 1024 * 1024


class BlobFileResponse(web.FileResponse):
    """sendfile from disk with the digest as ETag (blobs are immutable, so it never changes)."""

    def __init__(self, path: Path, digest: str) -> None:
        super().__init__(path, headers={"Docker-Content-Digest": digest})
        self.content_type = "application/octet-stream"
        self._digest_etag = digest

    @property
    def etag(self) -> ETag | None:
        return super().etag

    @etag.setter
    def etag(self, _value: object) -> None:
        web.StreamResponse.etag.fset(self, self._digest_etag)  # type: ignore[attr-defined]

    async def _sendfile(
        self, request: BaseRequest, fobj: IO[Any], offset: int, count: int
    ) -> AbstractStreamWriter:
        transport = request.transport
        if (
            count < THREADED_SENDFILE_BYTES
            or transport is None
            # Over TLS the bytes must pass through the TLS layer: aiohttp reads and writes
            # them there, as sendfile cannot.
            or transport.get_extra_info("sslcontext") is not None
        ):
            return await super()._sendfile(request, fobj, offset, count)
        writer = await web.StreamResponse.prepare(self, request)
        assert writer is not None
        if transport.get_write_buffer_size():
            # The headers are still queued: only asyncio's own sendfile waits for them.
            await asyncio.get_running_loop().sendfile(transport, fobj, offset, count)
        else:
            reading = transport.is_reading()
            transport.pause_reading()
            try:
                socket = transport.get_extra_info("socket")
                await send_file(socket.fileno(), fobj.fileno(), offset, count)
            finally:
                if reading:
                    transport.resume_reading()
        await web.StreamResponse.write_eof(self)
        return writer

    def _etag_match(  # type: ignore[override]
        self, _etag_value: str, etags: tuple[ETag, ...], *, weak: bool
    ) -> bool:
        # aiohttp checks If-Match and If-None-Match against its own mtime-size tag; the tag
        # clients hold is the digest, so compare with that.
        return web.FileResponse._etag_match(self._digest_etag, etags, weak=weak)


async def get_blob(request: web.Request) -> web.StreamResponse:
    name = await authorized_repository(request, Action.PULL)
    digest = str(parse_digest(request.match_info["digest"]))
    registry = registry_of(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    size = await registry.metadata.linked_blob_size(repository_id, digest)
    path = registry.store.local_path(digest)
    if size is None or path is None:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return BlobFileResponse(path, digest)


async def delete_blob(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.DELETE)
    digest = str(parse_digest(request.match_info["digest"]))
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    if not await registry_of(request).metadata.unlink_blob(repository_id, digest):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
