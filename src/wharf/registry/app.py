"""The /v2/ application: routes, the error envelope, and the upload sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import structlog
from aiohttp import HttpVersion11, hdrs, web

from ..db.database import DatabaseUnavailable
from ..metrics import METRICS, exposition
from ..oci.names import NAME_PATTERN
from ..storage.base import StorageUnavailable, UploadGone
from . import (
    admin_handlers,
    blob_handlers,
    listing_handlers,
    manifest_handlers,
    upload_handlers,
)
from .collect import Collector
from .context import REGISTRY, Registry, registry_of
from .errors import RegistryError
from .metadata import utcnow

log = structlog.get_logger("wharf.registry")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NAME = "{name:" + NAME_PATTERN + "}"
# Any characters, newlines too (a path may carry them percent-encoded), where "." stops.
_ANY = r"[\s\S]*"


async def base(request: web.Request) -> web.Response:
    await registry_of(request).authorizer.authorize(request, None, ())
    return web.json_response({})


_ENDPOINT = re.compile(
    r"(?P<name>.*?)/(?:manifests|blobs|tags|referrers|signatures)(?:/.*)?", re.DOTALL
)
_VALID_NAME = re.compile(NAME_PATTERN)


async def unmatched(request: web.Request) -> web.Response:
    """Any /v2/ path the routes above did not take: a name outside the grammar, a method the
    endpoint does not have, or no endpoint at all."""
    endpoint = _ENDPOINT.fullmatch(request.match_info["tail"].removeprefix("/"))
    if endpoint is None:
        raise RegistryError("NAME_UNKNOWN", "no such endpoint", detail={"path": request.path[:300]})
    if _VALID_NAME.fullmatch(endpoint["name"]) is None:
        raise RegistryError("NAME_INVALID", detail={"name": endpoint["name"][:300]})
    raise RegistryError("UNSUPPORTED", f"{request.method} is not supported on {request.path[:300]}")


# The spec's code for an error status that aiohttp raised itself (its router, its body limits).
_CODE_OF_STATUS = {
    401: "UNAUTHORIZED",
    403: "DENIED",
    404: "NAME_UNKNOWN",
    413: "SIZE_INVALID",
    416: "SIZE_INVALID",
    429: "TOOMANYREQUESTS",
}
# Where answers are the spec's: the distribution API and OpenShift's extensions to it.
_SPEC_PATHS = ("/v2/", "/extensions/v2/", "/admin/")
_BODY_HEADERS = frozenset({hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH})


def _in_envelope(request: web.BaseRequest, exc: web.HTTPException) -> web.Response:
    """An error aiohttp raised, as the spec's error answer."""
    default = "UNKNOWN" if exc.status >= 500 else "UNSUPPORTED"
    code = _CODE_OF_STATUS.get(exc.status, default)
    message = f"{exc.reason}: {request.method} {request.path[:300]}"
    headers = {k: v for k, v in exc.headers.items() if k not in _BODY_HEADERS}
    return RegistryError(code, message, status=exc.status, headers=headers).response()


# Seconds a client is asked to wait before it retries while storage is unavailable.
RETRY_AFTER = 5


def unavailable(
    what: str = "storage", retry_after: int = RETRY_AFTER, state: str = "unavailable"
) -> RegistryError:
    """The answer while the storage backend or the database cannot be used (`state`:
    "unavailable" or "full"): the client may retry later, and nothing it was told had
    succeeded is lost."""
    return RegistryError(
        "UNAVAILABLE",
        f"{what} is {state}, retry later",
        headers={hdrs.RETRY_AFTER: str(retry_after)},
    )


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RegistryError as exc:
        return exc.response()
    except StorageUnavailable as exc:
        log.warning(f"storage {exc.state}", method=request.method, reason=str(exc))
        return unavailable(state=exc.state).response()
    except DatabaseUnavailable as exc:
        log.warning(f"database {exc.state}", method=request.method, reason=str(exc))
        # The wait the API tells of the same outage.
        retry = DatabaseUnavailable.RETRY_SECONDS
        return unavailable("the database", retry, exc.state).response()
    except UploadGone:
        return RegistryError("BLOB_UPLOAD_UNKNOWN", "the upload's bytes are gone").response()
    except web.HTTPException as exc:
        if exc.status < 400 or not f"{request.path}/".startswith(_SPEC_PATHS):
            raise
        return _in_envelope(request, exc)
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        return RegistryError("UNKNOWN", "internal error").response()


async def expect(request: web.Request) -> web.StreamResponse | None:
    """The Expect header as aiohttp handles it, but with its refusal in the spec's form: aiohttp
    checks the header before any middleware runs, so error_envelope never sees that error."""
    expectation = request.headers.get(hdrs.EXPECT, "")
    if request.version != HttpVersion11:
        return None  # HTTP/1.0 has no Expect
    if expectation.lower() != "100-continue":
        message = f"unknown expectation {expectation[:100]!r}"
        return RegistryError("UNSUPPORTED", message, status=417).response()
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the interim answer is no part of the response
    return None


async def metrics_endpoint(request: web.Request) -> web.Response:
    """OpenShift's metrics extension, in Prometheus' text format."""
    await registry_of(request).authorizer.authorize_metrics(request)
    return exposition(request.app[METRICS])


