"""Enough of Kubernetes' protobuf encoding to read the bodies that kubectl's typed clients send
only as protobuf (`create secret|configmap|serviceaccount|namespace|role|rolebinding|...`,
`create token`, `auth can-i`, `auth whoami`); they never fall back to JSON, not even on a 415.
Answers go back as JSON, which those clients accept.

Each message is declared once, as a table of field number -> (JSON name, type), with the numbers
of Kubernetes' generated.proto files; one decoder walks any of them and yields the object's JSON
form, so the rest of the server sees the same dict as from a JSON body."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .errors import bad_request

MAGIC = b"k8s\x00"

# Leaf types. "bytes" is base64 in JSON; "raw" stays bytes (only the envelope's payload);
# "time" is a meta/v1 Time message ({seconds, nanos}) shown as RFC 3339; "quantity" is a
# resource.Quantity message ({string}) shown as its string.
STRING, BYTES, INT, BOOL, TIME, RAW = "string", "bytes", "int", "bool", "time", "raw"
QUANTITY = "quantity"

# Nested messages go at most this deep: the tables have no cycles today, but the bound holds
# whatever is declared later, so no body can make the decoder recurse without end.
MAX_DEPTH = 12

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    repeated: bool = False
    # A pointer in Go (`*bool`, `*int64`): a zero value was set on purpose and is kept. Other
    # zero scalars are dropped, as Go's JSON encoding omits them.
    optional: bool = False


@dataclass(frozen=True, eq=False)
class Message:
    name: str
    fields: dict[int, Field] = field(default_factory=dict)
    # A map entry (key = 1, value = 2): the field holding it becomes a JSON object.
    is_map: bool = False
    # A wrapper whose JSON form is this one (repeated) field alone, e.g. ExtraValue.
    unwrap: str | None = None


FieldType: TypeAlias = str | Message


def message(name: str, *entries: tuple[int, str, FieldType] | tuple[int, Field]) -> Message:
    """A message from (number, JSON name, type) triples or (number, Field) pairs."""
    table: dict[int, Field] = {}
    for entry in entries:
        if len(entry) == 2:
            table[entry[0]] = entry[1]
        else:
            table[entry[0]] = Field(entry[1], entry[2])
    return Message(name, table)


def map_of(value: FieldType) -> Message:
    """map<string, value>: on the wire a repeated entry message {key = 1, value = 2}."""
    entry = {1: Field("key", STRING), 2: Field("value", value, optional=True)}
    return Message("MapEntry", entry, is_map=True)


def repeated(name: str, type_: FieldType) -> Field:
    return Field(name, type_, repeated=True)


def optional(name: str, type_: FieldType) -> Field:
    return Field(name, type_, optional=True)


# Reading the wire format


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise bad_request("malformed protobuf body")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF, position
        shift += 7


def _take(data: bytes, position: int, length: int) -> tuple[bytes, int]:
    end = position + length
    if end > len(data):
        raise bad_request("malformed protobuf body: a field runs past the end")
    return data[position:end], end


def wire_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field: ints for varints, bytes otherwise."""
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise bad_request("malformed protobuf body: field number 0")
        value: int | bytes
        if wire == _VARINT:
            value, position = _varint(data, position)
        elif wire == _LENGTH:
            length, position = _varint(data, position)
            value, position = _take(data, position, length)
        elif wire == _FIXED64:
            value, position = _take(data, position, 8)
        elif wire == _FIXED32:
            value, position = _take(data, position, 4)
        else:  # 3 and 4 are proto2 groups, which Kubernetes never uses; 6 and 7 do not exist
            raise bad_request(f"malformed protobuf body: wire type {wire}")
        yield number, wire, value


# From the wire to JSON values


def decode_message(data: bytes, spec: Message, depth: int = 0) -> dict[str, Any]:
    """The JSON form of one message; fields the table does not declare are skipped, as any
    protobuf reader skips fields newer than its schema."""
    if depth > MAX_DEPTH:
        raise bad_request("malformed protobuf body: messages nested too deeply")
    result: dict[str, Any] = {}
    for number, wire, raw in wire_fields(data):
        declared = spec.fields.get(number)
        if declared is None:
            continue
        value = _value(declared, wire, raw, depth)
        kind = declared.type
        if isinstance(kind, Message) and kind.is_map:
            key, item = value
            result.setdefault(declared.name, {})[key] = item
        elif declared.repeated:
            result.setdefault(declared.name, []).append(value)
        else:
            result[declared.name] = value  # the last one wins, as in protobuf
    return _without_zeros(result, spec)


