"""Logging, configured once for the whole process: structlog's lines and the standard library's
(aiohttp's own) go through the same processors, and every line is one line.

An error is logged as its exception's type and the place it was raised, never its message or a
traceback: messages of database errors quote the statement's parameters (a Secret's value), and
a rich traceback renders local variables, slowly, on the event loop."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from .metrics import METRICS

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = web.RequestKey("request_id", str)
# Who made the request, once authentication knows: for the access log.
USER_NAME = web.RequestKey("user_name", str)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: Any) -> ExcInfo | None:
    if value is True:
        value = sys.exc_info()
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and value and value[0] is not None:
        return value
    return None


def _place(frame: traceback.FrameSummary) -> str:
    folder, _, name = frame.filename.rpartition("/")
    return f"{folder.rpartition('/')[2]}/{name}:{frame.lineno} in {frame.name}"


def summarize_exception(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace `exc_info` by the exception's type and where it was raised (and the innermost
    place in Wharf's own code, when that is elsewhere)."""
    found = _exc_info(event.pop("exc_info", None))
    if found is None:
        return event
    kind, _value, tb = found
    event["error"] = f"{kind.__module__}.{kind.__qualname__}"
    frames = traceback.extract_tb(tb)
    if frames:
        event["at"] = _place(frames[-1])
        ours = [f for f in frames if "/wharf/" in f.filename]
        if ours and ours[-1] is not frames[-1]:
            event["in"] = _place(ours[-1])
    return event


# OpenShift's log levels: Normal is INFO; the others all show what Debug shows.
LEVELS = {"Normal": "INFO", "Debug": "DEBUG", "Trace": "DEBUG", "TraceAll": "DEBUG"}


def configure(level: str = "Normal", json_lines: bool = False) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        summarize_exception,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    global _ACCESS_LINES
    _ACCESS_LINES = _Lines(logging.getLogger(ACCESS_LOGGER), [*shared, renderer], handler)
    set_level(level)
    # Alembic tells of every migration step at INFO: only its warnings are worth a line.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def set_level(level: str, logger: str = "") -> None:
    """The level of every logger from now on (or of `logger` and those below it), by
    OpenShift's name (the operator calls this when the Config's logLevel or operatorLogLevel
    changes)."""
    logging.getLogger(logger).setLevel(LEVELS.get(level, level))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class InFlight:
    """How many requests an app is answering: what a stopping server waits for."""

    count: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def enter(self) -> None:
        self.count += 1
        self.idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if not self.count:
            self.idle.set()


IN_FLIGHT = web.AppKey("in_flight", InFlight)


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request gets an id, bound to each line logged while it runs and sent back in a
    header, so that a user's error answer and the server's log line can be matched."""
    request_id = uuid.uuid4().hex[:16]
    request[_REQUEST_ID] = request_id
    tally = request.app[IN_FLIGHT]
    tally.enter()
    try:
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            return await handler(request)
    finally:
        tally.leave()


async def _send_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.get(_REQUEST_ID)
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id


def request_id_of(request: web.Request) -> str:
    return str(request.get(_REQUEST_ID, ""))


ACCESS_LOGGER = "wharf.access"


@dataclass
class _Lines:
    """Lines of one logger made by the processors and the renderer of every other line and
    written by the same handler, without the round trip through structlog's bound logger and
    a LogRecord: that trip was half the cost of an access line, and an access line a tenth of
    a small request's."""

    logger: logging.Logger
    processors: list[Any]
    handler: logging.StreamHandler[Any]

    def info(self, event: str, **fields: Any) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        rendered: Any = {**fields, "event": event}  # in the order structlog gives
        for processor in self.processors:
            rendered = processor(self.logger, "info", rendered)
        self.handler.acquire()
        try:
            self.handler.stream.write(str(rendered) + self.handler.terminator)
            self.handler.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr: as logging's handlers do, never fail a request
        finally:
            self.handler.release()


_ACCESS_LINES: _Lines | None = None


class AccessLog(AbstractAccessLogger):
    """Called by aiohttp once each answer is sent: the request's metrics, and one access-log
    line (at INFO). Never the query string (it may carry a code or a token), never a header."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        app = getattr(request, "app", None)
        if app is not None and METRICS in app:
            app[METRICS].observe(request, response, time)
        if _ACCESS_LINES is None:
            return
        _ACCESS_LINES.info(
            "request",
            request_id=request.get(_REQUEST_ID, ""),
            method=request.method,
            path=request.path,
            status=response.status,
            bytes_in=request.content_length or 0,
            bytes_out=response.body_length,
            ms=round(time * 1000, 2),
            user=request.get(USER_NAME, ""),
        )

    @property
    def enabled(self) -> bool:
        return True  # metrics are counted whatever the log level


def install(app: web.Application) -> None:
    """Request ids on `app`: the outermost middleware, so every answer carries one."""
    app[IN_FLIGHT] = InFlight()
    app.middlewares.insert(0, request_ids)
    app.on_response_prepare.append(_send_request_id)
