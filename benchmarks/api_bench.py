"""Measure Wharf's control plane: get, list and watch with 10,000 objects, and the cost of one
authorization decision with 1,000 RoleBindings.

    benchmarks/run-api            # the full run (at most about 3 minutes on 2 cores)
    benchmarks/run-api --smoke    # tiny sizes, a few seconds: checks that every measurement works

One Wharf starts on a fresh data directory and free ports; every request goes over HTTPS to
127.0.0.1 with Wharf's own CA, as kubeadmin (logged in through the OAuth challenging-client
flow) unless said otherwise. The phases, each bounded in count and in time:

  seed      10,000 Secrets in one namespace, created by 16 concurrent clients
  get       one Secret at a time (1 client: latency), then 16 clients (throughput)
  list      every Secret of the namespace, every Secret of the cluster, and a walk in pages of
            500 that follows the continue tokens
  watch     write-to-event latency (one write at a time), the event rate one watcher receives
            during a burst of writes, the rate of a watch that replays the seeded Secrets from
            an old resourceVersion, and 1,000 watchers that each receive every event while
            another process writes 50 Secrets a second (each sent when due, at most 16
            unanswered at once, as a cluster's many writers would send them)
  streams   10,000 ImageStreams in one namespace, each with a tag: the whole list, its first
            page of 500, every page, and `kubectl get imagestreams` (which pages by 500)
  rbac      1,000 RoleBindings in 50 namespaces (users, groups, service accounts; cluster roles
            and namespaced roles); then RbacAuthorizer.allowed in this process over the same
            database (a warm snapshot, and with its per-user cache emptied), the rebuild of a
            snapshot, and SelfSubjectAccessReview round trips, warm and right after a binding
            changed

The table goes to stdout, progress and per-phase CPU figures to stderr, and the same figures as
JSON to benchmarks/results/api-latest.json (api-smoke.json with --smoke; see --json).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import copy
import json
import multiprocessing
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .servers import export_source, py_spy

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "benchmarks" / "results"
RBAC = "rbac.authorization.k8s.io"
ROLE_BINDINGS = f"rolebindings.{RBAC}"  # their key in the object store
BENCH_USER = "bench-user"  # bound in every binding namespace (view)
ALICE = "alice"  # bound in one namespace only (edit)
BUSY_SHARE = 0.3  # warn when other processes took more than this share of a core
REQUEST_TIMEOUT = 30.0  # seconds one request (not a watch) may take
# Watches are ended by this client (then swept, see `sweep`), never by their server-side
# timeoutSeconds: on Python 3.11 the server's nested asyncio.wait_for in watch_objects and
# ObjectStore.watch can lose that cancellation (the watch outlives its timeout), and one run
# whose 100 watchers timed out on the server had every later write hang after its commit.
WATCH_TIMEOUT = 900

Object = dict[str, Any]


@dataclass(frozen=True)
class Profile:
    """Sizes and bounds of one run. Every loop stops at its count or at its deadline."""

    name: str = "full"
    clients: int = 16
    seed_objects: int = 10_000
    seed_api_max: int = 10_000  # created over the API; the rest written to the database directly
    seed_api_seconds: float = 20.0
    get_latency_max: int = 2000
    get_latency_seconds: float = 4.0
    get_load_max: int = 40_000
    get_load_seconds: float = 6.0
    list_samples: int = 12
    list_seconds: float = 6.0
    page_limit: int = 500
    page_walks: int = 3
    page_seconds: float = 15.0
    watch_writes: int = 200
    watch_seconds: float = 12.0
    burst_writes: int = 2000
    burst_seconds: float = 10.0
    replay_seconds: float = 20.0
    watchers: int = 1000
    watcher_writes: int = 500
    watcher_rate: float = 50.0  # writes per second while the watchers listen
    watcher_seconds: float = 12.0
    binding_namespaces: int = 50
    bindings: int = 1000
    binding_api_max: int = 1000
    binding_api_seconds: float = 15.0
    decision_iterations: int = 200_000
    decision_seconds: float = 0.6  # per case
    rebuild_samples: int = 15
    rebuild_seconds: float = 6.0
    review_max: int = 1000
    review_seconds: float = 3.0
    changed_reviews: int = 30
    changed_seconds: float = 8.0
    event_timeout: float = 10.0  # how long a watcher may take to see one write
    streams: int = 10_000  # image streams in one namespace, each with a tagged image
    stream_samples: int = 5
    stream_seconds: float = 30.0


FULL = Profile()
SMOKE = Profile(
    name="smoke",
    clients=4,
    seed_objects=60,
    seed_api_max=40,
    seed_api_seconds=20.0,
    get_latency_max=40,
    get_latency_seconds=2.0,
    get_load_max=80,
    get_load_seconds=2.0,
    list_samples=2,
    list_seconds=3.0,
    page_limit=25,
    page_walks=1,
    page_seconds=5.0,
    watch_writes=10,
    watch_seconds=5.0,
    burst_writes=20,
    burst_seconds=5.0,
    replay_seconds=5.0,
    watchers=5,
    watcher_writes=5,
    watcher_rate=20.0,
    watcher_seconds=5.0,
    binding_namespaces=4,
    bindings=24,
    binding_api_max=16,
    binding_api_seconds=20.0,
    decision_iterations=2000,
    decision_seconds=0.1,
    rebuild_samples=2,
    rebuild_seconds=2.0,
    review_max=10,
    review_seconds=2.0,
    changed_reviews=2,
    changed_seconds=3.0,
    event_timeout=10.0,
    streams=60,
    stream_samples=2,
    stream_seconds=10.0,
)


# Results


@dataclass
class Line:
    name: str
    figure: float
    unit: str


@dataclass
class Phase:
    """Wall time and CPU seconds of one phase: the server, this client, everything else."""

    name: str
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_cpu: float = 0.0

    @property
    def other_cpu(self) -> float:
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu)

    def describe(self) -> str:
        wall = self.wall or 1e-9
        return (
            f"{self.name}: {self.wall:.1f}s wall; CPU-s (% of one core): "
            f"server {self.server_cpu:.1f} ({100 * self.server_cpu / wall:.0f}%), "
            f"client {self.client_cpu:.1f} ({100 * self.client_cpu / wall:.0f}%), "
            f"other processes {self.other_cpu:.1f} ({100 * self.other_cpu / wall:.0f}%)"
        )


@dataclass
class Report:
    profile: Profile
    lines: list[Line] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source: str = ""
    started: float = field(default_factory=time.perf_counter)

    def add(self, name: str, figure: float, unit: str) -> None:
        self.lines.append(Line(name, figure, unit))
        self.note(f"{name}: {_figure(figure)} {unit}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  [{time.perf_counter() - self.started:5.0f}s] {text}", file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.note("WARNING: " + text)

    def document(self) -> dict[str, Any]:
        return {
            "benchmark": "wharf control plane",
            "source": self.source,
            "profile": asdict(self.profile),
            "load_average": {"before": self.load_before, "after": self.load_after},
            "cpus": os.cpu_count(),
            "lines": [asdict(line) for line in self.lines],
            "phases": [{**asdict(p), "other_cpu": p.other_cpu} for p in self.phases],
            "warnings": self.warnings,
            "notes": self.notes,
        }


def _figure(value: float) -> str:
    if value >= 1000:
        return f"{value:.0f}"
    if value >= 100:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def render(report: Report) -> str:
    p = report.profile
    rows = [
        f"Wharf control plane, profile {p.name}: {p.seed_objects} Secrets in one namespace, "
        f"{p.clients} concurrent clients, {p.bindings} RoleBindings in {p.binding_namespaces} "
        f"namespaces, {p.watchers} watchers",
        f"load average (1/5/15 min) before {_load(report.load_before)}, after "
        f"{_load(report.load_after)}; {os.cpu_count()} CPUs; Wharf from {report.source}",
        "",
        f"{'measurement':<64} {'figure':>10}  unit",
        "-" * 90,
    ]
    rows += [f"{ln.name:<64} {_figure(ln.figure):>10}  {ln.unit}" for ln in report.lines]
    rows += [f"WARNING: {warning}" for warning in report.warnings]
    return "\n".join(rows)


# Helpers


class BenchError(RuntimeError):
    pass


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (q in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(seconds: float) -> float:
    return seconds * 1000.0


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent busy since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


class Profiler:
    """With --profile DIR: `py-spy record --gil` on the server during each phase: collapsed
    stacks of the thread that holds the GIL (Python's own work), one file per phase."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @contextmanager
    def record(self, pid: int, phase: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        with py_spy(pid, self.directory / f"{phase}.txt", "--rate", "200", "--gil"):
            yield


class Bench:
    """The client side: one aiohttp session over TLS to the API, and the measuring helpers."""

    def __init__(
        self,
        report: Report,
        api_url: str,
        ca_file: Path,
        admin_token: str,
        server_pid: int,
        profiler: Profiler,
    ) -> None:
        self.report = report
        self.profile = report.profile
        self.api_url = api_url
        self.ca_file = ca_file
        self.admin_token = admin_token
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.server_pid = server_pid
        self.profiler = profiler
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Object | None = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        """One request; its whole answer body, read (not decoded)."""
        data = None if body is None else json.dumps(body).encode()
        sent = {**self.admin, **(headers or {})}
        if data is not None:
            sent["Content-Type"] = content_type
        async with self.session.request(
            method, self.api_url + path, data=data, headers=sent
        ) as response:
            raw = await response.read()
            if response.status != expect:
                raise BenchError(
                    f"{method} {path} answered {response.status}, wanted {expect}: "
                    f"{raw[:300].decode(errors='replace')}"
                )
            return raw

    async def call_json(
        self,
        method: str,
        path: str,
        body: Object | None = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Any:
        return json.loads(await self.call(method, path, body, expect, headers))

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        phase = Phase(name)
        server_before = cpu_seconds(self.server_pid)
        client_before = own_cpu()
        machine_before = machine_busy_seconds()
        start = time.perf_counter()
        with self.profiler.record(self.server_pid, name.replace(" ", "-").replace("/", "-")):
            try:
                yield phase
            finally:
                phase.wall = time.perf_counter() - start
                phase.server_cpu = cpu_seconds(self.server_pid) - server_before
                phase.client_cpu = own_cpu() - client_before
                phase.machine_cpu = machine_busy_seconds() - machine_before
        self.report.phases.append(phase)
        self.report.note(phase.describe())

    async def clients(
        self, clients: int, count: int, seconds: float, op: Callable[[int], Awaitable[None]]
    ) -> tuple[list[float], float]:
        """Run op(0), op(1), ... on `clients` concurrent clients until `count` ran or `seconds`
        passed; return the latency of each and the wall time."""
        latencies: list[float] = []
        issued = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal issued
            while issued < count and time.perf_counter() < deadline:
                index = issued
                issued += 1
                began = time.perf_counter()
                await op(index)
                latencies.append(time.perf_counter() - began)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, time.perf_counter() - start

    def latency_lines(self, label: str, latencies: Sequence[float]) -> None:
        self.report.add(f"{label}: p50", ms(percentile(latencies, 0.50)), "ms")
        self.report.add(f"{label}: p99", ms(percentile(latencies, 0.99)), "ms")

    def short(self, what: str, done: int, wanted: int) -> None:
        if done < wanted:
            self.report.warn(f"{what}: only {done} of {wanted} within the time bound")


# Objects


def secret(name: str, index: int) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": {"app": "bench", "shard": str(index % 16)},
            "annotations": {"bench.wharf.io/index": str(index)},
        },
        "type": "Opaque",
        "data": {
            "username": base64.b64encode(f"user-{index}".encode()).decode(),
            "password": base64.b64encode(os.urandom(24)).decode(),
            "config.json": base64.b64encode(
                json.dumps({"index": index, "note": "x" * 120}).encode()
            ).decode(),
        },
    }


def namespace(name: str) -> Object:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def binding_namespace(k: int) -> str:
    return f"bench-rb-{k:02d}"


def binding_plan(profile: Profile) -> list[tuple[str, Object]]:
    """The RoleBindings to seed, as (namespace, body): in every namespace one binding of
    bench-user (view); alice's edit in one namespace; the rest to users, groups and service
    accounts, some with several subjects, to cluster roles and to the namespace's own Role."""
    per_namespace = max(2, profile.bindings // profile.binding_namespaces)
    roles = [
        ("ClusterRole", "view"),
        ("ClusterRole", "edit"),
        ("ClusterRole", "admin"),
        ("ClusterRole", "system:image-puller"),
        ("ClusterRole", "system:image-builder"),
        ("Role", "bench-reader"),
    ]
    plan: list[tuple[str, Object]] = []
    alice_namespace = 7 % profile.binding_namespaces
    for k in range(profile.binding_namespaces):
        ns = binding_namespace(k)
        for j in range(per_namespace):
            index = k * per_namespace + j
            role_kind, role = roles[index % len(roles)]
            user = {"kind": "User", "apiGroup": RBAC, "name": f"user-{index % 300}"}
            group = {"kind": "Group", "apiGroup": RBAC, "name": f"group-{index % 40}"}
            account = {"kind": "ServiceAccount", "namespace": ns, "name": f"sa-{index % 10}"}
            subjects: list[Object]
            if j == 0:
                name, role_kind, role = "bench-user-view", "ClusterRole", "view"
                subjects = [{"kind": "User", "apiGroup": RBAC, "name": BENCH_USER}]
            elif j == 1 and k == alice_namespace:
                name, role_kind, role = "alice-edit", "ClusterRole", "edit"
                subjects = [{"kind": "User", "apiGroup": RBAC, "name": ALICE}]
            else:
                name = f"rb-{index:05d}"
                subjects = [[user], [group], [account], [user, group, account]][index % 4]
            plan.append(
                (
                    ns,
                    {
                        "apiVersion": f"{RBAC}/v1",
                        "kind": "RoleBinding",
                        "metadata": {"name": name},
                        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
                        "subjects": subjects,
                    },
                )
            )
    return plan[: max(profile.bindings, profile.binding_namespaces * 2)]


READER_ROLE: Object = {
    "apiVersion": f"{RBAC}/v1",
    "kind": "Role",
    "metadata": {"name": "bench-reader"},
    "rules": [
        {
            "apiGroups": [""],
            "resources": ["secrets", "serviceaccounts"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["image.openshift.io"],
            "resources": ["imagestreams", "imagestreamtags"],
            "verbs": ["get", "list", "watch"],
        },
    ],
}


# Watching


class Watcher:
    """One watch request: the time each object's event arrived, by name."""

    def __init__(self, bench: Bench, path: str, version: str) -> None:
        self.bench = bench
        self.query = urlencode(
            {"watch": "true", "resourceVersion": version, "timeoutSeconds": str(WATCH_TIMEOUT)}
        )
        self.path = path
        self.arrivals: dict[str, float] = {}
        self.events = 0
        self.last = 0.0
        self.errors: list[str] = []
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self._response: aiohttp.ClientResponse | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        response = await self.bench.session.get(
            f"{self.bench.api_url}{self.path}?{self.query}",
            headers=self.bench.admin,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        if response.status != 200:
            text = (await response.read())[:300].decode(errors="replace")
            response.release()
            raise BenchError(f"watch {self.path} answered {response.status}: {text}")
        self._response = response
        self._task = asyncio.create_task(self._read(response))

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        # Names found in the raw lines, not in parsed JSON: with 1,000 watchers in this one
        # process, parsing every event would make the client, not the server, the bottleneck.
        rest = b""
        async for chunk in response.content.iter_any():
            now = time.perf_counter()
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                if line.startswith(b'{"type": "ERROR"'):
                    self.errors.append(line[:300].decode(errors="replace"))
                    continue
                found = EVENT_NAME.search(line)
                if found is None:
                    self.errors.append(f"an event without a bench name: {line[:200]!r}")
                    continue
                self._arrived(found.group(1).decode(), now)

    def _arrived(self, name: str, now: float) -> None:
        self.arrivals.setdefault(name, now)
        self.events += 1
        self.last = now
        future = self.waiting.pop(name, None)
        if future is not None and not future.done():
            future.set_result(now)

    def expect(self, name: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[name] = future
        return future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task
        if self._response is not None:
            self._response.close()


# The phases


DATA_NS = "bench-data"
WATCH_NS = "bench-watch"
SECRETS = f"/api/v1/namespaces/{DATA_NS}/secrets"
WATCH_SECRETS = f"/api/v1/namespaces/{WATCH_NS}/secrets"
# The metadata.name of a Secret this benchmark wrote, in a watch event's line.
EVENT_NAME = re.compile(rb'"name": "([a-z]-[0-9]{5})"')


async def sweep(bench: Bench, path: str) -> None:
    """End the server's side of watches this client closed: a watch handler notices that its
    client left only when it next sends an event (until then it waits on the watch cache), so
    write one Secret that every such watcher is shown."""
    name = f"sweep-{uuid.uuid4().hex[:8]}"
    await bench.call("POST", path, secret(name, 0), expect=201)
    await asyncio.sleep(1.0)


async def list_version(bench: Bench, path: str) -> str:
    listed = await bench.call_json("GET", path + "?limit=1")
    return str(listed["metadata"]["resourceVersion"])


# The database of each Wharf data directory measured, when it is not SQLite in the folder.
DATABASE: dict[Path, str] = {}


async def write_directly(data_dir: Path, items: Sequence[tuple[str, str, Object]]) -> None:
    """Create (resource, namespace, body) in the server's database from this process, in
    transactions of 500, as the server itself writes them (events included: watches and the
    RBAC snapshot see them within their poll intervals)."""
    from wharf.db.database import open_database, sqlite_url
    from wharf.db.objects import Key, ObjectStore

    database = open_database(DATABASE.get(data_dir.resolve()) or sqlite_url(data_dir.resolve()))
    try:
        store = ObjectStore(database)
        for start in range(0, len(items), 500):
            async with store.transaction() as tx:
                for resource, ns, body in items[start : start + 500]:
                    await tx.create(Key(resource, ns, body["metadata"]["name"]), body)
    finally:
        await database.dispose()


def stored_copy(template: Object, name: str, changes: Object) -> Object:
    """An object as the API would have stored it: `template` (one it stored) renamed, with a
    uid of its own, and `changes` (top-level fields; "metadata" fields are merged)."""
    meta = {
        **template["metadata"],
        **changes.get("metadata", {}),
        "name": name,
        "uid": str(uuid.uuid4()),
    }
    meta.pop("resourceVersion", None)
    return {**copy.deepcopy(template), **changes, "metadata": meta}


async def run_seed(bench: Bench, data_dir: Path) -> tuple[list[str], str]:
    """The Secrets: over the API as far as its bounds allow, the rest written directly."""
    p = bench.profile
    for name in (DATA_NS, WATCH_NS):
        await bench.call("POST", "/api/v1/namespaces", namespace(name), expect=201)
    before = await list_version(bench, SECRETS)
    names = [f"s-{i:05d}" for i in range(p.seed_objects)]
    wanted = min(p.seed_api_max, p.seed_objects)

    async def create(index: int) -> None:
        await bench.call("POST", SECRETS, secret(names[index], index), expect=201)

    with bench.phase("seed Secrets over the API") as phase:
        latencies, wall = await bench.clients(p.clients, wanted, p.seed_api_seconds, create)
    done = len(latencies)
    if not done:
        raise BenchError("no Secret was created within the time bound")
    bench.report.add(f"create Secret, {p.clients} clients: throughput", done / wall, "objects/s")
    bench.latency_lines(f"create Secret, {p.clients} clients", latencies)
    bench.report.add("create Secret: server CPU per object", ms(phase.server_cpu / done), "ms")
    if done < p.seed_objects:
        template = await bench.call_json("GET", f"{SECRETS}/{names[0]}")
        rest = [
            ("secrets", DATA_NS, stored_copy(template, names[i], _secret_changes(i)))
            for i in range(done, p.seed_objects)
        ]
        with bench.phase("seed Secrets directly") as phase:
            await write_directly(data_dir, rest)
        bench.report.add(
            "ObjectStore create in-process (no HTTP/auth), 500/tx",
            len(rest) / phase.wall,
            "objects/s",
        )
    bench.report.note(
        f"seeded {p.seed_objects} Secrets: {done} over the API, {p.seed_objects - done} "
        "written directly to the database"
    )
    return names, before


def _secret_changes(index: int) -> Object:
    body = secret("", index)
    return {
        "data": body["data"],
        "metadata": {
            "labels": body["metadata"]["labels"],
            "annotations": body["metadata"]["annotations"],
        },
    }


async def run_get(bench: Bench, names: list[str]) -> None:
    p = bench.profile

    async def get(index: int) -> None:
        await bench.call("GET", f"{SECRETS}/{names[(index * 7919) % len(names)]}")

    with bench.phase("get 1 client"):
        latencies, _ = await bench.clients(1, p.get_latency_max, p.get_latency_seconds, get)
    bench.latency_lines("GET Secret, 1 client", latencies)
    with bench.phase("get 16 clients") as phase:
        latencies, wall = await bench.clients(p.clients, p.get_load_max, p.get_load_seconds, get)
    bench.report.add(
        f"GET Secret, {p.clients} clients: throughput", len(latencies) / wall, "requests/s"
    )
    bench.latency_lines(f"GET Secret, {p.clients} clients", latencies)
    bench.report.add(
        "GET Secret: server CPU per request", ms(phase.server_cpu / max(1, len(latencies))), "ms"
    )


async def run_list(bench: Bench, seeded: int) -> None:
    p = bench.profile
    for label, path in (("one namespace", SECRETS), ("all namespaces", "/api/v1/secrets")):
        listed = await bench.call_json("GET", path)
        if len(listed["items"]) < seeded:
            raise BenchError(f"LIST {path} has {len(listed['items'])} items, wanted {seeded}")

        async def read(_index: int, path: str = path) -> None:
            await bench.call("GET", path)

        with bench.phase(f"list {label}"):
            latencies, _ = await bench.clients(1, p.list_samples, p.list_seconds, read)
        bench.latency_lines(f"LIST all Secrets, {label}", latencies)

    async def walk(deadline: float) -> tuple[int, int] | None:
        """(items, pages) of one walk; None when it passed the deadline."""
        items, pages, token = 0, 0, ""
        while time.perf_counter() < deadline:
            query = {"limit": str(p.page_limit), **({"continue": token} if token else {})}
            page = await bench.call_json("GET", f"{SECRETS}?{urlencode(query)}")
            items += len(page["items"])
            pages += 1
            token = page["metadata"].get("continue", "")
            if not token:
                return items, pages
        return None

    times: list[float] = []
    pages = 0
    with bench.phase("list pages"):
        deadline = time.perf_counter() + p.page_seconds
        while len(times) < p.page_walks and time.perf_counter() < deadline:
            began = time.perf_counter()
            # The first walk may take twice the bound: without it there is no figure.
            walked = await walk(deadline + (0 if times else p.page_seconds))
            if walked is None:
                if not times:
                    raise BenchError(f"a paged list took more than {2 * p.page_seconds}s")
                break
            times.append(time.perf_counter() - began)
            items, pages = walked
            if items != seeded:
                raise BenchError(f"the paged list walked {items} items, wanted {seeded}")
    bench.report.note(f"paged list: {pages} pages of {p.page_limit}, {len(times)} walks")
    bench.report.add(
        f"LIST in pages of {p.page_limit} (continue): total time",
        ms(statistics.median(times)),
        "ms",
    )


STREAMS_NS = "bench-streams"
STREAMS = f"/apis/image.openshift.io/v1/namespaces/{STREAMS_NS}/imagestreams"


async def seed_streams(bench: Bench, data_dir: Path, count: int) -> None:
    """`count` ImageStreams written to the database directly, each with one tag event, as a
    push records them (stream object, repository row, tag history)."""
    from wharf.db.database import open_database, sqlite_url
    from wharf.db.objects import Key, ObjectStore
    from wharf.images.history import add_event, ensure_repository

    await bench.call("POST", "/api/v1/namespaces", namespace(STREAMS_NS), expect=201)
    template = await bench.call_json(
        "POST", STREAMS, {"metadata": {"name": "is-template"}, "spec": {}}, expect=201
    )

    def tag(conn: Any, name: str) -> None:
        repository = ensure_repository(conn, f"{STREAMS_NS}/{name}")
        add_event(conn, repository, "latest", "sha256:" + "ab" * 32, 1)

    database = open_database(DATABASE.get(data_dir.resolve()) or sqlite_url(data_dir.resolve()))
    try:
        store = ObjectStore(database)
        names = [f"is-{i:05d}" for i in range(count - 1)]
        for start in range(0, len(names), 500):
            async with store.transaction() as tx:
                for name in names[start : start + 500]:
                    body = stored_copy(template, name, {})
                    body.pop("status", None)
                    await tx.create(Key("imagestreams.image.openshift.io", STREAMS_NS, name), body)
                    await tx.conn.run_sync(tag, name)
    finally:
        await database.dispose()


def kubectl_get_seconds(
    api_url: str, ca_file: Path, token: str, workdir: Path, *flags: str
) -> float:
    from tests.support.cluster import write_kubeconfig

    config = write_kubeconfig(workdir / "kubeconfig", api_url, ca_file, token)
    began = time.perf_counter()
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(config), "get", "imagestreams", "-n", STREAMS_NS, *flags],
        capture_output=True, text=True, timeout=600, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)},
    )  # fmt: skip
    took = time.perf_counter() - began
    if result.returncode != 0:
        raise BenchError(f"kubectl get imagestreams failed: {result.stderr[:300]}")
    return took


async def run_streams(
    bench: Bench, data_dir: Path, api_url: str, ca_file: Path, token: str
) -> None:
    p = bench.profile
    with bench.phase("seed image streams directly"):
        await seed_streams(bench, data_dir, p.streams)
    page = f"{STREAMS}?limit=500"

    async def whole(_index: int) -> None:
        listed = await bench.call_json("GET", STREAMS)
        if len(listed["items"]) != p.streams:
            raise BenchError(f"the stream list has {len(listed['items'])} items")

    async def first_page(_index: int) -> None:
        await bench.call("GET", page)

    async def every_page(_index: int) -> None:
        token, walked = "", 0
        while True:
            listed = await bench.call_json("GET", page + (f"&continue={token}" if token else ""))
            walked += len(listed["items"])
            token = listed["metadata"].get("continue", "")
            if not token:
                break
        if walked != p.streams:
            raise BenchError(f"the pages held {walked} streams, wanted {p.streams}")

    figures = {}
    for label, op in (
        ("whole list", whole),
        ("first page of 500", first_page),
        ("all pages of 500", every_page),
    ):
        with bench.phase(f"streams {label}"):
            latencies, _ = await bench.clients(1, p.stream_samples, p.stream_seconds, op)
        figures[label] = statistics.median(latencies)
        bench.report.add(f"LIST {p.streams} ImageStreams, {label}: p50", ms(figures[label]), "ms")
    bench.report.add(
        "ImageStreams: all pages / whole list",
        figures["all pages of 500"] / figures["whole list"],
        "x",
    )
    # kubectl pages by 500 and, past a burst of 10 requests, throttles itself to 5 a second
    # (client-go's default rate limit): from the 11th page on it waits 200 ms before each.
    for label, flags in (("pages of 500", ()), ("--chunk-size=0", ("--chunk-size=0",))):
        with bench.phase(f"kubectl get imagestreams, {label}"):
            took = await asyncio.to_thread(
                kubectl_get_seconds, api_url, ca_file, token, data_dir.parent, *flags
            )
        bench.report.add(
            f"kubectl get imagestreams, {p.streams} streams, {label}: wall", ms(took), "ms"
        )
    bench.report.note(
        "targets: a page of 500 < 50 ms, all pages < 1.5x the whole list, kubectl get < 1000 ms"
    )


async def run_watch(bench: Bench, names: list[str], seeded_from: str) -> None:
    p = bench.profile

    # Latency: one write at a time, from sending the write to the watcher's event.
    watcher = Watcher(bench, WATCH_SECRETS, await list_version(bench, WATCH_SECRETS))
    await watcher.start()
    latencies: list[float] = []
    with bench.phase("watch latency"):
        deadline = time.perf_counter() + p.watch_seconds
        for index in range(p.watch_writes):
            if time.perf_counter() >= deadline:
                break
            name = f"w-{index:05d}"
            arrived = watcher.expect(name)
            began = time.perf_counter()
            await bench.call("POST", WATCH_SECRETS, secret(name, index), expect=201)
            latencies.append(await asyncio.wait_for(arrived, p.event_timeout) - began)
    bench.short("watch latency writes", len(latencies), p.watch_writes)
    bench.latency_lines("WATCH write-to-event latency", latencies)

    # A burst: the event rate one watcher receives while clients write as fast as they can.
    def burst_name(index: int) -> str:
        return f"b-{index:05d}"

    async def create(index: int) -> None:
        await bench.call("POST", WATCH_SECRETS, secret(burst_name(index), index), expect=201)

    with bench.phase("watch burst"):
        began = time.perf_counter()
        written, _ = await bench.clients(p.clients, p.burst_writes, p.burst_seconds, create)
        wrote = time.perf_counter() - began
        drain = time.perf_counter() + p.event_timeout
        while time.perf_counter() < drain and not all(
            burst_name(i) in watcher.arrivals for i in range(len(written))
        ):
            await asyncio.sleep(0.01)
    received = sum(1 for i in range(len(written)) if burst_name(i) in watcher.arrivals)
    await watcher.stop()
    await sweep(bench, WATCH_SECRETS)
    if received < len(written) or watcher.errors:
        raise BenchError(
            f"the watcher saw {received} of {len(written)} burst writes; errors {watcher.errors}"
        )
    bench.report.note(f"burst: {len(written)} writes at {len(written) / wrote:.0f}/s")
    bench.report.add(
        "WATCH burst: events received by one watcher", received / (watcher.last - began), "events/s"
    )

    # Replay: a watch from the resourceVersion before seeding gets every seeded Secret.
    replay = Watcher(bench, SECRETS, seeded_from)
    with bench.phase("watch replay"):
        began = time.perf_counter()
        await replay.start()
        deadline = began + p.replay_seconds
        while replay.events < len(names) and time.perf_counter() < deadline and not replay.errors:
            await asyncio.sleep(0.01)
        took = (replay.last or time.perf_counter()) - began
    await replay.stop()
    await sweep(bench, SECRETS)
    bench.short("replayed events", replay.events, len(names))
    if replay.errors or not replay.events:
        raise BenchError(f"the replay watch failed: {replay.errors}")
    bench.report.add(
        "WATCH replay of the seeded Secrets from an old RV", replay.events / took, "events/s"
    )

    # Many watchers: every one receives every event.
    version = await list_version(bench, WATCH_SECRETS)
    watchers = [Watcher(bench, WATCH_SECRETS, version) for _ in range(p.watchers)]
    delays: list[float] = []
    with bench.phase("watch many"):
        await asyncio.gather(*(w.start() for w in watchers))
        # The writes come from a process of their own: paced by this one's event loop, busy
        # with 1,000 watch streams, they measured this client's pace rather than the server's.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            sent, writing, round_trips = await asyncio.get_running_loop().run_in_executor(
                pool,
                paced_writes,
                bench.api_url,
                str(bench.ca_file),
                bench.admin_token,
                p.watcher_writes,
                p.watcher_rate,
                p.watcher_seconds,
            )
        drain = time.perf_counter() + p.event_timeout
        while time.perf_counter() < drain and not all(
            name in w.arrivals for w in watchers for name in sent
        ):
            await asyncio.sleep(0.02)
        for w in watchers:
            delays += [w.arrivals[name] - at for name, at in sent.items() if name in w.arrivals]
    complete = sum(1 for w in watchers if all(name in w.arrivals for name in sent))
    await asyncio.gather(*(w.stop() for w in watchers))
    await sweep(bench, WATCH_SECRETS)
    if complete < len(watchers):
        bench.report.warn(
            f"{len(watchers) - complete} of {len(watchers)} watchers missed events "
            f"({len(delays)} of {len(watchers) * len(sent)} delivered)"
        )
    bench.report.add(
        f"WATCH {p.watchers} watchers: watchers that got every event", complete, "watchers"
    )
    bench.report.add(
        f"WATCH {p.watchers} watchers: writes/s sustained (paced at {p.watcher_rate:.0f}/s)",
        len(sent) / writing,
        "writes/s",
    )
    bench.latency_lines(f"WATCH {p.watchers} watchers: delivery", delays)
    bench.latency_lines(f"WATCH {p.watchers} watchers: write round trip", round_trips)


