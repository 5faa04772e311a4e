"""The generic REST handlers: one implementation of get, list, create, update, patch, delete,
deletecollection and watch, for every kind."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

import jsonpatch
from aiohttp import web

from ..auth.user import Attributes, UserInfo
from ..db.objects import Event, Expired
from ..kube import merge_patch
from ..metrics import OPERATION, RESOURCE
from .bodies import decode_body, read_body, read_object
from .context import API, Api
from .errors import ApiError, bad_request, conflict, forbidden, status_object
from .kinds import Kind
from .meta import Object, field_selector, label_selector
from .resources import Call, ListQuery, Resource, position
from .shapes import known_fields, unknown_fields, without_nulls, wrong_types
from .tables import table, wants_table


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    kind: Kind
    resource: Resource
    namespace: str
    name: str
    subresource: str


NOT_FOUND = "the server could not find the requested resource"


def path_segments(raw_path: str, skip: int) -> list[str]:
    """The decoded segments of a resource path after its `skip` leading ones. A segment that is
    empty or decodes to a slash or a control character names nothing: 404, never a shorter path
    (`DELETE .../secrets/%2F` must not become a delete of the whole collection)."""
    segments = []
    for raw in raw_path.split("/")[skip:]:
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(404, NOT_FOUND, "NotFound") from None
        if not segment or "/" in segment or not segment.isprintable():
            raise ApiError(404, NOT_FOUND, "NotFound")
        segments.append(segment)
    return segments


def _parse_target(api: Api, group: str, version: str, parts: list[str]) -> Target:
    namespace = ""
    if len(parts) >= 3 and parts[0] == "namespaces":
        found = api.kinds.find(group, version, parts[2])
        if found and found[0].namespaced:
            namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise ApiError(404, NOT_FOUND, "NotFound")
    found = api.kinds.find(group, version, parts[0])
    if found is None:
        raise ApiError(404, NOT_FOUND, "NotFound")
    kind, resource = found
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    if subresource and subresource not in kind.subresources:
        raise ApiError(404, NOT_FOUND, "NotFound")
    return Target(kind, resource, namespace, name, subresource)


# What the generic handlers serve of a subresource: a status is read and written, never
# created or deleted; a TokenRequest (`token`) is created on a route of its own.
SUBRESOURCE_VERBS = {"status": ("get", "update", "patch")}


def _verb(method: str, target: Target, watch: bool) -> str:
    if method in ("GET", "HEAD"):
        if target.name:
            return "get"
        return "watch" if watch else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if target.name else "deletecollection"
    raise ApiError(405, f"method {method} is not allowed", "MethodNotAllowed")


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in ("1", "true")


# A namespace, or a project, is its own namespace to RBAC: a project admin may get or delete it.
_SELF_NAMESPACED = {("", "namespaces"), ("project.openshift.io", "projects")}


def _authorized_namespace(group: str, target: Target) -> str:
    if target.name and (group, target.kind.plural) in _SELF_NAMESPACED:
        return target.name
    return target.namespace


async def authorize(request: web.Request, user: UserInfo, attributes: Attributes) -> None:
    api = request.app[API]
    if not await api.authorizer.allowed(attributes):
        raise forbidden(
            user.name,
            attributes.verb,
            attributes.api_group,
            attributes.resource_with_subresource,
            attributes.namespace,
            attributes.name,
        )


def dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    if any(value != "All" for value in values):
        raise bad_request(f"invalid dry run value {values!r}: the only value is All")
    return bool(values)


async def handle(request: web.Request, group: str, version: str) -> web.StreamResponse:
    api = request.app[API]
    user = await api.authenticate(request)  # first: nobody learns which paths exist
    # Segments from the raw path: the matched tail has %2F decoded into a separator already.
    parts = path_segments(request.rel_url.raw_path, 4 if group else 3)
    target = _parse_target(api, group, version, parts)
    watch = _is_watch(request)
    verb = _verb(request.method, target, watch)
    if verb not in target.kind.verbs:
        raise ApiError(405, f"{verb} is not supported on {target.kind.plural}", "MethodNotAllowed")
    if target.subresource and verb not in SUBRESOURCE_VERBS.get(target.subresource, ()):
        raise ApiError(
            405,
            f"{verb} is not supported on {target.kind.plural}/{target.subresource}",
            "MethodNotAllowed",
        )
    if target.kind.namespaced and not target.namespace and verb not in ("list", "watch"):
        raise ApiError(404, NOT_FOUND, "NotFound")
    await authorize(
        request,
        user,
        Attributes(
            user,
            verb,
            group,
            target.kind.plural,
            target.subresource,
            _authorized_namespace(group, target),
            target.name,
        ),
    )
    call = Call(
        user,
        target.namespace,
        dry_run=dry_run(request),
        subresource=target.subresource,
    )
    request[OPERATION] = verb
    request[RESOURCE] = target.kind.plural
    handler = _HANDLERS[verb]
    return await handler(request, target, call)


def _check_types(target: Target, obj: Object) -> None:
    """Fields of another type than the kind's are refused as Kubernetes' decoder does."""
    problems = wrong_types(target.kind.shape, obj)
    if problems:
        kind = target.kind
        raise bad_request(
            f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
            + "; ".join(problems[:10])
        )


def _check_kind(target: Target, obj: Object) -> None:
    kind = target.kind
    if obj.get("kind") not in (None, kind.kind) or obj.get("apiVersion") not in (
        None,
        kind.api_version,
    ):
        raise bad_request(
            f"the API version in the data ({obj.get('apiVersion')}) and kind "
            f"({obj.get('kind')}) do not match the endpoint ({kind.api_version}, {kind.kind})"
        )
    meta = obj.get("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    _check_types(target, obj)
    body_namespace = meta.get("namespace")
    if kind.namespaced and body_namespace and body_namespace != target.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )


FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def _admit(request: web.Request, target: Target, obj: Object) -> tuple[Object, list[str]]:
    """The object a write stores, and its warnings: checked against the kind, its unknown fields
    dropped as Kubernetes drops them; `fieldValidation=Strict` refuses them instead, `Warn` (the
    default) names them in warnings, `Ignore` drops them silently."""
    _check_kind(target, obj)
    obj = without_nulls(target.kind.shape, obj)
    mode = request.query.get("fieldValidation") or "Warn"
    if mode not in FIELD_VALIDATION:
        raise bad_request(f"fieldValidation must be Strict, Warn or Ignore, not {mode!r}")
    unknown = unknown_fields(target.kind.shape, obj)
    if not unknown:
        return obj, []
    # Quoted as JSON: a field's name may hold any character, a header value may not.
    named = [f"unknown field {json.dumps(path)}" for path in unknown]
    if mode == "Strict":
        raise bad_request(f"strict decoding error: {', '.join(named[:20])}")
    return known_fields(target.kind.shape, obj), named if mode == "Warn" else []


def warning_header(text: str) -> str:
    """A Warning header value (RFC 9110): the text as a quoted-string of visible ASCII."""
    visible = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '299 - "' + visible.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Writing responses


def _respond(
    request: web.Request,
    target: Target,
    obj: Object,
    status: int = 200,
    warnings: list[str] | None = None,
) -> web.Response:
    if wants_table(request.headers.get("Accept", "")):
        body: Object = table(
            target.kind,
            [obj],
            obj.get("metadata", {}).get("resourceVersion", ""),
            full=request.query.get("includeObject") == "Object",
        )
    else:
        body = obj
    response = web.json_response(body, status=status)
    for warning in warnings or []:
        response.headers.add("Warning", warning_header(warning))
    return response


# The verbs


async def get_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    return _respond(request, target, await target.resource.get(call, target.name))


def _matcher(request: web.Request, target: Target) -> Callable[[Object], bool]:
    labels = label_selector(request.query.get("labelSelector"))
    fields = field_selector(
        request.query.get("fieldSelector"), target.kind.strategy.field_selectors
    )
    return lambda obj: labels(obj) and fields(obj)


def _continue_token(version: int, after: tuple[str, str]) -> str:
    """Where the next page starts, and the resourceVersion of the list's first page."""
    raw = json.dumps({"rv": version, "start": list(after)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _continued(token: str) -> tuple[int, tuple[str, str]]:
    try:
        found = json.loads(base64.urlsafe_b64decode(token.encode()))
        version, (namespace, name) = found["rv"], found["start"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("invalid continue token") from None
    if not isinstance(version, int) or not isinstance(namespace, str) or not isinstance(name, str):
        raise bad_request("invalid continue token")
    return version, (namespace, name)


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "")
    # Bounded before int(): a number of thousands of digits makes int() raise.
    if text and (not text.isdigit() or len(text) > 18):
        raise bad_request("limit must be a non-negative integer")
    return int(text) if text else 0


async def _expired(api: Api, version: int) -> ApiError | None:
    """As Kubernetes: a continued list whose first page is older than the kept history is 410,
    with a token that goes on from the same place, inconsistently, for who accepts that."""
    oldest = await api.store.oldest_version()
    if oldest is None or version >= oldest - 1:
        return None
    return ApiError(
        410,
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in "
        "this response to retrieve the remainder of the results. Continuing with the provided "
        "token results in an inconsistent list - objects that were created, modified, or "
        "deleted between the time the first chunk was returned and now may show up in the list.",
        "Expired",
    )


async def list_objects(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    query = ListQuery(_matcher(request, target), limit=_limit(request))
    first_version = 0
    if token := request.query.get("continue"):
        first_version, after = _continued(token)
        if gone := await _expired(request.app[API], first_version):
            latest = (await target.resource.list_page(call, ListQuery(limit=1))).version
            gone.list_meta = {"continue": _continue_token(latest, after)}
            raise gone
        query = replace(query, after=after)
    page = await target.resource.list_page(call, query)
    # Every page of one list reports the version of its first page, as Kubernetes does.
    version = first_version or page.version
    list_meta: dict[str, Any] = {"resourceVersion": str(version)}
    if page.more:
        list_meta["continue"] = _continue_token(version, position(page.items[-1]))
    kind = target.kind
    if wants_table(request.headers.get("Accept", "")):
        body = table(
            kind, page.items, str(version), full=request.query.get("includeObject") == "Object"
        )
        if "continue" in list_meta:
            body["metadata"]["continue"] = list_meta["continue"]
        return web.json_response(body)
    head = {"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": list_meta}
    if page.encoded is None:
        return web.json_response({**head, "items": page.items})
    # The objects as stored, spliced into the list unparsed: encoded once, when written.
    text = f'{json.dumps(head)[:-1]}, "items": [{",".join(page.encoded)}]}}'
    return web.Response(text=text, content_type="application/json")


async def create_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    obj, warnings = _admit(request, target, await read_object(request))
    created = await target.resource.create(call, obj)
    return _respond(request, target, created, 201, warnings)


async def update_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    obj, warnings = _admit(request, target, await read_object(request))
    if obj.get("metadata", {}).get("name") != target.name:
        raise bad_request("the name of the object does not match the name on the URL")
    updated = await target.resource.update(call, target.name, obj)
    return _respond(request, target, updated, 200, warnings)


def apply_patch(content_type: str, current: Object, patch: Any) -> Object:
    """`current` with the decoded `patch` applied, by the patch type `content_type` names."""
    if content_type == "application/json-patch+json":
        # jsonpatch would take a string for the JSON text of a patch and parse it again.
        if not isinstance(patch, list):
            raise bad_request("a JSON patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
            raise ApiError(422, f"the JSON patch could not be applied: {exc}", "Invalid") from None
    elif content_type in MERGE_PATCHES:
        # Our kinds have no patch strategies of their own: a strategic merge is a merge, and
        # so is a server-side apply (without field ownership: nothing is removed by omission).
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        result = merge_patch(current, patch)
    else:
        raise unsupported_patch(content_type)
    if not isinstance(result, dict):
        raise bad_request("the patched object is not an object")
    return result


def unsupported_patch(content_type: str) -> ApiError:
    return ApiError(
        415, f"the patch type {content_type!r} is not supported", "UnsupportedMediaType"
    )


APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCHES = (
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    APPLY_PATCH,
)
PATCH_TYPES = ("application/json-patch+json", *MERGE_PATCHES)


async def _apply_create(
    request: web.Request, target: Target, call: Call, patch: Any
) -> web.StreamResponse:
    """A server-side apply of an object that does not exist yet creates it."""
    if not isinstance(patch, dict):
        raise bad_request("an apply patch must be an object")
    if patch.setdefault("metadata", {}).setdefault("name", target.name) != target.name:
        raise bad_request("the name of the object does not match the name on the URL")
    obj, warnings = _admit(request, target, patch)
    created = await target.resource.create(call, obj)
    return _respond(request, target, created, 201, warnings)


async def patch_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    content_type = request.content_type
    if content_type not in PATCH_TYPES:
        raise unsupported_patch(content_type)
    patch = await decode_body(await read_body(request), "yaml" in content_type, "the patch")
    if content_type == APPLY_PATCH and not request.query.get("fieldManager"):
        raise bad_request("fieldManager is required for apply patches")
    if content_type == APPLY_PATCH and not target.subresource:
        try:
            await target.resource.get(call, target.name)
        except ApiError as exc:
            if exc.reason != "NotFound":
                raise
            return await _apply_create(request, target, call, patch)
    # Patches apply to the version they read: on a conflict, read again and re-apply.
    for _attempt in range(5):
        current = await target.resource.get(call, target.name)
        patched = apply_patch(content_type, current, patch)
        if not isinstance(patched.setdefault("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        if not patched["metadata"].get("resourceVersion"):
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        patched, warnings = _admit(request, target, patched)
        read_version = current["metadata"]["resourceVersion"]
        try:
            updated = await target.resource.update(call, target.name, patched)
        except ApiError as exc:
            # A patch that named no other resourceVersion is retried on the newer object.
            if exc.reason == "Conflict" and patched["metadata"]["resourceVersion"] == read_version:
                continue
            raise
        return _respond(request, target, updated, 200, warnings)
    raise ApiError(409, "too many conflicts while patching; try again", "Conflict")


async def _delete_precondition(target: Target, call: Call, body: Object | None) -> int | None:
    """The resourceVersion a delete requires: DeleteOptions' own, or, for a uid precondition,
    the version of the object whose uid was checked (so that nothing can change in between)."""
    preconditions = (body or {}).get("preconditions") or {}
    if not isinstance(preconditions, dict):
        raise bad_request("preconditions must be an object")
    version = preconditions.get("resourceVersion")
    if version and not str(version).isdigit():
        raise conflict(target.kind.group, target.kind.plural, target.name)
    uid = preconditions.get("uid")
    if not uid:
        return int(version) if version else None
    current = await target.resource.get(call, target.name)
    meta = current["metadata"]
    if meta.get("uid") != uid:
        raise ApiError(
            409,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
            f"{meta.get('uid', '')}",
            "Conflict",
            {"name": target.name, "group": target.kind.group, "kind": target.kind.plural},
        )
    return int(version) if version else int(meta["resourceVersion"])


async def delete_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    body = await read_object(request) if request.body_exists else None
    version = await _delete_precondition(target, call, body)
    deleted = await target.resource.delete(call, target.name, version)
    if target.kind.delete_answers_object:
        return _respond(request, target, deleted)
    return web.json_response(deleted_status(target.kind, deleted))


def deleted_status(kind: Kind, deleted: Object) -> Object:
    """What Kubernetes answers a DELETE of most kinds: Success, naming what went."""
    meta = deleted.get("metadata") or {}
    details = {"name": meta.get("name", ""), "kind": kind.plural, "uid": meta.get("uid", "")}
    if kind.group:
        details["group"] = kind.group
    return status_object("Success", 200, details=details)


async def delete_collection(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    items, _version = await target.resource.list(call)
    matches = _matcher(request, target)
    deleted = []
    for item in items:
        if matches(item):
            meta = item["metadata"]
            item_call = Call(call.user, meta.get("namespace", ""), call.dry_run)
            with contextlib.suppress(ApiError):
                deleted.append(await target.resource.delete(item_call, meta["name"]))
    kind = target.kind
    return web.json_response(
        {"kind": kind.list_kind, "apiVersion": kind.api_version, "metadata": {}, "items": deleted}
    )


async def watch_objects(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    api = request.app[API]
    matches = _matcher(request, target)
    namespace = call.namespace if target.kind.namespaced else ""
    version_text = request.query.get("resourceVersion", "")
    timeout_text = request.query.get("timeoutSeconds") or "1800"
    if not timeout_text.isdigit():
        raise bad_request("timeoutSeconds must be a non-negative integer")
    timeout = float(timeout_text)
    as_table = wants_table(request.headers.get("Accept", ""))
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    def encode(event_type: str, obj: Object) -> bytes:
        body = table(target.kind, [obj], "", True) if as_table else obj
        return (json.dumps({"type": event_type, "object": body}) + "\n").encode()

    async def send(event_type: str, obj: Object) -> None:
        await response.write(encode(event_type, obj))

    def event_line(event: Event, obj: Object) -> bytes:
        if obj is not event.object:  # presented for this caller: encoded for this caller
            return encode(event.type, obj)
        # The stored object as it is: encoded once for every watcher of the process.
        form = "table" if as_table else "json"
        line = event.encoded.get(form)
        if line is None:
            line = event.encoded[form] = encode(event.type, obj)
        return line

    def relevant(obj: Object) -> bool:
        meta = obj.get("metadata", {})
        if namespace and meta.get("namespace", "") != namespace:
            return False
        return matches(obj)

    shown: set[tuple[str, str]] = set()  # the objects this watcher was shown: it sees them go

    async def stream() -> None:
        if version_text in ("", "0"):
            # No starting point: the current objects first, as ADDED, then what changes.
            items, start = await target.resource.list(call)
            for item in items:
                if relevant(item):
                    shown.add(position(item))
                    await send("ADDED", item)
        else:
            if not version_text.isdigit():
                raise bad_request("resourceVersion must be a number")
            start = int(version_text)
        resource = target.resource
        # Asked once, not for each event of each watcher: most kinds need neither call.
        as_stored, to_all = resource.serves_stored(), resource.shows_every_event()
        async for batch in api.store.watch_batches(start, resource.watched()):
            lines = []
            for event in batch:
                obj = event.object if as_stored else await resource.present(call, event.object)
                if not relevant(obj):
                    continue
                where = position(obj)
                if event.type == "DELETED" and where in shown:
                    shown.discard(where)
                elif to_all or await resource.visible_to(call, event.object):
                    shown.add(where)
                else:
                    continue
                lines.append(event_line(event, obj))
            if lines:
                # One chunk, one TLS record and one send for what arrived together.
                await response.write(b"".join(lines))

    watches = request.app[WATCHES]
    task = asyncio.current_task()
    assert task is not None
    watches.add(task)
    try:
        try:
            async with asyncio.timeout(timeout):
                await stream()
        except TimeoutError:
            pass
        except Expired:
            gone = status_object(
                "Failure", 410, f"too old resource version: {version_text}", "Expired"
            )
            await response.write((json.dumps({"type": "ERROR", "object": gone}) + "\n").encode())
        except ApiError as exc:
            await response.write(
                (json.dumps({"type": "ERROR", "object": exc.status()}) + "\n").encode()
            )
        await response.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client left, or the server stops: nothing more to say
    finally:
        watches.discard(task)
    return response


# Watches run until their timeout; a server that stops ends them at once instead of waiting.
class Watches(set[asyncio.Task[Any]]):
    """The watch requests in progress."""


WATCHES = web.AppKey("watches", Watches)


async def end_watches(app: web.Application) -> None:
    running: Watches = app[WATCHES]
    for task in list(running):
        task.cancel()


Verb = Callable[[web.Request, Target, Call], Awaitable[web.StreamResponse]]

_HANDLERS: dict[str, Verb] = {
    "get": get_object,
    "list": list_objects,
    "watch": watch_objects,
    "create": create_object,
    "update": update_object,
    "patch": patch_object,
    "delete": delete_object,
    "deletecollection": delete_collection,
}
