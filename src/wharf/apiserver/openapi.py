"""The OpenAPI documents of the API: v3 per group version (what kubectl's explain and validation
read), v2 for the whole API. Both are made from one list of operations, built from the kinds
the server serves, so they say exactly what it answers: only the verbs each kind allows, every
path and query parameter it reads, every status it can answer with, errors as `Status`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from . import rest
from .kinds import Kind, KindRegistry
from .shapes import ANY, INT, S, Shape, openapi

STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
JSON_PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.JSONPatch"
TOKEN_REQUEST = "io.k8s.api.authentication.v1.TokenRequest"

JSON = "application/json"
YAML = "application/yaml"
# The patch types `rest.patch_object` applies; the JSON patch is an array, the others objects.
PATCH_TYPES = {
    media: PATCH if media in rest.MERGE_PATCHES else JSON_PATCH for media in rest.PATCH_TYPES
}

# The shared schemas, in the shapes' own notation (wharf.apiserver.shapes).
_LIST_META: Shape = {"resourceVersion": S, "continue": S, "remainingItemCount": INT, "selfLink": S}
_CAUSE: Shape = {"reason": S, "message": S, "field": S}
_STATUS: Shape = {
    "kind": S,
    "apiVersion": S,
    "metadata": _LIST_META,
    "status": S,
    "message": S,
    "reason": S,
    "code": INT,
    "details": {
        "name": S,
        "group": S,
        "kind": S,
        "uid": S,
        "retryAfterSeconds": INT,
        "causes": [_CAUSE],
    },
}
# What a DELETE body may carry that the server reads: its preconditions.
_DELETE_OPTIONS: Shape = {
    "kind": S,
    "apiVersion": S,
    "preconditions": {"uid": S, "resourceVersion": S},
}
_TOKEN_REQUEST: Shape = {
    "kind": S,
    "apiVersion": S,
    "metadata": ANY,
    "spec": {"audiences": [S], "expirationSeconds": INT},
    "status": {"token": S, "expirationTimestamp": S},
}
_JSON_PATCH_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "A JSON patch (RFC 6902).",
    "items": {
        "type": "object",
        "properties": {
            **openapi({"path": S, "from": S, "value": ANY})["properties"],
            "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
        },
        "required": ["op", "path"],
    },
}
SHARED_SCHEMAS = {
    STATUS: {**openapi(_STATUS), "required": ["kind", "apiVersion", "status"]},
    LIST_META: openapi(_LIST_META),
    DELETE_OPTIONS: openapi(_DELETE_OPTIONS),
    PATCH: {"type": "object", "description": "A merge or apply patch."},
    JSON_PATCH: _JSON_PATCH_SCHEMA,
}
_TOKEN_REQUEST_SCHEMA: dict[str, Any] = {
    **openapi(_TOKEN_REQUEST),
    "x-kubernetes-group-version-kind": [
        {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}
    ],
}


def _query(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind, **extra}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


DRY_RUN = _query("dryRun", enum=["All"])
_WRITE = (DRY_RUN, _query("fieldValidation", enum=["Strict", "Warn", "Ignore"]))
_SELECTORS = (_query("labelSelector"), _query("fieldSelector"))
_LIST = (
    *_SELECTORS,
    _query("limit", "integer", minimum=0),
    _query("continue"),
    _query("resourceVersion"),
)
# A list of a kind that can be watched turns into a watch with these.
_WATCH = (_query("timeoutSeconds", "integer", minimum=0), _query("watch", "boolean"))


@dataclass(frozen=True)
class _Verb:
    """How a verb is served: method, path, answer, parameters and body."""

    method: str
    action: str  # as x-kubernetes-action names it
    on_item: bool  # on .../{name}, else on the collection
    answers: tuple[int, ...]  # its success codes
    returns_list: bool
    parameters: tuple[dict[str, Any], ...]
    body: str  # "object", "patch", "delete" (DeleteOptions, optional) or "" (none)


_VERBS = {
    "list": _Verb("get", "list", False, (200,), True, _LIST, ""),
    "create": _Verb("post", "post", False, (201,), False, _WRITE, "object"),
    "deletecollection": _Verb(
        "delete", "deletecollection", False, (200,), True, (*_SELECTORS, DRY_RUN), "delete"
    ),
    "get": _Verb("get", "get", True, (200,), False, (), ""),
    "update": _Verb("put", "put", True, (200,), False, _WRITE, "object"),
    # An apply patch of an object that does not exist creates it: 201.
    "patch": _Verb(
        "patch", "patch", True, (200, 201), False, (*_WRITE, _query("fieldManager")), "patch"
    ),
    "delete": _Verb("delete", "delete", True, (200,), False, (DRY_RUN,), "delete"),
}
# The status subresource reads and writes the object's status, and never creates one.
_STATUS_VERBS = {
    "get": _VERBS["get"],
    "update": _VERBS["update"],
    "patch": replace(_VERBS["patch"], answers=(200,)),
}
_TOKEN = _Verb("post", "post", True, (201,), False, (DRY_RUN,), "token")

# Every operation can be refused for its input, its caller or a missing namespace.
_ALWAYS = (400, 401, 403, 404)
_ERRORS = {
    "get": _ALWAYS,
    "list": (*_ALWAYS, 410),
    "create": (*_ALWAYS, 409, 413, 422),
    "update": (*_ALWAYS, 409, 413, 422),
    "patch": (*_ALWAYS, 409, 413, 415, 422),
    "delete": (*_ALWAYS, 409, 413),
    "deletecollection": (*_ALWAYS, 413),
}


@dataclass
class Operation:
    """One method on one path, in neither OpenAPI version's terms yet."""

    path: str
    method: str
    action: str  # the verb, as x-kubernetes-action names it
    kind: Kind
    answers: dict[int, str]  # status code to schema name
    parameters: list[dict[str, Any]] = field(default_factory=list)
    body: dict[str, str] = field(default_factory=dict)  # media type to schema name
    body_required: bool = True