def paced_writes(
    api_url: str, ca_file: str, token: str, count: int, rate: float, seconds: float
) -> tuple[dict[str, float], float, list[float]]:
    """Secrets `m-NNNNN` written on a schedule of `rate` a second, for at most `seconds`: each
    is sent when it is due, whether or not the ones before it were answered (as many writers
    of a cluster would send them), with at most WRITERS unanswered at once; late ones go at
    once. Returns when each was sent (perf_counter, the same clock in every process of the
    machine), how long the sending took (one interval more than from first to last), and each
    write's round trip."""
    return asyncio.run(_paced_writes(api_url, ca_file, token, count, rate, seconds))


WRITERS = 16  # writes unanswered at once in the many-watchers phase


async def _paced_writes(
    api_url: str, ca_file: str, token: str, count: int, rate: float, seconds: float
) -> tuple[dict[str, float], float, list[float]]:
    sent: dict[str, float] = {}
    round_trips: list[float] = []
    writers = asyncio.Semaphore(WRITERS)
    connector = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file))
    async with aiohttp.ClientSession(connector=connector) as session:

        async def write(index: int) -> None:
            name = f"m-{index:05d}"
            try:
                sent[name] = began = time.perf_counter()
                async with session.post(
                    api_url + WATCH_SECRETS,
                    json=secret(name, index),
                    headers={"Authorization": f"Bearer {token}"},
                ) as response:
                    if response.status != 201:
                        raise BenchError(f"POST {name} answered {response.status}")
                round_trips.append(time.perf_counter() - began)
            finally:
                writers.release()

        began = time.perf_counter()
        tasks = []
        for index in range(count):
            due = began + index / rate
            if due - began >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await writers.acquire()
            tasks.append(asyncio.create_task(write(index)))
        await asyncio.gather(*tasks)
        # The rate the writes went out at: 50/s exactly unless the server's answers fell so far
        # behind that WRITERS were unanswered; the answers' own delays are the round trips.
        return sent, max(sent.values()) - began + 1 / rate, round_trips


