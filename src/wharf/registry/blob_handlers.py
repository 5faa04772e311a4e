"""GET, HEAD and DELETE of blobs."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest

from ..storage.base import BlobContent, FileSlice, StorageUnavailable
from .access import AccessDenied, Action
from .context import (
    authorized_repository,
    existing_repository_id,
    intact_blob_size,
    parse_digest,
    registry_of,
)
from .controls import CONTROLS
from .errors import RegistryError
from .pullthrough import Pull, PullThrough
from .ranges import Selection, select
from .sendfile import send_file

log = structlog.get_logger("wharf.registry")

# Larger bodies are sent from worker threads (wharf.registry.sendfile); smaller ones take one
# sendfile call on the event loop, cheaper than a hop to a thread.
THREADED_SENDFILE_BYTES = 1024 * 1024


class BlobResponse(web.StreamResponse):
    """A blob's bytes, or the slice a Range chose, with the digest as ETag: by sendfile from a
    local file, else streamed as the backend reads them.

    The content is opened by the handler, so that nothing can fail between the answer's status
    and its bytes but the connection and the backend itself.
    """

    def __init__(
        self, digest: str, size: int, selection: Selection, content: BlobContent | None
    ) -> None:
        super().__init__(status=selection.status, headers={"Docker-Content-Digest": digest})
        self.etag = digest
        self._content = content
        if selection.status == 304:
            return
        self.content_type = "application/octet-stream"
        self.content_length = selection.count
        self.headers[hdrs.ACCEPT_RANGES] = "bytes"
        if selection.status == 206:
            end = selection.offset + selection.count - 1
            self.headers[hdrs.CONTENT_RANGE] = f"bytes {selection.offset}-{end}/{size}"

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        content, self._content = self._content, None
        try:
            writer = await super().prepare(request)
            if isinstance(content, FileSlice):
                await self._send_file(request, content)
            elif content is not None:
                await self._stream(request, content)
            return writer
        finally:
            if content is not None:
                await content.close()

    async def _stream(self, request: BaseRequest, content: BlobContent) -> None:
        """Send the bytes as the backend reads them. If the backend fails part way, the status
        is long sent: the connection is cut, and the client sees a short body and retries."""
        try:
            async for chunk in content.chunks():
                await self.write(chunk)
        except StorageUnavailable as exc:
            log.warning("blob stream cut", reason=str(exc))
            if request.transport is not None:
                request.transport.close()
            return
        await super().write_eof()

    async def _send_file(self, request: BaseRequest, content: FileSlice) -> None:
        file, offset, count = content.file, content.offset, content.count
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
    try:
        name = await authorized_repository(request, Action.PULL)
    except AccessDenied:
        # An answer to HEAD has no body, and clients show any 401 there as "authentication
        # required": a push into a project the caller may not read would stop at its first
        # blob check with that. A caller who logged in learns nothing from "unknown" that a
        # refusal would tell, and the push goes on to the upload, whose refusal says why.
        if request.method == hdrs.METH_HEAD:
            raise RegistryError("BLOB_UNKNOWN") from None
        raise
    digest = str(parse_digest(request.match_info["digest"]))
    registry = registry_of(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    size = await intact_blob_size(registry, repository_id, digest)
    pull = None
    if size is None and registry.pullthrough is not None:
        pull = await registry.pullthrough.find(name, repository_id, digest)
        size = pull.size if pull is not None else None
    if size is None:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    selection = select(request, digest, size)
    if pull is not None and not pull.local and registry.pullthrough is not None:
        response = await _pulled_through(request, registry.pullthrough, pull, selection)
        if response is not None:
            return response
    if request.method != hdrs.METH_GET or not selection.count:
        return BlobResponse(digest, size, selection, None)
    # The client fetches the bytes, and any Range of them, from the backend itself, unless
    # the operator turned redirects off (disableRedirect).
    controls = request.app.get(CONTROLS)
    redirect = controls is None or controls.redirect
    url = await registry.store.redirect_url(digest) if redirect else None
    if url is not None:
        return web.Response(
            status=307, headers={hdrs.LOCATION: url, "Docker-Content-Digest": digest}
        )
    content = await registry.store.open(digest, selection.offset, selection.count)
    if content is None:  # removed since its size was checked
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return BlobResponse(digest, size, selection, content)


async def _pulled_through(
    request: web.Request, pullthrough: PullThrough, pull: Pull, selection: Selection
) -> web.StreamResponse | None:
    """A blob of an imported image that is fetched from upstream now: the whole of it is
    streamed as it arrives; a HEAD (or a 304) needs only the upstream to have it. None when
    it is stored locally by the time this returns (a range, another request's fetch)."""
    if request.method != hdrs.METH_GET or not selection.count:
        await pullthrough.check(pull)
        return BlobResponse(pull.digest, pull.size, selection, None)
    if selection.status == 200:
        content = await pullthrough.stream(pull)
        if content is not None:
            return BlobResponse(pull.digest, pull.size, selection, content)
        return None
    await pullthrough.wait(pull)
    return None


async def delete_blob(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.DELETE)
    digest = str(parse_digest(request.match_info["digest"]))
    repository_id = await existing_repository_id(request, name, "BLOB_UNKNOWN")
    if not await registry_of(request).metadata.unlink_blob(repository_id, digest):
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
    return web.Response(status=202, headers={"Docker-Content-Digest": digest})
