"""JSON that a client sent (manifests, image configs): the one place it is decoded."""

from __future__ import annotations

import json
import re
from typing import Any

# Manifests and image configs nest a handful of levels. Anything deeper is refused, whatever
# the decoder could manage: a document kept is encoded, validated and walked again later, in
# places whose stack is already deep, and must never fail there.
MAX_DEPTH = 64

# A surrogate left in a decoded string came from a `\uXXXX` escape without its pair (pairs
# become one character). Such a string cannot be encoded as UTF-8, so a document holding one
# could be accepted and then fail wherever it is stored or served; I-JSON (RFC 7493) rules
# them out.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidJson(ValueError):
    """Bytes that are not a JSON document the registry takes."""


def decode(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The document in `data`; InvalidJson when it is not JSON, nests deeper than allowed, or
    holds a string that is not Unicode text."""
    try:
        # UTF-8 only (RFC 8259 §8.1): json.loads would guess UTF-16 and UTF-32 from bytes, and
        # skip a byte order mark, but the clients that pull these documents back refuse them.
        # Given a str, json.loads refuses a leading BOM itself.
        document = json.loads(data.decode("utf-8"), parse_constant=_not_a_number)
    # ValueError covers syntax errors, bytes that are no UTF-8, a BOM, integers longer than
    # int() converts and the constants refused below; RecursionError is the decoder's own
    # nesting limit.
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"not valid JSON: {str(exc)[:200]}") from None
    _check(document, max_depth)
    return document


def _not_a_number(name: str) -> Any:
    """Python's decoder takes NaN, Infinity and -Infinity; JSON (RFC 8259) has no such
    numbers, and a document holding them could not be encoded as JSON again."""
    raise ValueError(f"{name} is not a JSON value")


def _check(document: Any, limit: int) -> None:
    """Refuse arrays and objects nested more than `limit` levels, and lone surrogates in
    strings and keys; walked level by level (no recursion, so no depth can break the check
    itself)."""
    level = [document]  # the values at one depth, the document itself at depth 0
    for _ in range(limit):
        children: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                _check_strings(node.keys())
                children += node.values()
            elif isinstance(node, list):
                children += node
            elif isinstance(node, str):
                _check_strings((node,))
        if not children:
            return
        level = children
    if any(isinstance(node, dict | list) for node in level):
        raise InvalidJson(f"JSON nested deeper than {limit} levels")
    for node in level:  # the strings at the deepest level allowed
        if isinstance(node, str):
            _check_strings((node,))


def _check_strings(strings: Any) -> None:
    for text in strings:
        if _LONE_SURROGATE.search(text):
            raise InvalidJson("JSON string with a lone surrogate (\\ud800-\\udfff)")