async def _add_version_header(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    # As OpenShift's registry: clients may use its image-signature extension endpoints.
    response.headers["X-Registry-Supports-Signatures"] = "1"


def add_routes(app: web.Application) -> None:
    r = app.router
    _add(r, "GET", "/v2/", base)
    _add(r, "GET", "/extensions/v2/metrics", metrics_endpoint)
    _add(r, "GET", "/v2/_catalog", listing_handlers.catalog)
    _add_endpoints(r, "[^/]+", first=True)
    # A digest, reference or upload id with a slash in it matches none of the routes above;
    # these take it, tried only after them, to the same handlers, which refuse it as they
    # refuse any malformed value. (Names may contain "blobs" or "manifests" components, so
    # the first routes cannot take every slash without misreading such names.)
    _add_endpoints(r, f"{_ANY}/{_ANY}", first=False)
    # Everything else under /v2 (and /v2 itself) and OpenShift's extensions: answered in the
    # spec's form, even to an Expect that aiohttp's own routes would refuse bare.
    _add(r, "*", f"/v2{{tail:(?:/{_ANY})?}}", unmatched)
    _add(r, "*", f"/extensions/v2/{{tail:{_ANY}}}", unmatched)
    _add(r, "DELETE", f"/admin/blobs/{{digest:{_ANY}}}", admin_handlers.delete_blob)
    _add(r, "*", f"/admin/{{tail:{_ANY}}}", admin_handlers.unmatched)


def _add(r: web.UrlDispatcher, method: str, path: str, handler: Handler) -> None:
    if method == "GET":
        r.add_get(path, handler, expect_handler=expect)  # and HEAD
    else:
        r.add_route(method, path, handler, expect_handler=expect)


def _add_endpoints(r: web.UrlDispatcher, value: str, *, first: bool) -> None:
    """The endpoints whose last segment is `value`. With no slash in it no path matches two of
    these patterns, so they are tried busiest first: the router walks them in this order, a
    regular expression each."""
    # An upload's path is no blob's, whatever comes after "uploads/".
    blob = f"/v2/{_NAME}/blobs/{{digest:(?!uploads/){value}}}"
    _add(r, "GET", blob, blob_handlers.get_blob)
    _add(r, "DELETE", blob, blob_handlers.delete_blob)
    manifest = f"/v2/{_NAME}/manifests/{{reference:{value}}}"
    _add(r, "GET", manifest, manifest_handlers.get_manifest)
    _add(r, "PUT", manifest, manifest_handlers.put_manifest)
    _add(r, "DELETE", manifest, manifest_handlers.delete_manifest)
    upload = f"/v2/{_NAME}/blobs/uploads/{{upload:{value}}}"
    _add(r, "GET", upload, upload_handlers.upload_status)
    _add(r, "PATCH", upload, upload_handlers.upload_chunk)
    _add(r, "PUT", upload, upload_handlers.finish_upload)
    _add(r, "DELETE", upload, upload_handlers.cancel_upload)
    if first:  # these end in fixed words
        _add(r, "POST", f"/v2/{_NAME}/blobs/uploads/", upload_handlers.start_upload)
        _add(r, "GET", f"/v2/{_NAME}/tags/list", listing_handlers.list_tags)
    _add(r, "GET", f"/v2/{_NAME}/referrers/{{digest:{value}}}", listing_handlers.referrers)
    signatures = f"/extensions/v2/{_NAME}/signatures/{{digest:{value}}}"
    _add(r, "GET", signatures, manifest_handlers.get_signatures)


async def remove_abandoned_uploads(app: web.Application) -> None:
    """At start: remove the uploads that no live session owns, and say how many. A process
    killed mid-request leaves its uploads leased for up to a lease's length, and other
    processes sharing the database may hold theirs: uploads leased now are looked at again
    when those leases lapse (a live holder renews its lease, and keeps its upload)."""
    uploads = app[REGISTRY].uploads
    try:
        pending = await uploads.records.latest_lease_end()
        removed = await uploads.remove_abandoned()
        if pending is not None:
            wait = max(0.0, (pending - utcnow()).total_seconds()) + 1
            log.info("uploads leased at start: looking again when the leases lapse", seconds=wait)
            await asyncio.sleep(wait)
            removed += await uploads.remove_abandoned()
    except StorageUnavailable as exc:
        # The idle sweep removes them later.
        log.warning("removing abandoned uploads postponed: storage unavailable", reason=str(exc))
    except Exception:
        log.exception("removing abandoned uploads failed")
    else:
        log.info("removed abandoned uploads", count=removed)


def sweeper(interval: float, idle: timedelta) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that removes abandoned uploads once at start, and then, every
    `interval` seconds, upload sessions idle for longer than `idle`."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                try:
                    removed = await app[REGISTRY].uploads.sweep(utcnow() - idle)
                except StorageUnavailable as exc:
                    # Tried again at the next round: what was not removed is still stale then.
                    log.warning("sweep postponed: storage unavailable", reason=str(exc))
                except Exception:
                    log.exception("sweep failed")
                else:
                    if removed:
                        log.info("removed stale uploads", count=removed)
                await asyncio.sleep(interval)

        tasks = [asyncio.create_task(remove_abandoned_uploads(app)), asyncio.create_task(loop())]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


def collector(
    interval: float, delay: timedelta
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs the online GC every `interval` seconds (wharf.registry.
    collect). Every process may run it: its deletions are claims that only one process wins."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        registry = app[REGISTRY]
        gc = Collector(registry.metadata.db, registry.store)

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    done = await gc.run(delay)
                except StorageUnavailable as exc:
                    log.warning(
                        "garbage collection postponed: storage unavailable", reason=str(exc)
                    )
                except Exception:
                    log.exception("garbage collection failed")
                else:
                    if done.blobs or done.strays or done.manifests:
                        log.info(
                            "garbage collected",
                            blobs=done.blobs,
                            bytes=done.bytes,
                            strays=done.strays,
                            manifests=done.manifests,
                        )

        task = asyncio.create_task(loop()) if interval > 0 else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return run


def install(app: web.Application, registry: Registry) -> None:
    app[REGISTRY] = registry
    app.middlewares.append(error_envelope)
    app.on_response_prepare.append(_add_version_header)
    add_routes(app)
