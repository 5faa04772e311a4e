"""Kubernetes conventions that every part shares: timestamps and uids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def now() -> str:
    return format_time(datetime.now(UTC))


def new_uid() -> str:
    return str(uuid.uuid4())
