"""Worker processes: `wharf serve --workers N` binds the listening sockets once, starts N
processes that serve on them (the kernel hands each new connection to whichever accepts it
first), restarts a worker that dies, and on SIGTERM lets them all drain and exit.

A worker is a fresh interpreter (`python -m wharf.workers`), not a fork: nothing of the
supervisor's event loop, threads or database connections leaks into it. It gets its settings
and its sockets' file descriptors in one environment variable, and dies with the supervisor
(PR_SET_PDEATHSIG), so that a supervisor killed with -9 leaves no worker serving."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from functools import partial

import structlog
from prometheus_client import multiprocess

from . import logs, operator
from .apiserver.addresses import RouteAddresses
from .db.database import open_database
from .db.objects import ObjectStore
from .images.spec_imports import SpecTagImports
from .metrics import MULTIPROCESS_DIR
from .operator.looping import again_and_again
from .server import Listeners, addresses, own_hosts, prepare, serve
from .settings import Settings

log = structlog.get_logger("wharf")

# {"index": i, "parent": pid, "sockets": {"registry": fd, ...}, "settings": {...}}
_WORKER = "WHARF_WORKER"
_PR_SET_PDEATHSIG = 1


def bind(settings: Settings) -> Listeners:
    """The listening sockets of the settings' role, inheritable by the workers."""
    wanted = {}
    if settings.serves_registry:
        wanted["registry"] = (settings.listen_host, settings.listen_port)
    if settings.serves_api:
        wanted["api"] = (settings.api_host, settings.api_port)
    listeners = {}
    for name, address in wanted.items():
        sock = socket.create_server(address, backlog=1024)
        sock.set_inheritable(True)
        listeners[name] = sock
    return listeners


class Supervisor:
    """Keeps `wanted` workers serving; `ready` and `scale` are what the operator's Config
    (`spec.replicas`) drives."""

    # A worker that dies sooner than this after its start is started again only after a pause:
    # a worker that cannot start must not spin the machine.
    QUICK_DEATH = 5.0

    def __init__(self, settings: Settings, listeners: Listeners, wanted: int) -> None:
        self.settings = settings
        self.listeners = listeners
        self.wanted = wanted
        # The workers' metrics, summed by whichever of them answers a scrape.
        self.metrics_dir = tempfile.mkdtemp(prefix="wharf-metrics-")
        self.workers: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        # The Config generation each worker last applied, as it tells through its report pipe.
        self.applied: dict[int, int] = {}
        self._reports: dict[int, asyncio.Task[None]] = {}
        self._reported = asyncio.Event()

    def ready(self) -> int:
        return sum(1 for w in self.workers.values() if w.returncode is None)

    async def wait_applied(self, generation: int, timeout: float) -> None:
        """Until every live worker said it applied `generation` (or `timeout` passed)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while any(self.applied.get(i, 0) < generation for i in self.workers):
                    await self._reported.wait()

    async def _read_reports(self, index: int, process: object, fd: int) -> None:
        """A worker's report pipe: one generation number a line, until the worker ends."""
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                if self.workers.get(index) is process and line.strip().isdigit():
                    self.applied[index] = int(line)
                    reported, self._reported = self._reported, asyncio.Event()
                    reported.set()
        finally:
            transport.close()

    async def scale(self, wanted: int) -> None:
        self.wanted = wanted
        for index in range(wanted):
            if index not in self.workers:
                await self._start(index)
        for index in sorted(self.workers, reverse=True):
            if index >= wanted:
                # Drains its requests in flight, as any worker does on SIGTERM.
                with contextlib.suppress(ProcessLookupError):
                    self.workers[index].send_signal(signal.SIGTERM)

    async def _start(self, index: int) -> None:
        report_read, report_write = os.pipe()
        spec = {
            "index": index,
            "parent": os.getpid(),
            "sockets": {name: sock.fileno() for name, sock in self.listeners.items()},
            "report": report_write,
            "settings": json.loads(self.settings.model_dump_json()),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wharf.workers",
                env={**os.environ, _WORKER: json.dumps(spec), MULTIPROCESS_DIR: self.metrics_dir},
                pass_fds=[*(sock.fileno() for sock in self.listeners.values()), report_write],
            )
        except BaseException:
            os.close(report_read)
            raise
        finally:
            os.close(report_write)  # the worker holds it now: its end ends the pipe
        self.applied.pop(index, None)
        self.workers[index] = process
        self._watchers[index] = asyncio.create_task(self._watch(index, process))
        self._reports[index] = asyncio.create_task(self._read_reports(index, process, report_read))
        log.info("worker started", worker=index, pid=process.pid)

    async def _watch(self, index: int, process: asyncio.subprocess.Process) -> None:
        began = time.monotonic()
        code = await process.wait()
        # Its counters stay in the sums; its gauges (requests in flight) end with it.
        multiprocess.mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        if self.workers.get(index) is process:
            del self.workers[index]
            self.applied.pop(index, None)
            reported, self._reported = self._reported, asyncio.Event()
            reported.set()  # a waiter no longer waits for this one
        if self._stopping or index >= self.wanted:
            log.info("worker stopped", worker=index, pid=process.pid, code=code)
            return
        log.warning("worker died; starting it again", worker=index, pid=process.pid, code=code)
        if time.monotonic() - began < self.QUICK_DEATH:
            await asyncio.sleep(self.QUICK_DEATH)
        if not self._stopping and index < self.wanted and index not in self.workers:
            await self._start(index)

    async def stop(self, deadline: float) -> None:
        """SIGTERM to every worker; those still running after `deadline` (and a little time
        to close) are killed."""
        self._stopping = True
        for process in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [process.wait() for process in self.workers.values()]
        try:
            async with asyncio.timeout(deadline + 10):
                await asyncio.gather(*waits)
        except TimeoutError:
            for process in self.workers.values():
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
        for task in self._watchers.values():
            task.cancel()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


