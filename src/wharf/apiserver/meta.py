"""Object metadata: names, uids, timestamps, label and field selectors."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from ..kube import new_uid, now
from .errors import bad_request

__all__ = ["new_uid", "now"]

Object = dict[str, Any]

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def label_name_problem(name: str) -> str | None:
    return _name_problem(name, DNS1123_LABEL, 63, "a lowercase RFC 1123 label")


def subdomain_problem(name: str) -> str | None:
    return _name_problem(name, DNS1123_SUBDOMAIN, 253, "a lowercase RFC 1123 subdomain")


def path_segment_problem(name: str) -> str | None:
    """Names that only have to be usable in a URL path (roles, users, ...)."""
    if not name:
        return "name is required"
    if len(name) > 253:
        # Every stored name has the same bound (the database's name column), whatever its kind.
        return f'Invalid value: "{name[:80]}...": must be no more than 253 characters'
    if name in (".", "..") or "/" in name or "%" in name:
        return f'Invalid value: "{name}": may not be "." or "..", nor contain "/" or "%"'
    if not name.isprintable():
        # The rule a path segment already has (rest.path_segments): a name no URL can address
        # is not made. It also keeps out NUL, which PostgreSQL cannot store, and newlines that
        # would forge lines in logs and in the CLI's tables.
        return f"Invalid value: {name!r}: may not contain control or unprintable characters"
    return None


def _name_problem(name: str, pattern: re.Pattern[str], limit: int, what: str) -> str | None:
    if not name:
        return "name is required"
    if len(name) > limit:
        return f'Invalid value: "{name[:80]}...": must be no more than {limit} characters'
    if not pattern.fullmatch(name):
        return (
            f'Invalid value: "{name}": a name must be {what}: lowercase alphanumerics and "-"'
            ", starting and ending with an alphanumeric character"
        )
    return None


def generate_name(prefix: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(5))


def labels_of(obj: Object) -> Mapping[str, str]:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


Matcher = Callable[[Object], bool]

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_requirements(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Matcher] = []
    for requirement in _split_requirements(selector):
        tests.append(_label_requirement(requirement))
    return lambda obj: all(test(obj) for test in tests)


def _check_label(key: str, values: list[str]) -> None:
    name = key.rsplit("/", 1)[-1]
    if not _LABEL_NAME.fullmatch(name) or any(not _LABEL_VALUE.fullmatch(v) for v in values):
        raise bad_request(f"unable to parse requirement: invalid label selector {key!r}")


def _label_requirement(text: str) -> Matcher:
    set_match = _SET_RE.match(text)
    if set_match:
        key, op, raw = set_match.groups()
        values = {v.strip() for v in raw.split(",") if v.strip()}
        _check_label(key, list(values))
        if op == "in":
            return lambda obj: labels_of(obj).get(key) in values
        return lambda obj: labels_of(obj).get(key) not in values
    for op in ("!=", "==", "="):
        if op in text:
            key, value = (part.strip() for part in text.split(op, 1))
            _check_label(key, [value])
            if op == "!=":
                return lambda obj: labels_of(obj).get(key) != value
            return lambda obj: labels_of(obj).get(key) == value
    if text.startswith("!"):
        key = text[1:].strip()
        _check_label(key, [])
        return lambda obj: key not in labels_of(obj)
    _check_label(text, [])
    return lambda obj: text in labels_of(obj)


def field_value(obj: Object, path: str) -> str | None:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current if isinstance(current, str) else None


def _field_test(key: str, value: str, negate: bool) -> Matcher:
    def test(obj: Object) -> bool:
        return (field_value(obj, key) == value) != negate

    return test


def field_selector(selector: str | None, supported: frozenset[str]) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Matcher] = []
    for requirement in _split_requirements(selector):
        for op in ("!=", "==", "="):
            if op in requirement:
                key, value = (part.strip() for part in requirement.split(op, 1))
                break
        else:
            raise bad_request(f"invalid field selector {requirement!r}")
        if key not in supported:
            raise bad_request(f'field label not supported: "{key}"')
        tests.append(_field_test(key, value, negate=op == "!="))
    return lambda obj: all(test(obj) for test in tests)