def _value(declared: Field, wire: int, raw: int | bytes, depth: int) -> Any:
    kind = declared.type
    if kind in (INT, BOOL):
        if wire != _VARINT or not isinstance(raw, int):
            raise _wrong_type(declared)
        return raw != 0 if kind == BOOL else _signed(raw)
    if wire != _LENGTH or not isinstance(raw, bytes):
        raise _wrong_type(declared)
    if kind == STRING:
        return _text(raw)
    if kind == BYTES:
        return base64.b64encode(raw).decode()
    if kind == RAW:
        return raw
    if kind == TIME:
        return _time(decode_message(raw, _TIME, depth + 1))
    if kind == QUANTITY:
        return decode_message(raw, _QUANTITY, depth + 1).get("string", "")
    assert isinstance(kind, Message)
    inner = decode_message(raw, kind, depth + 1)
    if kind.is_map:
        return inner.get("key", ""), inner.get("value", _zero(kind.fields[2].type))
    if kind.unwrap is not None:
        return inner.get(kind.unwrap, [])
    return inner


def _without_zeros(result: dict[str, Any], spec: Message) -> dict[str, Any]:
    """Drop the zero scalars Go would not show in JSON (and could not tell from absent)."""
    for declared in spec.fields.values():
        if declared.optional or declared.repeated or isinstance(declared.type, Message):
            continue
        if declared.name in result and result[declared.name] in ("", 0, False, None):
            del result[declared.name]
    return result


def _zero(kind: FieldType) -> Any:
    if isinstance(kind, Message):
        return [] if kind.unwrap else {}
    return {INT: 0, BOOL: False}.get(kind, "")


