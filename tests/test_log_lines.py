"""Access lines take a shorter path than other log lines (no bound logger, no LogRecord): they
must still be the very lines that path would write, in either format, and obey the level."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import structlog

from wharf import logs

FIELDS = {
    "request_id": "5b7e0c1a00000001",
    "method": "GET",
    "path": "/v2/team/app/blobs/sha256:00",
    "status": 200,
    "bytes_in": 0,
    "bytes_out": 5,
    "ms": 0.52,
    "user": "some one",
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+Z")


@pytest.fixture(autouse=True)
def configured_again() -> Iterator[None]:
    yield
    structlog.contextvars.clear_contextvars()
    logs.configure()  # on the real stderr again, not on the test's captured one


@pytest.mark.parametrize("json_lines", [False, True], ids=["console", "json"])
def test_an_access_line_is_the_line_structlog_would_write(
    capsys: pytest.CaptureFixture[str], json_lines: bool
) -> None:
    logs.configure(json_lines=json_lines)
    structlog.contextvars.bind_contextvars(worker=3)
    structlog.get_logger(logs.ACCESS_LOGGER).info("request", **FIELDS)
    assert logs._ACCESS_LINES is not None
    logs._ACCESS_LINES.info("request", **FIELDS)
    through_structlog, direct = TIMESTAMP.sub("T", capsys.readouterr().err).splitlines()
    assert direct == through_structlog
    assert "worker" in direct and "some one" in direct


def test_access_lines_obey_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(level="WARNING")
    assert logs._ACCESS_LINES is not None
    assert not logs._ACCESS_LINES.logger.isEnabledFor(20)
    logs._ACCESS_LINES.info("request", **FIELDS)
    assert capsys.readouterr().err == ""
    logs.configure(level="Normal")
    logs._ACCESS_LINES.info("request", **FIELDS)
    assert capsys.readouterr().err.count("\n") == 1
