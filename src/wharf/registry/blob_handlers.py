"""GET, HEAD and DELETE of blobs."""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest

from .access import Action
from .context import (
    authorized_repository,
    existing_repository_id,
    intact_blob_size,
    parse_digest,
    registry_of,
)
from .errors import RegistryError
from .ranges import Selection, select
from .sendfile import send_file

# Larger bodies are sent from worker threads (wharf.registry.sendfile); smaller ones take one
# sendfile call on the event loop, cheaper than a hop to a thread.
THREADED_SENDFILE_BYTES = 1024 * 1024


class BlobResponse(web.StreamResponse):
    """A blob's bytes, or the slice a Range chose, sent by sendfile, with the digest as ETag.

    The file is opened by the handler, so that nothing can fail between the answer's status
    and its bytes but the connection itself.
    """

    def __init__(
        self, digest: str, size: int, selection: Selection, file: BinaryIO | None
    ) -> None:
        super().__init__(status=selection.status, headers={"Docker-Content-Digest": digest})
        self.etag = digest
        self._file = file
        self._slice = (selection.offset, selection.count)
        if selection.status == 304:
            return
        self.content_type = "application/octet-stream"
        self.content_length = selection.count
        self.headers[hdrs.ACCEPT_RANGES] = "bytes"
        if selection.status == 206:
            end = selection.offset + selection.count - 1
            self.headers[hdrs.CONTENT_RANGE] = f"bytes {selection.offset}-{end}/{size}"

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        file, self._file = self._file, None
        try:
            writer = await super().prepare(request)
            if file is not None:
                await self._send(request, file)
            return writer
        finally:
            if file is not None:
                file.close()

    async def _send(self, request: BaseRequest, file: BinaryIO) -> None:
        offset, count = self._slice
        transport = request.transport
        if transport is None:
            raise ConnectionResetError("the client went away")
        if (
            count < THREADED_SENDFILE_BYTES
            # Over TLS the bytes must pass through the TLS layer: asyncio reads and writes
            # them there, as sendfile cannot.
            or transport.get_extra_info("sslcontext") is not None
            # The headers are still queued: only asyncio's own sendfile waits for them.
            or transport.get_write_buffer_size()
        ):
            await asyncio.get_running_loop().sendfile(transport, file, offset, count)
        else:
            reading = transport.is_reading()
            transport.pause_reading()
            try:
                socket = transport.get_extra_info("socket")
                await send_file(socket.fileno(), file.fileno(), offset, count)
            finally:
                if reading:
                    transport.resume_reading()
        await super().write_eof()


async def get_blob(request: web.Request) -> web.StreamResponse:
    name = await authorized_repository(request, Action.PULL)
    digest = str(parse_digest(request.match_info["digest"]))
    registry = registry_of(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    size = await intact_blob_size(registry, repository_id, digest)
    path = registry.store.local_path(digest)
    if size is None or path is None:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    selection = select(request, digest, size)
    file = None
    if request.method == hdrs.METH_GET and selection.count:
        # Opening is a few microseconds of metadata work, cheaper here than in a thread.
        try:
            file = path.open("rb", buffering=0)
        except FileNotFoundError:  # removed since its stat above
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from None
    return BlobResponse(digest, size, selection, file)


async def delete_blob(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.DELETE)
    digest = str(parse_digest(request.match_info["digest"]))
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    if not await registry_of(request).metadata.unlink_blob(repository_id, digest):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
