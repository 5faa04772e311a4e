"""The blob upload protocol: open, mount, stream, chunk, finish, inspect and cancel."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from ..oci.digest import Digest, is_digest
from ..oci.names import is_valid_name
from .access import Action
from .context import (
    authorized_repository,
    existing_repository_id,
    intact_blob_size,
    parse_digest,
    registry_of,
)
from .errors import RegistryError
from .uploads import range_header

# Positions fit int64 (19 digits): longer ones are malformed, and never reach int(), which
# refuses strings of thousands of digits.
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]+|\*))?")


def _session_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": range_header(size),
        "Docker-Upload-UUID": upload_id,
    }


def _blob_created(name: str, digest: str) -> web.Response:
    return web.Response(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest},
    )


def _upload_id(request: web.Request) -> str:
    text = request.match_info["upload"]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"upload": text[:100]}) from None


def _content_range(request: web.Request) -> tuple[int, int] | None:
    header = request.headers.get("Content-Range")
    if header is None:
        return None
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID", f"malformed Content-Range {header!r}", status=416
        )
    start, end = int(match[1]), int(match[2])
    if end < start:
        raise RegistryError("BLOB_UPLOAD_INVALID", f"empty Content-Range {header!r}", status=416)
    length = end - start + 1
    if request.content_length is not None and request.content_length != length:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            f"Content-Range {header!r} does not match Content-Length {request.content_length}",
            status=416,
        )
    return start, length


async def start_upload(request: web.Request) -> web.StreamResponse:
    query = request.query
    name = await authorized_repository(request, Action.PULL, Action.PUSH)
    if "mount" in query:
        mounted = await _try_mount(request, name, query["mount"], query.get("from"))
        if mounted is not None:
            return mounted
    registry = registry_of(request)
    if "digest" in query:
        digest = parse_digest(query["digest"])
        limit = await registry.limits.limit(name)
        await registry.uploads.monolithic(name, digest, request.content.iter_any(), limit)
        return _blob_created(name, str(digest))
    repository_id = await registry.metadata.ensure_repository(name)
    upload_id = await registry.uploads.open(repository_id)
    return web.Response(status=202, headers=_session_headers(name, upload_id, 0))


async def _try_mount(
    request: web.Request, name: str, mount: str, source: str | None
) -> web.Response | None:
    """Link a blob from `source`: None when it cannot, and the caller opens an upload instead."""
    if source is None or not is_valid_name(source) or not is_digest(mount):
        return None
    digest = str(Digest.parse(mount))
    registry = registry_of(request)
    if not await registry.authorizer.may_pull(request, source):
        return None
    source_id = await registry.metadata.repository_id(source)
    if source_id is None:
        return None
    # A blob whose file is damaged is not mounted: the client uploads it instead, which
    # repairs the file.
    size = await intact_blob_size(registry, source_id, digest)
    if size is None:
        return None
    repository_id = await registry.metadata.ensure_repository(name)
    if not await registry.metadata.mount_blob(repository_id, digest):
        return None  # collected meanwhile
    return _blob_created(name, digest)


async def upload_status(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL)
    upload_id = _upload_id(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UPLOAD_UNKNOWN")
    size = await registry_of(request).uploads.size(upload_id, repository_id)
    return web.Response(status=204, headers=_session_headers(name, upload_id, size))


async def upload_chunk(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL, Action.PUSH)
    upload_id = _upload_id(request)
    expected = _content_range(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UPLOAD_UNKNOWN")
    size = await registry_of(request).uploads.append(
        upload_id, repository_id, request.content.iter_any(), expected
    )
    return web.Response(status=202, headers=_session_headers(name, upload_id, size))


async def finish_upload(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PULL, Action.PUSH)
    upload_id = _upload_id(request)
    digest = parse_digest(request.query.get("digest"))
    repository_id = await existing_repository_id(request, name, "BLOB_UPLOAD_UNKNOWN")
    body = request.content.iter_any() if request.body_exists else None
    registry = registry_of(request)
    limit = await registry.limits.limit(name)
    await registry.uploads.finish(
        upload_id, repository_id, digest, body, _content_range(request) if body else None, limit
    )
    return _blob_created(name, str(digest))


async def cancel_upload(request: web.Request) -> web.Response:
    name = await authorized_repository(request, Action.PUSH)
    upload_id = _upload_id(request)
    repository_id = await existing_repository_id(request, name, "BLOB_UPLOAD_UNKNOWN")
    uploads = registry_of(request).uploads
    await uploads.size(upload_id, repository_id)  # 404 for a session of another repository
    await uploads.cancel(upload_id)
    return web.Response(status=204)
