"""Discovery (/api, /apis), /version and the OpenAPI v3 documents that kubectl reads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from .context import API
from .errors import ApiError
from .kinds import Kind, KindRegistry
from .openapi import v2_document, v3_document

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-wharf",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-11-26T00:00:00Z",
    "goVersion": "python",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


def _resources(kinds: list[Kind]) -> list[dict[str, Any]]:
    found = []
    for kind in kinds:
        found.append(
            {
                "name": kind.plural,
                "singularName": kind.singular,
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": list(kind.verbs),
                **({"shortNames": list(kind.short_names)} if kind.short_names else {}),
                **({"categories": list(kind.categories)} if kind.categories else {}),
            }
        )
        for sub in kind.subresources:
            found.append(
                {
                    "name": f"{kind.plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["get", "update", "patch"] if sub == "status" else ["create"],
                }
            )
    return found


def resource_list(registry: KindRegistry, group: str, version: str) -> dict[str, Any]:
    kinds = [k for k in registry.all() if k.group == group and k.version == version]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": _resources(kinds),
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


async def api_versions(request: web.Request) -> web.Response:
    await request.app[API].authenticate(request)
    return web.json_response(
        {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
            ],
        }
    )


async def api_groups(request: web.Request) -> web.Response:
    api = request.app[API]
    await api.authenticate(request)
    groups = [_group(g, v) for g, v in api.kinds.groups().items() if g]
    return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


async def version(_request: web.Request) -> web.Response:
    return web.json_response(VERSION)


def _document_path(group: str, version_name: str) -> str:
    return f"apis/{group}/{version_name}" if group else f"api/{version_name}"


async def openapi_root(request: web.Request) -> web.Response:
    registry = request.app[API].kinds
    paths = {}
    for group, versions in registry.groups().items():
        for v in versions:
            path = _document_path(group, v)
            digest = (
                hashlib.sha256(json.dumps(v3_document(registry, group, v), sort_keys=True).encode())
                .hexdigest()[:32]
                .upper()
            )
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return web.json_response({"paths": paths})


async def openapi_group(request: web.Request) -> web.Response:
    registry = request.app[API].kinds
    tail = request.match_info["tail"].strip("/").split("/")
    if tail[0] == "api" and len(tail) == 2:
        group, version_name = "", tail[1]
    elif tail[0] == "apis" and len(tail) == 3:
        group, version_name = tail[1], tail[2]
    else:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    if version_name not in registry.groups().get(group, []):
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return web.json_response(v3_document(registry, group, version_name))


async def openapi_v2(request: web.Request) -> web.Response:
    """The whole API as Swagger 2.0, in JSON. kubectl asks for protobuf only: 406 sends it on
    to OpenAPI v3, which it reads for explain and validation."""
    accept = request.headers.get("Accept", "*/*")
    if not any(
        media.split(";")[0].strip() in ("application/json", "application/*", "*/*")
        for media in accept.split(",")
    ):
        raise ApiError(406, "only application/json is served", "NotAcceptable")
    return web.json_response(v2_document(request.app[API].kinds))
