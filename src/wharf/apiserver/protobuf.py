"""Just enough of Kubernetes' protobuf encoding to read the review requests that kubectl's
typed clients send only as protobuf (auth can-i, auth whoami, create token). Answers go back as
JSON, which those clients accept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import bad_request

MAGIC = b"k8s\x00"

Fields = dict[int, list[Any]]


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise bad_request("malformed protobuf body")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def fields(data: bytes) -> Fields:
    """Field number to its values: ints for varints, bytes for length-delimited fields."""
    found: Fields = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise bad_request("malformed protobuf body")
            value, position = data[position : position + length], position + length
        elif wire == 1:
            value, position = data[position : position + 8], position + 8
        elif wire == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise bad_request("malformed protobuf body")
        found.setdefault(number, []).append(value)
    return found


def _bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise bad_request("malformed protobuf body")
    return value


def _decode(value: Any) -> str:
    try:
        return _bytes(value).decode()
    except UnicodeDecodeError:
        raise bad_request("malformed protobuf body: a string is not UTF-8") from None


def _text(found: Fields, number: int) -> str:
    values = found.get(number)
    return _decode(values[-1]) if values else ""


def _texts(found: Fields, number: int) -> list[str]:
    return [_decode(v) for v in found.get(number, [])]


def _message(found: Fields, number: int) -> Fields | None:
    values = found.get(number)
    return fields(_bytes(values[-1])) if values else None


def _meta(found: Fields) -> dict[str, Any]:
    meta = _message(found, 1) or {}
    return {"name": _text(meta, 1)} if _text(meta, 1) else {}


def _resource_attributes(found: Fields) -> dict[str, Any]:
    names = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
    return {name: _text(found, i + 1) for i, name in enumerate(names) if _text(found, i + 1)}


def _access_spec(spec: Fields) -> dict[str, Any]:
    result: dict[str, Any] = {}
    resource = _message(spec, 1)
    if resource is not None:
        result["resourceAttributes"] = _resource_attributes(resource)
    non_resource = _message(spec, 2)
    if non_resource is not None:
        result["nonResourceAttributes"] = {
            "path": _text(non_resource, 1),
            "verb": _text(non_resource, 2),
        }
    return result


def _self_access(found: Fields) -> dict[str, Any]:
    return {"metadata": _meta(found), "spec": _access_spec(_message(found, 2) or {})}


def _subject_access(found: Fields) -> dict[str, Any]:
    spec = _message(found, 2) or {}
    body = _access_spec(spec)
    body.update(user=_text(spec, 3), groups=_texts(spec, 4), uid=_text(spec, 6))
    return {"metadata": _meta(found), "spec": body}


def _self_rules(found: Fields) -> dict[str, Any]:
    spec = _message(found, 2) or {}
    return {"metadata": _meta(found), "spec": {"namespace": _text(spec, 1)}}


def _token_review(found: Fields) -> dict[str, Any]:
    spec = _message(found, 2) or {}
    return {
        "metadata": _meta(found),
        "spec": {"token": _text(spec, 1), "audiences": _texts(spec, 2)},
    }


def _token_request(found: Fields) -> dict[str, Any]:
    spec = _message(found, 2) or {}
    body: dict[str, Any] = {"audiences": _texts(spec, 1)}
    if spec.get(4):
        seconds = spec[4][-1]
        if not isinstance(seconds, int):
            raise bad_request("malformed protobuf body")
        body["expirationSeconds"] = seconds
    return {"metadata": _meta(found), "spec": body}


def _empty(found: Fields) -> dict[str, Any]:
    return {"metadata": _meta(found)}


DECODERS: dict[str, Callable[[Fields], dict[str, Any]]] = {
    "SelfSubjectAccessReview": _self_access,
    "SubjectAccessReview": _subject_access,
    "LocalSubjectAccessReview": _subject_access,
    "SelfSubjectRulesReview": _self_rules,
    "TokenReview": _token_review,
    "TokenRequest": _token_request,
    "SelfSubjectReview": _empty,
}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded request object we know how to read."""
    if not body.startswith(MAGIC):
        raise bad_request("a protobuf body must start with the Kubernetes magic number")
    envelope = fields(body[len(MAGIC) :])
    type_meta = _message(envelope, 1) or {}
    api_version, kind = _text(type_meta, 1), _text(type_meta, 2)
    decoder = DECODERS.get(kind)
    if decoder is None:
        raise bad_request(
            f"protobuf bodies of kind {kind or '(none)'} are not supported; send JSON"
        )
    raw = _bytes(envelope.get(2, [b""])[-1])
    return {"apiVersion": api_version, "kind": kind, **decoder(fields(raw))}
