"""JSON that a client sent (manifests, image configs): the one place it is decoded."""

from __future__ import annotations

import json
from typing import Any

# Manifests and image configs nest a handful of levels. Anything deeper is refused, whatever
# the decoder could manage: a document kept is encoded, validated and walked again later, in
# places whose stack is already deep, and must never fail there.
MAX_DEPTH = 64


class InvalidJson(ValueError):
    """Bytes that are not a JSON document the registry takes."""


def decode(data: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The document in `data`; InvalidJson when it is not JSON or nests deeper than allowed."""
    try:
        document = json.loads(data)
    # ValueError covers syntax errors, bytes that are no Unicode, and integers longer than
    # int() converts; RecursionError is the decoder's own nesting limit.
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"not valid JSON: {str(exc)[:200]}") from None
    if _deeper_than(document, max_depth):
        raise InvalidJson(f"JSON nested deeper than {max_depth} levels")
    return document


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels, walked level by level (no
    recursion, so no depth can break the check itself)."""
    level = [document]  # the values at one depth, the document itself at depth 0
    for _ in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, dict | list) for node in level)
