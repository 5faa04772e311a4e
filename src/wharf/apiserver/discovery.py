"""Discovery (/api, /apis), /version and the OpenAPI v3 documents that kubectl reads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from .context import API
from .kinds import Kind, KindRegistry
from .shapes import openapi

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


_WRITE_PARAMETERS = [
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
    {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
]


def _operation(
    action: str, gvk: dict[str, str], ref: dict[str, Any], parameters: list[Any] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
        "responses": {"200": {"description": "OK", **ref}},
    }
    if parameters:
        operation["parameters"] = parameters
        operation["requestBody"] = ref
    return operation


def openapi_document(registry: KindRegistry, group: str, version_name: str) -> dict[str, Any]:
    """An OpenAPI v3 document of one group version: schemas of its kinds and their paths,
    which say that writes take `fieldValidation` (kubectl then leaves validation to us)."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    prefix = f"/apis/{group}/{version_name}" if group else f"/api/{version_name}"
    for kind in registry.all():
        if kind.group != group or kind.version != version_name:
            continue
        gvk = {"group": group, "version": version_name, "kind": kind.kind}
        schema_name = f"{group or 'core'}.{version_name}.{kind.kind}"
        schema: dict[str, Any] = openapi(kind.shape) if kind.shape else {"type": "object"}
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[schema_name] = schema
        ref = {
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
            }
        }
        base = (
            f"{prefix}/namespaces/{{namespace}}/{kind.plural}"
            if kind.namespaced
            else f"{prefix}/{kind.plural}"
        )
        paths[base] = {
            "get": _operation("list", gvk, ref),
            "post": _operation("post", gvk, ref, _WRITE_PARAMETERS),
        }
        paths[f"{base}/{{name}}"] = {
            "get": _operation("get", gvk, ref),
            "put": _operation("put", gvk, ref, _WRITE_PARAMETERS),
            "patch": _operation("patch", gvk, ref, _WRITE_PARAMETERS),
            "delete": _operation("delete", gvk, ref),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wharf", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _document_path(group: str, version_name: str) -> str:
    return f"apis/{group}/{version_name}" if group else f"api/{version_name}"


async def openapi_root(request: web.Request) -> web.Response:
    registry = request.app[API].kinds
    paths = {}
    for group, versions in registry.groups().items():
        for v in versions:
            path = _document_path(group, v)
            digest = (
                hashlib.sha256(
                    json.dumps(openapi_document(registry, group, v), sort_keys=True).encode()
                )
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
        raise web.HTTPNotFound()
    if version_name not in registry.groups().get(group, []):
        raise web.HTTPNotFound()
    return web.json_response(openapi_document(registry, group, version_name))