def bench_user_token(api_url: str, ca_file: Path, data_dir: Path, name: str) -> str:
    from tests.support.cluster import login
    from wharf.auth.htpasswd import Htpasswd

    password = uuid.uuid4().hex
    Htpasswd(data_dir / "auth" / "htpasswd").set_password(name, password)
    return login(api_url, ca_file, name, password)


async def run_rbac(bench: Bench, data_dir: Path, user_token: str) -> None:
    p = bench.profile
    namespaces = [binding_namespace(k) for k in range(p.binding_namespaces)]
    for ns in namespaces:
        await bench.call("POST", "/api/v1/namespaces", namespace(ns), expect=201)
        await bench.call("POST", f"/apis/{RBAC}/v1/namespaces/{ns}/roles", READER_ROLE, expect=201)
    plan = binding_plan(p)
    # Over the API first, so that the bindings every measurement relies on come from it.
    plan.sort(key=lambda item: item[1]["metadata"]["name"].startswith("rb-"))

    async def bind(index: int) -> None:
        ns, body = plan[index]
        await bench.call("POST", f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings", body, expect=201)

    wanted = min(p.binding_api_max, len(plan))
    with bench.phase("seed RoleBindings over the API") as phase:
        latencies, wall = await bench.clients(p.clients, wanted, p.binding_api_seconds, bind)
    done = len(latencies)
    if done < min(wanted, 2 * p.binding_namespaces):
        raise BenchError(f"only {done} RoleBindings were created within the time bound")
    bench.report.add(
        f"create RoleBinding, {p.clients} clients: throughput", done / wall, "objects/s"
    )
    bench.latency_lines(f"create RoleBinding, {p.clients} clients", latencies)
    bench.report.add("create RoleBinding: server CPU per object", ms(phase.server_cpu / done), "ms")
    if done < len(plan):
        ns, body = plan[0]
        template = await bench.call_json(
            "GET", f"/apis/{RBAC}/v1/namespaces/{ns}/rolebindings/{body['metadata']['name']}"
        )
        rest = [
            (
                ROLE_BINDINGS,
                ns,
                stored_copy(
                    template,
                    body["metadata"]["name"],
                    {
                        "metadata": {"namespace": ns},
                        "roleRef": body["roleRef"],
                        "subjects": body["subjects"],
                    },
                ),
            )
            for ns, body in plan[done:]
        ]
        with bench.phase("seed RoleBindings directly"):
            await write_directly(data_dir, rest)
    bench.report.note(
        f"seeded {len(plan)} RoleBindings: {done} over the API, {len(plan) - done} written "
        "directly to the database"
    )
    # The server's authorizer notices writes of other processes within CHECK_SECONDS.
    await asyncio.sleep(0.5)
    with bench.phase("rbac in-process"):
        await in_process_decisions(bench, data_dir)
    with bench.phase("rbac reviews"):
        await reviews(bench, user_token)


async def in_process_decisions(bench: Bench, data_dir: Path) -> None:
    """RbacAuthorizer over the server's own database, read by this process (SQLite in WAL
    mode lets it read beside the server): the very objects the server decides from."""
    from wharf.auth.rbac import RBAC_RESOURCES, RbacAuthorizer, Snapshot
    from wharf.auth.user import AUTHENTICATED, AUTHENTICATED_OAUTH, Attributes, UserInfo
    from wharf.db.database import open_database, sqlite_url
    from wharf.db.objects import ObjectStore

    p = bench.profile
    database = open_database(DATABASE.get(data_dir.resolve()) or sqlite_url(data_dir.resolve()))
    try:
        store = ObjectStore(database)
        authorizer = RbacAuthorizer(store)
        snapshot = await authorizer.snapshot()
        lists = [(await store.items(resource))[0] for resource in RBAC_RESOURCES]
        counts = dict(
            zip(
                ("clusterroles", "clusterrolebindings", "roles", "rolebindings"),
                map(len, lists),
                strict=True,
            )
        )
        bench.report.note(f"RBAC objects in the snapshot: {counts}")
        groups = (AUTHENTICATED, AUTHENTICATED_OAUTH)
        alice = UserInfo(ALICE, "", ("bench-team", *groups))  # a group bound nowhere
        many = UserInfo(BENCH_USER, "", groups)
        admin = UserInfo("kubeadmin", "", groups)
        home = binding_namespace(7 % p.binding_namespaces)
        other = binding_namespace(8 % p.binding_namespaces)
        far = binding_namespace((p.binding_namespaces * 2) // 3)
        bound = f"user in {p.binding_namespaces} ns"
        cases = [
            (
                "alice allowed (own namespace)",
                Attributes(alice, "get", "", "secrets", "", home, "s-1"),
                True,
            ),
            (
                "alice denied (other namespace)",
                Attributes(alice, "get", "", "secrets", "", other, "s-1"),
                False,
            ),
            (
                f"{bound} allowed",
                Attributes(many, "list", "image.openshift.io", "imagestreams", "", far),
                True,
            ),
            (
                f"{bound} denied",
                Attributes(many, "create", "image.openshift.io", "imagestreams", "", far),
                False,
            ),
            (
                "cluster-admin allowed",
                Attributes(admin, "delete", "", "secrets", "", far, "s-1"),
                True,
            ),
        ]
        for label, attributes, expected in cases:
            if await authorizer.allowed(attributes) is not expected:
                raise BenchError(f"RbacAuthorizer: {label} decided {not expected}")

        async def per_decision(attributes: Attributes, cold: bool) -> float:
            done, batch = 0, 200
            began = time.perf_counter()
            deadline = began + p.decision_seconds
            # Cold: neither the user's rules nor the decision are remembered yet.
            caches = (snapshot._cache, snapshot._decisions)
            while done < p.decision_iterations and time.perf_counter() < deadline:
                if cold:
                    for _ in range(batch):
                        for cache in caches:
                            cache.clear()
                        await authorizer.allowed(attributes)
                else:
                    for _ in range(batch):
                        await authorizer.allowed(attributes)
                done += batch
            return (time.perf_counter() - began) / done * 1e6

        for label, attributes, _expected in cases:
            bench.report.add(
                f"RBAC allowed(), warm: {label}", await per_decision(attributes, False), "us"
            )
        for label, attributes, _expected in cases[:4]:
            bench.report.add(
                f"RBAC allowed(), cold cache: {label}", await per_decision(attributes, True), "us"
            )

        builds: list[float] = []
        reloads: list[float] = []
        deadline = time.perf_counter() + p.rebuild_seconds
        while len(builds) < p.rebuild_samples and time.perf_counter() < deadline:
            began = time.perf_counter()
            Snapshot(*lists)
            builds.append(time.perf_counter() - began)
            authorizer._version = -1  # as if a binding changed: the next check reloads all
            authorizer._checked = 0.0
            began = time.perf_counter()
            await authorizer.snapshot()
            reloads.append(time.perf_counter() - began)
        bench.report.add(
            "RBAC snapshot build from the objects", ms(statistics.median(builds)), "ms"
        )
        bench.report.add(
            "RBAC snapshot reload (database read + build)", ms(statistics.median(reloads)), "ms"
        )
    finally:
        await database.dispose()


async def reviews(bench: Bench, user_token: str) -> None:
    p = bench.profile
    as_user = {"Authorization": f"Bearer {user_token}"}
    far = binding_namespace((p.binding_namespaces * 2) // 3)
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

    def review(verb: str) -> Object:
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": far,
                    "verb": verb,
                    "group": "image.openshift.io",
                    "resource": "imagestreams",
                }
            },
        }

    async def ask(verb: str, expected: bool) -> None:
        answer = await bench.call_json("POST", path, review(verb), 201, as_user)
        if answer["status"]["allowed"] is not expected:
            raise BenchError(f"SelfSubjectAccessReview {verb}: {answer['status']}")

    def asking(verb: str, expected: bool) -> Callable[[int], Awaitable[None]]:
        async def op(_index: int) -> None:
            await ask(verb, expected)

        return op

    await ask("list", True)  # the server has read the bindings written directly
    for verb, expected, label in (("list", True, "allowed"), ("create", False, "denied")):
        with bench.phase(f"review {label}"):
            latencies, _ = await bench.clients(
                1, p.review_max, p.review_seconds, asking(verb, expected)
            )
        bench.latency_lines(f"SelfSubjectAccessReview, {label}", latencies)

    binding = f"/apis/{RBAC}/v1/namespaces/{binding_namespace(0)}/rolebindings/bench-user-view"
    after: list[float] = []
    with bench.phase("review after change"):
        deadline = time.perf_counter() + p.changed_seconds
        while len(after) < p.changed_reviews and time.perf_counter() < deadline:
            patch = {"metadata": {"labels": {"bench-toggle": str(len(after))}}}
            await bench.call("PATCH", binding, patch, content_type="application/merge-patch+json")
            began = time.perf_counter()
            await ask("list", True)
            after.append(time.perf_counter() - began)
    bench.latency_lines("SelfSubjectAccessReview after a RoleBinding change", after)


