"""Prometheus metrics, in one place: the registry's under the names and labels of OpenShift's
registry (`imageregistry_*`, summaries as there: Python's client keeps their count and sum,
not their quantiles), the API's as Kubernetes names its own (`apiserver_*`), and the database's
time. Each app gets its own collector registry and its own exposition endpoint."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What a request did, for its labels: set by the handler that knows (verb and resource on the
# API, the operation on the registry), read when the answer has been sent.
OPERATION = web.RequestKey("metrics_operation", str)
RESOURCE = web.RequestKey("metrics_resource", str)


@dataclass
class RegistryMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "imageregistry_http_requests_total",
            "HTTP requests answered, by status code and method.",
            ["code", "method"],
            registry=r,
        )
        self.duration = Summary(
            "imageregistry_http_request_duration_seconds",
            "Time to answer an HTTP request, by method.",
            ["method"],
            registry=r,
        )
        self.in_flight = Gauge(
            "imageregistry_http_in_flight_requests",
            "HTTP requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.request_size = Summary(
            "imageregistry_http_request_size_bytes", "Size of request bodies.", registry=r
        )
        self.response_size = Summary(
            "imageregistry_http_response_size_bytes", "Size of response bodies.", registry=r
        )
        self.operation_duration = Summary(
            "imageregistry_request_duration_seconds",
            "Time of a registry operation (blob, manifest, upload, listing), by operation.",
            ["operation"],
            registry=r,
        )
        self.storage_duration = Summary(
            "imageregistry_storage_duration_seconds",
            "Time of a storage call, by operation.",
            ["operation"],
            registry=r,
        )
        self.storage_errors = Counter(
            "imageregistry_storage_errors_total",
            "Storage calls that failed, by operation and error code.",
            ["operation", "code"],
            registry=r,
        )
        # Pull-through: Hit when a blob an imported image names was held already (and only
        # linked), Miss when it had to be fetched upstream; upstream calls by registry host.
        self.pullthrough_cache = Counter(
            "imageregistry_pullthrough_blobstore_cache_requests_total",
            "Pull-through lookups of blobs, by whether the registry held them (Hit, Miss).",
            ["type"],
            registry=r,
        )
        self.pullthrough_duration = Summary(
            "imageregistry_pullthrough_repository_duration_seconds",
            "Time of a call to an upstream registry, by registry and operation.",
            ["registry", "operation"],
            registry=r,
        )
        self.pullthrough_errors = Counter(
            "imageregistry_pullthrough_repository_errors_total",
            "Calls to an upstream registry that failed, by registry, operation and error code.",
            ["registry", "operation", "code"],
            registry=r,
        )

    def observe(self, request: BaseRequest, response: StreamResponse, seconds: float) -> None:
        method = request.method
        self.requests.labels(str(response.status), method).inc()
        self.duration.labels(method).observe(seconds)
        self.request_size.observe(request.content_length or 0)
        self.response_size.observe(response.body_length)
        operation = request.get(OPERATION) or _handler_name(request)
        if operation:
            self.operation_duration.labels(operation).observe(seconds)

    @contextmanager
    def storage(self, operation: str) -> Iterator[None]:
        """Time one storage call; a failure counts as an error of its exception's type."""
        began = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.storage_errors.labels(operation, type(exc).__name__).inc()
            raise
        finally:
            self.storage_duration.labels(operation).observe(time.perf_counter() - began)


class MeasuredStore:
    """A blob store whose every call is timed as `imageregistry_storage_duration_seconds`, and
    counted in `imageregistry_storage_errors_total` when it raises: one wrapper for every
    backend, so that no backend measures itself."""

    def __init__(self, store: object, metrics: RegistryMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def replace(self, store: object) -> object:
        """Measure `store` from now on (the operator switched storage); the one it replaced."""
        old, self._store = self._store, store
        for name in [n for n in vars(self) if n not in ("_store", "_metrics")]:
            delattr(self, name)  # wrappers of the old store's methods
        return old

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not inspect.iscoroutinefunction(found):
            return found

        async def timed(*args: Any, **kwargs: Any) -> Any:
            with self._metrics.storage(name):
                return await found(*args, **kwargs)

        # Kept: the next call finds it without __getattr__ (the store is on the byte path).
        setattr(self, name, timed)
        return timed


def _handler_name(request: BaseRequest) -> str:
    """The operation a registry request was, named by its handler (get_blob, put_manifest)."""
    match_info = getattr(request, "match_info", None)
    route = getattr(match_info, "route", None)
    return str(getattr(getattr(route, "handler", None), "__name__", ""))


@dataclass
class ApiMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "apiserver_request_total",
            "API requests answered, by verb, resource and status code.",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.duration = Histogram(
            "apiserver_request_duration_seconds",
            "Time to answer an API request, by verb and resource (watches: their whole life).",
            ["verb", "resource"],
            registry=r,
        )
        self.watches = Gauge(
            "apiserver_longrunning_requests",
            "Watches open now.",
            ["verb"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.database = Histogram(
            "wharf_database_seconds",
            "Time of database work done for the API and the registry, reads and writes.",
            ["kind"],
            registry=r,
        )

    def observe(self, request: BaseRequest, response: StreamResponse, seconds: float) -> None:
        verb = request.get(OPERATION) or request.method.lower()
        resource = request.get(RESOURCE, "")
        self.requests.labels(verb, resource, str(response.status)).inc()
        self.duration.labels(verb, resource).observe(seconds)


class Metrics(Protocol):
    """What an app's metrics offer: their registry, and a request to count once answered."""

    registry: CollectorRegistry

    def observe(self, request: BaseRequest, response: StreamResponse, seconds: float) -> None: ...


METRICS: web.AppKey[Metrics] = web.AppKey("metrics")


# Set by the supervisor of several workers: each keeps its values in files there, and any
# of them answers a scrape with the sums of all (prometheus-client's multiprocess mode).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def exposition(metrics: Metrics) -> web.Response:
    """The metrics in Prometheus' text format: of every worker, when there are several."""
    directory = os.environ.get(MULTIPROCESS_DIR)
    registry = metrics.registry if not directory else _all_workers(metrics.registry, directory)
    response = web.Response(body=generate_latest(registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


class _Only:
    """The metric families of `source` that `own` also has: the registry's and the API's
    metrics share the workers' files, and each endpoint shows its own."""

    def __init__(self, source: Collector, own: CollectorRegistry) -> None:
        self.source = source
        self.names = {family.name for family in own.collect()}

    def collect(self) -> Iterable[Metric]:
        return (family for family in self.source.collect() if family.name in self.names)


def _all_workers(own: CollectorRegistry, directory: str) -> CollectorRegistry:
    merged = CollectorRegistry()
    every = multiprocess.MultiProcessCollector(None, directory)  # type: ignore[no-untyped-call]
    merged.register(_Only(every, own))
    return merged


def in_flight(metrics: RegistryMetrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware counting the requests being answered."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        metrics.in_flight.inc()
        try:
            return await handler(request)
        finally:
            metrics.in_flight.dec()

    return count
