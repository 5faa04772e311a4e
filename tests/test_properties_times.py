"""Properties of the API's date-time check (`wharf.apiserver.shapes.is_date_time`): every time it
takes is an RFC 3339 date-time (the oracle: rfc3339_validator, which the OpenAPI format check of
clients uses), so no time the server took and echoes back breaks its own documents; and times
as the server writes them are taken. WHARF_PROPERTY_EXAMPLES sets the examples per test."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from rfc3339_validator import validate_rfc3339  # type: ignore[import-untyped]

from wharf.apiserver.shapes import is_date_time

EXAMPLES = int(os.environ.get("WHARF_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True)

# Texts shaped like date-times, every field free to be out of range.
NEAR_TIMES = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?",
    fullmatch=True,
)


@PROPERTY
@given(st.one_of(NEAR_TIMES, st.text(max_size=40)))
def test_every_time_taken_is_rfc3339(text: str) -> None:
    if is_date_time(text):
        assert validate_rfc3339(text), text


@PROPERTY
@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_times_as_the_server_writes_them_are_taken(moment: datetime) -> None:
    written = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert is_date_time(written), written
    assert is_date_time(moment.isoformat(timespec="microseconds")), moment


def test_out_of_range_fields_are_refused() -> None:
    for text in (
        "2024-01-01T12:99:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T12:00:60Z",
        "2024-01-01T12:00:00+25:00",
        "2024-01-01 12:00:00Z",
        "",
    ):
        assert not is_date_time(text), text
