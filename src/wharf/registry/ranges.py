"""Which bytes of a blob a request gets, as RFC 9110 says for a representation whose strong
ETag is its digest: If-Match, If-None-Match, If-Range and one byte Range.

Blobs never change, so modification dates say nothing: Last-Modified is not sent, and the date
forms of the conditions are ignored (an If-Range date never matches, so its Range is ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.helpers import ETAG_ANY, ETag

from .errors import RegistryError

# One int-range or suffix-range of bytes (the unit is case-insensitive). Anything else (another
# unit, several ranges, bad syntax) is ignored, as RFC 9110 allows: the whole blob is served.
# ASCII-only case folding: the unit is a token, and a Unicode match would take "byte\u017f"
# (long s) for "bytes".
_BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE | re.ASCII)


@dataclass(frozen=True, slots=True)
class Selection:
    """The answer's status (200, 206 or 304) and the bytes it carries."""

    status: int
    offset: int = 0
    count: int = 0


def select(request: web.BaseRequest, digest: str, size: int) -> Selection:
    """What to answer a GET or HEAD of the `size`-byte blob `digest`; raises the spec's error
    for a failed If-Match (412) or an unsatisfiable range (416)."""
    if_match = request.if_match
    if if_match is not None and not _matches(digest, if_match, weak=False):
        raise RegistryError("BLOB_UNKNOWN", "If-Match names another blob", status=412)
    if_none_match = request.if_none_match
    if if_none_match is not None and _matches(digest, if_none_match, weak=True):
        return Selection(304)
    header = request.headers.get(hdrs.RANGE)
    # GET is the only method ranges are defined for; any other ignores them.
    if header is None or request.method != hdrs.METH_GET or not _if_range_holds(request, digest):
        return Selection(200, 0, size)
    wanted = byte_range(header, size)
    return Selection(200, 0, size) if wanted is None else Selection(206, *wanted)


def _matches(digest: str, etags: tuple[ETag, ...], *, weak: bool) -> bool:
    return any(etag.value in (digest, ETAG_ANY) for etag in etags if weak or not etag.is_weak)


def _if_range_holds(request: web.BaseRequest, digest: str) -> bool:
    """Whether If-Range (absent, or a strong match of the ETag) lets the Range apply."""
    condition = request.headers.get(hdrs.IF_RANGE)
    return condition is None or condition.strip() == f'"{digest}"'


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(offset, count) of the one byte range `header` asks of `size` bytes; None to ignore
    the header. Raises 416 when the range is valid but no byte of it exists, or when its last
    position comes before its first."""
    match = _BYTE_RANGE.fullmatch(header)
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:  # the last N bytes
        suffix = _position(match[2], size)
        if suffix == 0:
            raise unsatisfiable(size)
        # An empty blob has no byte range to name in a Content-Range: serve it whole.
        return None if size == 0 else (max(size - suffix, 0), min(suffix, size))
    first = _position(match[1], size)
    last = _position(match[2], size) if match[2] else size - 1
    if first >= size or last < first:
        raise unsatisfiable(size)
    return first, min(last, size - 1) - first + 1


def _position(digits: str, size: int) -> int:
    """The number `digits` spell, or `size + 1` for any number past the blob: every position
    beyond the last byte means the same, and int() is kept away from strings of thousands of
    digits (it refuses them). The cap depends on the size, not on a fixed count of digits, so
    that no position within an int64 size is mistaken for a smaller one."""
    digits = digits.lstrip("0") or "0"
    beyond = size + 1
    if len(digits) > len(str(beyond)):
        return beyond
    return min(int(digits), beyond)


def unsatisfiable(size: int) -> RegistryError:
    # The spec has no code of its own for this; SIZE_INVALID is the nearest: the range asks
    # for bytes past the blob's size.
    return RegistryError(
        "SIZE_INVALID",
        f"the range is not satisfiable: the blob has {size} bytes",
        status=416,
        headers={hdrs.CONTENT_RANGE: f"bytes */{size}"},
    )