# Running


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run-api",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a few seconds")
    parser.add_argument(
        "--json",
        type=Path,
        help="where the JSON goes (default benchmarks/results/api-latest.json, "
        "api-smoke.json with --smoke)",
    )
    parser.add_argument("--workdir", type=Path, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and log")
    parser.add_argument(
        "--revision",
        metavar="REV",
        help="measure src/ of this git revision (e.g. HEAD) instead of the "
        "working tree, which other work may be changing",
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to measure after seeding (default: {','.join(PHASES)})",
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Wharf's database: SQLite in its data directory, or PostgreSQL (a throwaway "
        "cluster started for the run, as the tests do)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the server with py-spy (--gil) during each phase: collapsed stacks in DIR",
    )
    return parser.parse_args(argv)


PHASES = ("get", "list", "streams", "watch", "rbac")


async def measure(
    report: Report,
    wharf_pid: int,
    api_url: str,
    ca_file: Path,
    data_dir: Path,
    admin_token: str,
    user_token: str,
    profiler: Profiler,
    only: Sequence[str] = PHASES,
) -> None:
    bench = Bench(report, api_url, ca_file, admin_token, wharf_pid, profiler)
    try:
        names, seeded_from = await run_seed(bench, data_dir)
        if "get" in only:
            await run_get(bench, names)
        if "list" in only:
            await run_list(bench, len(names))
        if "streams" in only:
            await run_streams(bench, data_dir, api_url, ca_file, admin_token)
        if "watch" in only:
            await run_watch(bench, names, seeded_from)
        if "rbac" in only:
            await run_rbac(bench, data_dir, user_token)
    finally:
        await bench.close()


def use_source(source: Path) -> None:
    """Run the server, and import Wharf here, from `source` (before anything imported it)."""
    if "wharf" in sys.modules:
        raise BenchError("wharf was imported before --revision could take effect")
    sys.path.insert(0, str(source))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(source), *filter(None, [os.environ.get("PYTHONPATH")])]
    )