def schema_name(kind: Kind) -> str:
    return f"{kind.group or 'core'}.{kind.version}.{kind.kind}"


def list_schema_name(kind: Kind) -> str:
    return f"{schema_name(kind)}List"


def _errors(action: str) -> dict[int, str]:
    return dict.fromkeys(_ERRORS[action], STATUS)


def _operation(kind: Kind, base: str, verb: str, how: _Verb, subresource: str = "") -> Operation:
    me = schema_name(kind)
    if verb == "create" and kind.kind == "ImageStreamMapping":
        # Recorded, not kept: its create answers a Status, as OpenShift's does.
        me = STATUS
    if verb == "delete" and not kind.delete_answers_object:
        me = STATUS
    scope = [_path("namespace")] if kind.namespaced else []
    path, parameters = base, scope
    if how.on_item:
        path, parameters = f"{base}/{{name}}", [*scope, _path("name")]
    if subresource:
        path = f"{path}/{subresource}"
    success = list_schema_name(kind) if how.returns_list else me
    bodies = {
        "object": {JSON: me, YAML: me},
        "patch": dict(PATCH_TYPES),
        "delete": {JSON: DELETE_OPTIONS},
        "token": {JSON: TOKEN_REQUEST},
        "": {},
    }[how.body]
    if how.body == "token":
        success = TOKEN_REQUEST
    return Operation(
        path,
        how.method,
        how.action,
        kind,
        dict.fromkeys(how.answers, success) | _errors(verb),
        [*parameters, *how.parameters],
        bodies,
        body_required=how.body not in ("delete", ""),
    )


def _kind_operations(kind: Kind, prefix: str) -> list[Operation]:
    base = f"{prefix}/{kind.plural}"
    if kind.namespaced:
        base = f"{prefix}/namespaces/{{namespace}}/{kind.plural}"
    verbs = dict(_VERBS)
    if "watch" in kind.verbs:
        verbs["list"] = replace(verbs["list"], parameters=(*_LIST, *_WATCH))
    operations = [
        _operation(kind, base, verb, how) for verb, how in verbs.items() if verb in kind.verbs
    ]
    if "status" in kind.subresources:
        operations += [
            _operation(kind, base, verb, how, "status") for verb, how in _STATUS_VERBS.items()
        ]
    if "token" in kind.subresources:
        operations.append(_operation(kind, base, "create", _TOKEN, "token"))
    return operations


