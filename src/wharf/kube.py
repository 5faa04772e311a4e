"""Kubernetes conventions that every part shares: timestamps, uids, merge patches."""

from __future__ import annotations

import copy
import re
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


# A Go duration (time.ParseDuration), as metav1.Duration and oc's flags write it: "0", "30s",
# "1h30m".
_DURATION = re.compile(r"0|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")


def duration_seconds(text: str) -> float:
    """The seconds of a Go duration; ValueError when `text` is none."""
    if not _DURATION.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(text))