def describe_source(revision: str | None) -> str:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout.strip()

    if revision is not None:
        return f"git {revision} = {git('rev-parse', '--short', revision)}"
    dirty = git("status", "--porcelain", "--", "src")
    head = git("rev-parse", "--short", "HEAD")
    return f"working tree (HEAD {head}{', src/ changed' if dirty else ''})"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = {phase for phase in args.only.split(",") if phase} - set(PHASES)
    if unknown:
        print(
            f"error: unknown phases {sorted(unknown)}; known: {','.join(PHASES)}", file=sys.stderr
        )
        return 2
    # The tests' database lanes: PostgreSQL on a cluster of the run's own, stopped at the end.
    os.environ["WHARF_TEST_DATABASE"] = args.database
    from tests.support.cluster import login
    from tests.support.postgres import stop_shared_cluster
    from tests.support.server import running_wharf

    profile = SMOKE if args.smoke else FULL
    report = Report(profile)
    report.load_before = os.getloadavg()
    report.note(f"load average before: {_load(report.load_before)}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wharf-api-bench-", dir=args.workdir))
    failed = False
    report.source = describe_source(args.revision)
    report.note(f"measuring {report.source}")
    try:
        if args.revision is not None:
            use_source(export_source(args.revision, work / "source"))
        with running_wharf(work / "data") as wharf:
            report.note(f"wharf pid {wharf.process.pid}, API {wharf.api_url}, data {work}")
            report.note(f"database: {args.database}")
            if wharf.database_url is not None:
                DATABASE[wharf.data_dir.resolve()] = wharf.database_url
            try:
                admin_token = login(
                    wharf.api_url, wharf.ca_file, "kubeadmin", wharf.kubeadmin_password
                )
                user_token = bench_user_token(
                    wharf.api_url, wharf.ca_file, wharf.data_dir, BENCH_USER
                )
                asyncio.run(
                    measure(
                        report,
                        wharf.process.pid,
                        wharf.api_url,
                        wharf.ca_file,
                        wharf.data_dir,
                        admin_token,
                        user_token,
                        Profiler(args.profile),
                        [phase for phase in args.only.split(",") if phase],
                    )
                )
            except BaseException:
                failed = True
                print(f"--- wharf log (tail) ---\n{wharf.log()[-4000:]}", file=sys.stderr)
                raise
    finally:
        stop_shared_cluster()
        if args.keep or failed:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.load_after = os.getloadavg()
    report.note(f"load average after: {_load(report.load_after)}")
    busiest = max(report.phases, key=lambda ph: ph.other_cpu / (ph.wall or 1e-9), default=None)
    if busiest is not None and busiest.wall >= 0.5:
        share = busiest.other_cpu / busiest.wall
        if share > BUSY_SHARE:
            report.warn(
                f"other processes used {100 * share:.0f}% of a core during "
                f"'{busiest.name}': the machine was not quiet, figures are noisy"
            )
    print(render(report))
    target = args.json or RESULTS / ("api-smoke.json" if args.smoke else "api-latest.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report.document(), indent=2) + "\n")
    print(f"results written to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
