"""Request bodies: read whole (up to Kubernetes' limit), then decoded as JSON, YAML or the
protobuf of the kinds kubectl sends that way. Large bodies are decoded off the event loop, so one
client's 3 MiB document cannot stall everybody else's requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import yaml
from aiohttp import web

from . import protobuf
from .errors import ApiError, bad_request
from .meta import Object

MAX_BODY = 3 * 1024 * 1024  # Kubernetes refuses request bodies over 3 MiB
# Bodies up to this size decode in well under a millisecond: cheaper here than in a thread.
INLINE_DECODE_BYTES = 64 * 1024
PROTOBUF = "application/vnd.kubernetes.protobuf"

# libyaml's loader when PyYAML was built with it: about ten times faster than pure Python.
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def too_large() -> ApiError:
    return ApiError(413, "the request body is too large", "RequestEntityTooLarge")


async def read_body(request: web.Request) -> bytes:
    """The whole body, whether sent with a Content-Length or chunked; 413 beyond MAX_BODY.
    (`request.content.read(n)` returns only what happens to be buffered, which cut bodies.)"""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_object(request: web.Request) -> Object:
    """The body as an object, in whichever encoding its Content-Type names."""
    raw = await read_body(request)
    content_type = request.content_type
    if content_type == PROTOBUF:
        decoded = await _off_loop(raw, protobuf.decode, raw)
    else:
        decoded = await decode_body(raw, "yaml" in content_type, "the body of the request")
    if not isinstance(decoded, dict):
        raise bad_request("the body of the request must be an object")
    return decoded


async def decode_body(raw: bytes, as_yaml: bool, what: str) -> Any:
    """JSON, or YAML without aliases; 400 for anything that does not decode."""
    return await _off_loop(raw, _decode, raw, as_yaml, what)


async def _off_loop(raw: bytes, fn: Any, *args: Any) -> Any:
    if len(raw) <= INLINE_DECODE_BYTES:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def _decode(raw: bytes, as_yaml: bool, what: str) -> Any:
    try:
        if not as_yaml:
            return json.loads(raw)
        value = yaml.load(raw, Loader=_YamlLoader)  # a safe loader: no Python objects
        _refuse_aliases(value)
        return value
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"{what} could not be decoded: {_first_line(exc)}") from None
    except RecursionError:
        raise bad_request(f"{what} is nested too deeply") from None


def _refuse_aliases(value: Any) -> None:
    """YAML aliases let a small body expand without bound once it is encoded again: refuse any
    list or mapping that appears twice (an alias is the same object as its anchor)."""
    seen: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if id(item) in seen:
            raise yaml.YAMLError("YAML aliases are not allowed")
        seen.add(id(item))
        pending.extend(item.values() if isinstance(item, dict) else item)


def _first_line(exc: Exception) -> str:
    """Decoders' messages can span lines and quote the body: keep the first line, bounded."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
