"""Repository names and tags, with the grammar of the OCI distribution spec."""

from __future__ import annotations

import re

# Path components are lowercase alphanumerics joined by '.', '_', '__' or runs of '-';
# this grammar alone already rules out '..', empty components and absolute paths.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN = rf"{_COMPONENT}(?:/{_COMPONENT})*"
NAME_RE = re.compile(NAME_PATTERN)
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

# Distribution caps names at 255 characters, so that a name plus host fits in a reference.
MAX_NAME_LENGTH = 255


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and NAME_RE.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None