async def supervise(settings: Settings) -> None:
    """Serve with worker processes. The operator runs here, in the supervisor: the Config's
    `spec.replicas` is the number of workers (the first Config takes `--workers`)."""
    logs.configure(settings.log_level, settings.log_format == "json")
    # Taken first: a SIGTERM while the workers start still stops them all in order.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await prepare(settings)
    listeners = bind(settings)
    supervisor = Supervisor(settings, listeners, settings.workers)
    database = open_database(settings.database)
    objects = ObjectStore(database)
    operating: asyncio.Task[None] | None = None
    leadership = operator.Leadership(objects)
    if settings.serves_registry:
        found = await operator.supervising(objects, settings, supervisor, leadership)
        operating = asyncio.create_task(found.run())
    importing: asyncio.Task[None] | None = None
    if settings.import_interval > 0:
        # Scheduled imports run here, by the holder of the operator's lease.
        imports = SpecTagImports(
            objects,
            partial(own_hosts, settings, RouteAddresses(objects, settings.internal_address)),
        )
        importing = asyncio.create_task(
            again_and_again(
                partial(imports.run_scheduled, settings.import_interval, leadership.ours),
                "imports",
            )
        )
    if not supervisor.workers:  # no registry here, or the Config could not be read
        await supervisor.scale(settings.workers)
    log.info(
        "serving",
        workers=len(supervisor.workers),
        data_dir=str(settings.data_dir),
        **addresses(settings),
    )
    await stop.wait()
    log.info("stopping", workers=supervisor.ready())
    for task in (operating, importing):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await supervisor.stop(settings.shutdown_timeout)
    await objects.watch_cache.close()
    await database.dispose()
    for sock in listeners.values():
        sock.close()
    log.info("stopped")


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the supervisor died before the line above took effect
        os._exit(1)


def _worker_main() -> None:
    spec = json.loads(os.environ.pop(_WORKER))
    _die_with_parent(spec["parent"])
    settings = Settings.model_validate(spec["settings"])
    # Every line this worker logs says which worker it is.
    structlog.contextvars.bind_contextvars(worker=spec["index"])
    listeners = {name: socket.socket(fileno=fd) for name, fd in spec["sockets"].items()}
    report_fd = int(spec["report"])

    def report(generation: int) -> None:
        # A line of a few bytes on a pipe: written whole, at once.
        with contextlib.suppress(OSError):  # the supervisor went: PDEATHSIG follows
            os.write(report_fd, f"{generation}\n".encode())

    asyncio.run(serve(settings, listeners, report))


if __name__ == "__main__":
    _worker_main()