def _kind_schemas(kind: Kind) -> dict[str, Any]:
    gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}
    schema: dict[str, Any] = openapi(kind.shape) if kind.shape else {"type": "object"}
    schema["x-kubernetes-group-version-kind"] = [gvk]
    listed = {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "apiVersion": {"type": "string"},
            "metadata": {"$ref": f"#/components/schemas/{LIST_META}"},
            "items": {
                "type": "array",
                "items": {"$ref": f"#/components/schemas/{schema_name(kind)}"},
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [{**gvk, "kind": kind.list_kind}],
    }
    return {schema_name(kind): schema, list_schema_name(kind): listed}


def _prefix(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def _contents(
    registry: KindRegistry, group: str | None, version: str | None
) -> tuple[list[Operation], dict[str, Any]]:
    """The operations and schemas of one group version, or of every one (None, None)."""
    operations: list[Operation] = []
    schemas: dict[str, Any] = dict(SHARED_SCHEMAS)
    for kind in registry.all():
        if group is not None and (kind.group, kind.version) != (group, version):
            continue
        operations += _kind_operations(kind, _prefix(kind.group, kind.version))
        schemas |= _kind_schemas(kind)
        if "token" in kind.subresources:
            schemas[TOKEN_REQUEST] = _TOKEN_REQUEST_SCHEMA
    return operations, schemas


# Rendering: v3


def _ref3(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _v3_operation(op: Operation) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        **_head(op),
        "parameters": op.parameters,
        "responses": {
            str(code): {
                "description": _description(code),
                "content": {JSON: {"schema": _ref3(name)}},
            }
            for code, name in sorted(op.answers.items())
        },
    }
    if op.body:
        rendered["requestBody"] = {
            "required": op.body_required,
            "content": {media: {"schema": _ref3(name)} for media, name in op.body.items()},
        }
    return rendered


def _head(op: Operation) -> dict[str, Any]:
    """What both OpenAPI versions say of an operation before its parameters."""
    return {
        "operationId": f"{op.action}{op.kind.kind}{_suffix(op)}",
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": {
            "group": op.kind.group,
            "version": op.kind.version,
            "kind": op.kind.kind,
        },
    }


def _paths(operations: list[Operation], render: Any) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = render(op)
    return paths


def _suffix(op: Operation) -> str:
    """Tells a subresource's operations from the kind's own: operationIds are unique."""
    for subresource in ("status", "token"):
        if op.path.endswith(f"/{subresource}"):
            return subresource.capitalize()
    return ""


def _description(code: int) -> str:
    return {200: "OK", 201: "Created"}.get(code, "Failure")


def v3_document(registry: KindRegistry, group: str, version: str) -> dict[str, Any]:
    operations, schemas = _contents(registry, group, version)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Wharf", "version": "v1"},
        "paths": _paths(operations, _v3_operation),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"BearerToken": []}],
    }


# Rendering: v2 (Swagger 2.0)


def _to_v2(schema: Any) -> Any:
    """A v3 schema as Swagger 2.0 writes it: references into definitions, no `nullable`."""
    if isinstance(schema, dict):
        converted = {}
        for key, value in schema.items():
            if key == "$ref":
                converted[key] = value.replace("#/components/schemas/", "#/definitions/")
            elif key == "nullable":
                converted["x-nullable"] = value
            else:
                converted[key] = _to_v2(value)
        return converted
    if isinstance(schema, list):
        return [_to_v2(item) for item in schema]
    return schema


def _v2_parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    rendered = {k: v for k, v in parameter.items() if k != "schema"}
    rendered.update(parameter["schema"])
    return rendered


def _v2_operation(op: Operation) -> dict[str, Any]:
    parameters = [_v2_parameter(p) for p in op.parameters]
    if op.body:
        # Swagger 2.0 has one body schema for every media type: the first is the main one.
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": op.body_required,
                "schema": {"$ref": f"#/definitions/{next(iter(op.body.values()))}"},
            }
        )
    rendered: dict[str, Any] = {
        **_head(op),
        "produces": [JSON],
        "parameters": parameters,
        "responses": {
            str(code): {
                "description": _description(code),
                "schema": {"$ref": f"#/definitions/{name}"},
            }
            for code, name in sorted(op.answers.items())
        },
    }
    if op.body:
        rendered["consumes"] = list(op.body)
    return rendered


def v2_document(registry: KindRegistry) -> dict[str, Any]:
    operations, schemas = _contents(registry, None, None)
    return {
        "swagger": "2.0",
        "info": {"title": "Wharf", "version": "v1"},
        "paths": _paths(operations, _v2_operation),
        "definitions": _to_v2(schemas),
        "securityDefinitions": {
            "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}
        },
        "security": [{"BearerToken": []}],
    }