def _signed(value: int) -> int:
    """int64 and int32 are two's complement in 64 bits on the wire."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise bad_request("malformed protobuf body: a string is not UTF-8") from None


def _time(parts: dict[str, Any]) -> str | None:
    """RFC 3339 in seconds, as meta/v1 Time is in JSON; the zero time is null."""
    seconds = parts.get("seconds", 0)
    if not seconds and not parts.get("nanos", 0):
        return None
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise bad_request("malformed protobuf body: a time out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _wrong_type(declared: Field) -> Exception:
    return bad_request(f"malformed protobuf body: {declared.name} has the wrong wire type")


# The messages (field numbers from k8s.io/api and k8s.io/apimachinery generated.proto)

_TIME = message("Time", (1, "seconds", INT), (2, "nanos", INT))
_QUANTITY = message("Quantity", (1, "string", STRING))

OWNER_REFERENCE = message(
    "OwnerReference",
    (1, "kind", STRING),
    (3, "name", STRING),
    (4, "uid", STRING),
    (5, "apiVersion", STRING),
    (6, optional("controller", BOOL)),
    (7, optional("blockOwnerDeletion", BOOL)),
)

OBJECT_META = message(
    "ObjectMeta",
    (1, "name", STRING),
    (2, "generateName", STRING),
    (3, "namespace", STRING),
    (4, "selfLink", STRING),
    (5, "uid", STRING),
    (6, "resourceVersion", STRING),
    (7, "generation", INT),
    (8, "creationTimestamp", TIME),
    (9, "deletionTimestamp", TIME),
    (10, optional("deletionGracePeriodSeconds", INT)),
    (11, "labels", map_of(STRING)),
    (12, "annotations", map_of(STRING)),
    (13, repeated("ownerReferences", OWNER_REFERENCE)),
    (14, repeated("finalizers", STRING)),
    # 17, managedFields, is left out: its fieldsV1 is raw JSON, and the server keeps its own.
)

TYPE_META = message("TypeMeta", (1, "apiVersion", STRING), (2, "kind", STRING))

# runtime.Unknown: what follows the magic number in every body.
UNKNOWN = message(
    "Unknown",
    (1, "typeMeta", TYPE_META),
    (2, "raw", RAW),
    (3, "contentEncoding", STRING),
    (4, "contentType", STRING),
)

OBJECT_REFERENCE = message(
    "ObjectReference",
    (1, "kind", STRING),
    (2, "namespace", STRING),
    (3, "name", STRING),
    (4, "uid", STRING),
    (5, "apiVersion", STRING),
    (6, "resourceVersion", STRING),
    (7, "fieldPath", STRING),
)
LOCAL_OBJECT_REFERENCE = message("LocalObjectReference", (1, "name", STRING))

SECRET = message(
    "Secret",
    (1, "metadata", OBJECT_META),
    (2, "data", map_of(BYTES)),
    (3, "type", STRING),
    (4, "stringData", map_of(STRING)),
    (5, optional("immutable", BOOL)),
)
CONFIG_MAP = message(
    "ConfigMap",
    (1, "metadata", OBJECT_META),
    (2, "data", map_of(STRING)),
    (3, "binaryData", map_of(BYTES)),
    (4, optional("immutable", BOOL)),
)
SERVICE_ACCOUNT = message(
    "ServiceAccount",
    (1, "metadata", OBJECT_META),
    (2, repeated("secrets", OBJECT_REFERENCE)),
    (3, repeated("imagePullSecrets", LOCAL_OBJECT_REFERENCE)),
    (4, optional("automountServiceAccountToken", BOOL)),
)
NAMESPACE_CONDITION = message(
    "NamespaceCondition",
    (1, "type", STRING),
    (2, "status", STRING),
    (4, "lastTransitionTime", TIME),
    (5, "reason", STRING),
    (6, "message", STRING),
)
NAMESPACE = message(
    "Namespace",
    (1, "metadata", OBJECT_META),
    (2, "spec", message("NamespaceSpec", (1, repeated("finalizers", STRING)))),
    (
        3,
        "status",
        message(
            "NamespaceStatus",
            (1, "phase", STRING),
            (2, repeated("conditions", NAMESPACE_CONDITION)),
        ),
    ),
)

# `kubectl create quota NAME --hard=...` (the status is the server's: not read)
SCOPED_RESOURCE_SELECTOR_REQUIREMENT = message(
    "ScopedResourceSelectorRequirement",
    (1, "scopeName", STRING),
    (2, "operator", STRING),
    (3, repeated("values", STRING)),
)
RESOURCE_QUOTA = message(
    "ResourceQuota",
    (1, "metadata", OBJECT_META),
    (
        2,
        "spec",
        message(
            "ResourceQuotaSpec",
            (1, "hard", map_of(QUANTITY)),
            (2, repeated("scopes", STRING)),
            (
                3,
                "scopeSelector",
                message(
                    "ScopeSelector",
                    (1, repeated("matchExpressions", SCOPED_RESOURCE_SELECTOR_REQUIREMENT)),
                ),
            ),
        ),
    ),
)

# rbac.authorization.k8s.io/v1

POLICY_RULE = message(
    "PolicyRule",
    (1, repeated("verbs", STRING)),
    (2, repeated("apiGroups", STRING)),
    (3, repeated("resources", STRING)),
    (4, repeated("resourceNames", STRING)),
    (5, repeated("nonResourceURLs", STRING)),
)
LABEL_SELECTOR_REQUIREMENT = message(
    "LabelSelectorRequirement",
    (1, "key", STRING),
    (2, "operator", STRING),
    (3, repeated("values", STRING)),
)
LABEL_SELECTOR = message(
    "LabelSelector",
    (1, "matchLabels", map_of(STRING)),
    (2, repeated("matchExpressions", LABEL_SELECTOR_REQUIREMENT)),
)
ROLE = message("Role", (1, "metadata", OBJECT_META), (2, repeated("rules", POLICY_RULE)))
CLUSTER_ROLE = message(
    "ClusterRole",
    (1, "metadata", OBJECT_META),
    (2, repeated("rules", POLICY_RULE)),
    (
        3,
        "aggregationRule",
        message("AggregationRule", (1, repeated("clusterRoleSelectors", LABEL_SELECTOR))),
    ),
)
SUBJECT = message(
    "Subject",
    (1, "kind", STRING),
    (2, "apiGroup", STRING),
    (3, "name", STRING),
    (4, "namespace", STRING),
)
ROLE_REF = message("RoleRef", (1, "apiGroup", STRING), (2, "kind", STRING), (3, "name", STRING))
ROLE_BINDING = message(
    "RoleBinding",
    (1, "metadata", OBJECT_META),
    (2, repeated("subjects", SUBJECT)),
    (3, "roleRef", ROLE_REF),
)

# authorization.k8s.io/v1 (the status of a review is the server's: not read)

SELECTOR_REQUIREMENT = message(
    "SelectorRequirement",
    (1, "key", STRING),
    (2, "operator", STRING),
    (3, repeated("values", STRING)),
)
SELECTOR_ATTRIBUTES = message(
    "SelectorAttributes",
    (1, "rawSelector", STRING),
    (2, repeated("requirements", SELECTOR_REQUIREMENT)),
)
RESOURCE_ATTRIBUTES = message(
    "ResourceAttributes",
    (1, "namespace", STRING),
    (2, "verb", STRING),
    (3, "group", STRING),
    (4, "version", STRING),
    (5, "resource", STRING),
    (6, "subresource", STRING),
    (7, "name", STRING),
    (8, "fieldSelector", SELECTOR_ATTRIBUTES),
    (9, "labelSelector", SELECTOR_ATTRIBUTES),
)
NON_RESOURCE_ATTRIBUTES = message("NonResourceAttributes", (1, "path", STRING), (2, "verb", STRING))
EXTRA_VALUE = Message("ExtraValue", {1: repeated("items", STRING)}, unwrap="items")
SELF_SUBJECT_ACCESS_REVIEW = message(
    "SelfSubjectAccessReview",
    (1, "metadata", OBJECT_META),
    (
        2,
        "spec",
        message(
            "SelfSubjectAccessReviewSpec",
            (1, "resourceAttributes", RESOURCE_ATTRIBUTES),
            (2, "nonResourceAttributes", NON_RESOURCE_ATTRIBUTES),
        ),
    ),
)
SUBJECT_ACCESS_REVIEW = message(
    "SubjectAccessReview",
    (1, "metadata", OBJECT_META),
    (
        2,
        "spec",
        message(
            "SubjectAccessReviewSpec",
            (1, "resourceAttributes", RESOURCE_ATTRIBUTES),
            (2, "nonResourceAttributes", NON_RESOURCE_ATTRIBUTES),
            (3, "user", STRING),
            (4, repeated("groups", STRING)),
            (5, "extra", map_of(EXTRA_VALUE)),
            (6, "uid", STRING),
        ),
    ),
)
SELF_SUBJECT_RULES_REVIEW = message(
    "SelfSubjectRulesReview",
    (1, "metadata", OBJECT_META),
    (2, "spec", message("SelfSubjectRulesReviewSpec", (1, "namespace", STRING))),
)

# authentication.k8s.io/v1

TOKEN_REVIEW = message(
    "TokenReview",
    (1, "metadata", OBJECT_META),
    (
        2,
        "spec",
        message("TokenReviewSpec", (1, "token", STRING), (2, repeated("audiences", STRING))),
    ),
)
BOUND_OBJECT_REFERENCE = message(
    "BoundObjectReference",
    (1, "kind", STRING),
    (2, "apiVersion", STRING),
    (3, "name", STRING),
    (4, "uid", STRING),
)
TOKEN_REQUEST = message(
    "TokenRequest",
    (1, "metadata", OBJECT_META),
    (
        2,
        "spec",
        message(
            "TokenRequestSpec",
            (1, repeated("audiences", STRING)),
            (3, "boundObjectRef", BOUND_OBJECT_REFERENCE),
            (4, optional("expirationSeconds", INT)),
        ),
    ),
)
SELF_SUBJECT_REVIEW = message("SelfSubjectReview", (1, "metadata", OBJECT_META))

_AUTHZ, _AUTHN, _RBAC = (
    "authorization.k8s.io/v1",
    "authentication.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
)

# (apiVersion, kind) of the body -> its message.
KINDS: dict[tuple[str, str], Message] = {
    ("v1", "Secret"): SECRET,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "ResourceQuota"): RESOURCE_QUOTA,
    (_RBAC, "Role"): ROLE,
    (_RBAC, "ClusterRole"): CLUSTER_ROLE,
    (_RBAC, "RoleBinding"): ROLE_BINDING,
    (_RBAC, "ClusterRoleBinding"): ROLE_BINDING,
    (_AUTHZ, "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
    (_AUTHZ, "SubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    (_AUTHZ, "LocalSubjectAccessReview"): SUBJECT_ACCESS_REVIEW,
    (_AUTHZ, "SelfSubjectRulesReview"): SELF_SUBJECT_RULES_REVIEW,
    (_AUTHN, "TokenReview"): TOKEN_REVIEW,
    (_AUTHN, "TokenRequest"): TOKEN_REQUEST,
    (_AUTHN, "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded request object of a kind we know how to read."""
    if not body.startswith(MAGIC):
        raise bad_request("a protobuf body must start with the Kubernetes magic number")
    envelope = decode_message(body[len(MAGIC) :], UNKNOWN)
    if envelope.get("contentEncoding"):
        raise bad_request("protobuf bodies with a content encoding are not supported")
    type_meta = envelope.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    spec = KINDS.get((api_version, kind))
    if spec is None:
        raise bad_request(
            f"protobuf bodies of kind {kind or '(none)'} in {api_version or '(no version)'}"
            " are not supported; send JSON"
        )
    return {
        "apiVersion": api_version,
        "kind": kind,
        **decode_message(envelope.get("raw", b""), spec),
    }
