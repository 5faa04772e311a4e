"""The generic REST handlers: one implementation of get, list, create, update, patch, delete,
deletecollection and watch, for every kind."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch
import yaml
from aiohttp import web

from ..auth.user import Attributes, UserInfo
from ..db.objects import Expired
from ..kube import merge_patch
from . import protobuf
from .context import API, Api
from .errors import ApiError, bad_request, conflict, forbidden, status_object
from .kinds import Kind
from .meta import Object, field_selector, label_selector
from .resources import Call, Resource
from .shapes import unknown_fields, wrong_types
from .tables import table, wants_table

MAX_BODY = 3 * 1024 * 1024  # Kubernetes refuses request bodies over 3 MiB


@dataclass(frozen=True)
class Target:
    """What a resource path names."""

    kind: Kind
    resource: Resource
    namespace: str
    name: str
    subresource: str


def _parse_target(api: Api, group: str, version: str, parts: list[str]) -> Target:
    namespace = ""
    if len(parts) >= 3 and parts[0] == "namespaces":
        found = api.kinds.find(group, version, parts[2])
        if found and found[0].namespaced:
            namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    found = api.kinds.find(group, version, parts[0])
    if found is None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    kind, resource = found
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 else ""
    if subresource and subresource not in kind.subresources:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return Target(kind, resource, namespace, name, subresource)


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


async def handle(request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
    api = request.app[API]
    user = await api.authenticate(request)
    parts = [p for p in tail.split("/") if p]
    target = _parse_target(api, group, version, parts)
    watch = _is_watch(request)
    verb = _verb(request.method, target, watch)
    if verb not in target.kind.verbs:
        raise ApiError(405, f"{verb} is not supported on {target.kind.plural}", "MethodNotAllowed")
    if target.kind.namespaced and not target.namespace and verb not in ("list", "watch"):
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
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
        dry_run=request.query.get("dryRun") == "All",
        subresource=target.subresource,
    )
    handler = _HANDLERS[verb]
    return await handler(request, target, call)


# Reading request bodies


async def read_object(request: web.Request) -> Object:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "the request body is too large", "RequestEntityTooLarge")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "the request body is too large", "RequestEntityTooLarge")
    content_type = request.content_type
    if content_type == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    data = decode_body(raw, "yaml" in content_type, "the body of the request")
    if not isinstance(data, dict):
        raise bad_request("the body of the request must be an object")
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: they can make a small body expand without bound."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not allowed")
        return super().compose_node(parent, index)


def decode_body(raw: bytes, as_yaml: bool, what: str) -> Any:
    """JSON, or YAML without aliases; 400 for anything that does not decode."""
    try:
        if as_yaml:
            return yaml.load(raw, Loader=_NoAliasLoader)  # a SafeLoader: no Python objects
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"{what} could not be decoded: {exc}") from None
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None


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


def _strict_check(request: web.Request, target: Target, obj: Object) -> list[str]:
    mode = request.query.get("fieldValidation", "Warn" if request.method != "GET" else "Ignore")
    if mode not in ("Strict", "Warn", "Ignore", ""):
        raise bad_request(f"fieldValidation must be Strict, Warn or Ignore, not {mode!r}")
    if mode == "Ignore":
        return []
    unknown = unknown_fields(target.kind.shape, obj)
    if unknown and mode == "Strict":
        listing = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise bad_request(f"strict decoding error: {listing}")
    return [f'unknown field "{f}"' for f in unknown]


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
        response.headers.add("Warning", f'299 - "{warning}"')
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


def _continue_token(version: int, after: str) -> str:
    raw = json.dumps({"rv": version, "after": after}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _after(token: str) -> str:
    try:
        return str(json.loads(base64.urlsafe_b64decode(token.encode()))["after"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("invalid continue token") from None


def _position(obj: Object) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


async def list_objects(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    items, version = await target.resource.list(call)
    matches = _matcher(request, target)
    items = [item for item in items if matches(item)]
    items.sort(key=_position)
    if token := request.query.get("continue"):
        after = _after(token)
        items = [item for item in items if _position(item) > after]
    list_meta: dict[str, Any] = {"resourceVersion": str(version)}
    limit_text = request.query.get("limit", "")
    if limit_text:
        if not limit_text.isdigit():
            raise bad_request("limit must be a non-negative integer")
        limit = int(limit_text)
        if 0 < limit < len(items):
            items = items[:limit]
            list_meta["continue"] = _continue_token(version, _position(items[-1]))
    kind = target.kind
    if wants_table(request.headers.get("Accept", "")):
        body = table(kind, items, str(version), full=request.query.get("includeObject") == "Object")
        if "continue" in list_meta:
            body["metadata"]["continue"] = list_meta["continue"]
        return web.json_response(body)
    return web.json_response(
        {
            "kind": kind.list_kind,
            "apiVersion": kind.api_version,
            "metadata": list_meta,
            "items": items,
        }
    )


async def create_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    obj = await read_object(request)
    _check_kind(target, obj)
    warnings = _strict_check(request, target, obj)
    created = await target.resource.create(call, obj)
    return _respond(request, target, created, 201, warnings)


async def update_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    obj = await read_object(request)
    _check_kind(target, obj)
    name = obj.get("metadata", {}).get("name")
    if name != target.name:
        raise bad_request("the name of the object does not match the name on the URL")
    warnings = _strict_check(request, target, obj)
    updated = await target.resource.update(call, target.name, obj)
    return _respond(request, target, updated, 200, warnings)


def apply_patch(content_type: str, current: Object, raw: bytes) -> Object:
    patch = decode_body(raw, "yaml" in content_type, "the patch")
    if content_type == "application/json-patch+json":
        try:
            result = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
            raise ApiError(422, f"the JSON patch could not be applied: {exc}", "Invalid") from None
    elif content_type in (
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        APPLY_PATCH,
    ):
        # Our kinds have no patch strategies of their own: a strategic merge is a merge, and
        # so is a server-side apply (without field ownership: nothing is removed by omission).
        if not isinstance(patch, dict):
            raise bad_request("a merge patch must be a JSON object")
        result = merge_patch(current, patch)
    else:
        raise ApiError(
            415, f"the patch type {content_type!r} is not supported", "UnsupportedMediaType"
        )
    if not isinstance(result, dict):
        raise bad_request("the patched object is not an object")
    return result


APPLY_PATCH = "application/apply-patch+yaml"


async def _apply_create(
    request: web.Request, target: Target, call: Call, raw: bytes
) -> web.StreamResponse:
    """A server-side apply of an object that does not exist yet creates it."""
    obj = decode_body(raw, True, "the patch")
    if not isinstance(obj, dict):
        raise bad_request("an apply patch must be an object")
    _check_kind(target, obj)
    if obj.setdefault("metadata", {}).setdefault("name", target.name) != target.name:
        raise bad_request("the name of the object does not match the name on the URL")
    warnings = _strict_check(request, target, obj)
    created = await target.resource.create(call, obj)
    return _respond(request, target, created, 201, warnings)


async def patch_object(request: web.Request, target: Target, call: Call) -> web.StreamResponse:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "the request body is too large", "RequestEntityTooLarge")
    content_type = request.content_type
    if content_type == APPLY_PATCH:
        if not request.query.get("fieldManager"):
            raise bad_request("fieldManager is required for apply patches")
        try:
            await target.resource.get(call, target.name)
        except ApiError as exc:
            if exc.reason != "NotFound":
                raise
            return await _apply_create(request, target, call, raw)
    # Patches apply to the version they read: on a conflict, read again and re-apply.
    for _attempt in range(5):
        current = await target.resource.get(call, target.name)
        patched = apply_patch(content_type, current, raw)
        if not isinstance(patched.setdefault("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        if not patched["metadata"].get("resourceVersion"):
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        _check_kind(target, patched)
        warnings = _strict_check(request, target, patched)
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
    return _respond(request, target, deleted)


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

    async def send(event_type: str, obj: Object) -> None:
        body = table(target.kind, [obj], "", True) if as_table else obj
        line = json.dumps({"type": event_type, "object": body}) + "\n"
        await response.write(line.encode())

    def relevant(obj: Object) -> bool:
        meta = obj.get("metadata", {})
        if namespace and meta.get("namespace", "") != namespace:
            return False
        return matches(obj)

    shown: set[str] = set()  # the objects this watcher was shown: it also sees them go

    async def stream() -> None:
        if version_text in ("", "0"):
            # No starting point: the current objects first, as ADDED, then what changes.
            items, start = await target.resource.list(call)
            for item in items:
                if relevant(item):
                    shown.add(_position(item))
                    await send("ADDED", item)
        else:
            if not version_text.isdigit():
                raise bad_request("resourceVersion must be a number")
            start = int(version_text)
        async for event in api.store.watch(start, target.resource.watched()):
            obj = await target.resource.present(call, event.object)
            if not relevant(obj):
                continue
            position = _position(obj)
            if event.type == "DELETED" and position in shown:
                shown.discard(position)
            elif await target.resource.visible_to(call, event.object):
                shown.add(position)
            else:
                continue
            await send(event.type, obj)

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
