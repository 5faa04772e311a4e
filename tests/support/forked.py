"""`wharf` processes forked from a server that imported Wharf once.

A cold `python -m wharf` spends over a second of CPU importing before it serves (0.4 s for a
client verb), and the suite starts hundreds of servers and a thousand commands on two cores.
Each process here is still a process of its own: its own environment, working directory,
stdin, stdout, stderr, signals and exit status, running the command's own entry point. What
it does not exercise is the interpreter's start and the imports: cold runs (`python -m wharf`)
keep covering those, in the two documented workflows (tests/test_workflow.py,
tests/test_cli_workflow.py), the README's commands and the migrate tests."""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

_FORKS = multiprocessing.get_context("forkserver")
# wharf.db.migrate brings Alembic, which every server start would import (0.1 s) otherwise.
_FORKS.set_forkserver_preload(
    ["wharf.cli.main", "wharf.server", "wharf.db.migrate", "tests.support.forked"]
)


def _stream(fd: int, mode: str) -> io.TextIOWrapper:
    # Written through, as with PYTHONUNBUFFERED: a test reads a server's log while it runs.
    raw = io.FileIO(fd, mode, closefd=False)
    if mode == "r":
        return io.TextIOWrapper(io.BufferedReader(raw))
    return io.TextIOWrapper(raw, write_through=True, line_buffering=True)


def _redirect(path: str, flags: int, fd: int) -> None:
    opened = os.open(path, flags)
    os.dup2(opened, fd)  # inheritable: the workers a server starts write to the same files
    os.close(opened)


def _main(args: list[str], env: dict[str, str], cwd: str, files: tuple[str, str, str]) -> None:
    """In the forked process: become `wharf ARGS` in `cwd` with `env`, its stdin, stdout and
    stderr the `files` (stdout and stderr may be one file, as 2>&1)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    stdin, stdout, stderr = files
    _redirect(stdin, os.O_RDONLY, 0)
    _redirect(stdout, os.O_WRONLY | os.O_APPEND, 1)
    if stderr == stdout:
        os.dup2(1, 2)
    else:
        _redirect(stderr, os.O_WRONLY | os.O_APPEND, 2)
    sys.stdin, sys.stdout, sys.stderr = _stream(0, "r"), _stream(1, "w"), _stream(2, "w")
    from wharf.cli.main import app

    try:
        app(args=args, prog_name="wharf")
    finally:
        # As an interpreter ending would (a forked process ends with os._exit): a client
        # verb's temporary CA files are removed.
        atexit._run_exitfuncs()


class Forked:
    """A forked `wharf ARGS`, with the part of `subprocess.Popen` the tests use."""

    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        stdin: Path | None = None,
        stdout: Path,
        stderr: Path | None = None,
    ) -> None:
        self.args = args
        files = (str(stdin or os.devnull), str(stdout), str(stderr or stdout))
        self._process = _FORKS.Process(target=_main, args=(args, env, str(cwd), files))
        self._process.start()
        assert self._process.pid is not None
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(["wharf", *self.args], timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def run(
    args: list[str], *, env: dict[str, str], cwd: Path, stdin: str, timeout: float
) -> tuple[int, str, str]:
    """Run `wharf ARGS` to its end, with `stdin` as its input; its exit status, stdout and
    stderr."""
    with tempfile.TemporaryDirectory(prefix="wharf-run-") as scratch:
        paths = [Path(scratch, name) for name in ("in", "out", "err")]
        for path, text in zip(paths, (stdin, "", ""), strict=True):
            path.write_text(text)
        process = Forked(args, env=env, cwd=cwd, stdin=paths[0], stdout=paths[1], stderr=paths[2])
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        return code, paths[1].read_text(), paths[2].read_text()


def _warm() -> None:
    """Build the `wharf` command once, here: in the fork server, so that no forked command
    builds it again (a tenth of a second each, and a run forks a thousand)."""
    from wharf.cli.main import app, command_of

    command_of(app)


_warm()
