"""The /v2/ application: routes, the error envelope, and the upload sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import structlog
from aiohttp import web

from ..oci.names import NAME_PATTERN
from . import blob_handlers, listing_handlers, manifest_handlers, upload_handlers
from .context import REGISTRY, Registry, registry_of
from .errors import RegistryError
from .metadata import utcnow

log = structlog.get_logger("wharf.registry")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NAME = "{name:" + NAME_PATTERN + "}"


async def base(request: web.Request) -> web.Response:
    await registry_of(request).authorizer.authorize(request, None, ())
    return web.json_response({})


_ENDPOINT = re.compile(r"(?P<name>.*?)/(?:manifests|blobs|tags|referrers)(?:/.*)?")
_VALID_NAME = re.compile(NAME_PATTERN)


async def unmatched(request: web.Request) -> web.Response:
    """Any /v2/ path the routes above did not take: a name outside the grammar, a method the
    endpoint does not have, or no endpoint at all."""
    endpoint = _ENDPOINT.fullmatch(request.match_info["tail"])
    if endpoint is None:
        raise RegistryError("NAME_UNKNOWN", "no such endpoint", detail={"path": request.path[:300]})
    if _VALID_NAME.fullmatch(endpoint["name"]) is None:
        raise RegistryError("NAME_INVALID", detail={"name": endpoint["name"][:300]})
    raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on {request.path[:300]}")


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as exc:
        return exc.response()
    except web.HTTPMethodNotAllowed:
        return RegistryError("UNSUPPORTED", f"{request.method} is not allowed here").response()
    except web.HTTPException:
        raise
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        return RegistryError("UNKNOWN", "internal error").response()


async def _add_version_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    # As OpenShift's registry: clients may use its image-signature extension endpoints.
    response.headers["X-Registry-Supports-Signatures"] = "1"


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v2/", base)
    r.add_get("/v2/_catalog", listing_handlers.catalog)
    _add_endpoints(r, "[^/]+", first=True)
    # A digest, reference or upload id with a slash in it matches none of the routes above;
    # these take it, tried only after them, to the same handlers, which refuse it as they
    # refuse any malformed value. (Names may contain "blobs" or "manifests" components, so
    # the first routes cannot take every slash without misreading such names.)
    _add_endpoints(r, ".*/.*", first=False)
    r.add_route("*", "/v2/{tail:.*}", unmatched)


def _add_endpoints(r: web.UrlDispatcher, value: str, *, first: bool) -> None:
    """The endpoints whose last segment is `value`. With no slash in it no path matches two of
    these patterns, so they are tried busiest first: the router walks them in this order, a
    regular expression each."""
    # An upload's path is no blob's, whatever comes after "uploads/".
    digest = f"{{digest:(?!uploads/){value}}}"
    r.add_get(f"/v2/{_NAME}/blobs/{digest}", blob_handlers.get_blob)
    r.add_delete(f"/v2/{_NAME}/blobs/{digest}", blob_handlers.delete_blob)
    r.add_get(f"/v2/{_NAME}/manifests/{{reference:{value}}}", manifest_handlers.get_manifest)
    r.add_put(f"/v2/{_NAME}/manifests/{{reference:{value}}}", manifest_handlers.put_manifest)
    r.add_delete(f"/v2/{_NAME}/manifests/{{reference:{value}}}", manifest_handlers.delete_manifest)
    upload = f"/v2/{_NAME}/blobs/uploads/{{upload:{value}}}"
    r.add_get(upload, upload_handlers.upload_status)
    r.add_patch(upload, upload_handlers.upload_chunk)
    r.add_put(upload, upload_handlers.finish_upload)
    r.add_delete(upload, upload_handlers.cancel_upload)
    if first:  # these end in fixed words
        r.add_post(f"/v2/{_NAME}/blobs/uploads/", upload_handlers.start_upload)
        r.add_get(f"/v2/{_NAME}/tags/list", listing_handlers.list_tags)
    r.add_get(f"/v2/{_NAME}/referrers/{{digest:{value}}}", listing_handlers.referrers)
    r.add_get(
        f"/extensions/v2/{_NAME}/signatures/{{digest:{value}}}", manifest_handlers.get_signatures
    )


def sweeper(interval: float, idle: timedelta) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that removes upload sessions idle for longer than `idle`."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                removed = await app[REGISTRY].uploads.sweep(utcnow() - idle)
                if removed:
                    log.info("removed stale uploads", count=removed)
                await asyncio.sleep(interval)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


def install(app: web.Application, registry: Registry) -> None:
    app[REGISTRY] = registry
    app.middlewares.append(error_envelope)
    app.on_response_prepare.append(_add_version_header)
    add_routes(app)
