"""Kubernetes conventions that every part shares: timestamps, uids, merge patches."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def now() -> str:
    return format_time(datetime.now(UTC))


def new_uid() -> str:
    return str(uuid.uuid4())


def merge_patch(document: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: `document` with `patch` applied (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(document) if isinstance(document, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
