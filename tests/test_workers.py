"""`wharf serve --workers N`: N processes share the ports, each request may land on any of
them, a worker that dies is replaced, and the supervisor takes them all along when it stops or
is killed. `--role` runs the registry or the API alone."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.cluster import Cluster
from tests.support.oci import OCTET, Registry, digest_of, random_bytes, with_query
from tests.support.operator_admin import RegistryAdmin
from tests.support.server import (
    WharfProcess,
    database_for_new_wharf,
    free_port,
    running_wharf,
    wait_until,
)


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found.update(int(child) for child in text.split())
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is no longer serving.
    return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def workers_in_log(wharf: WharfProcess) -> set[int]:
    """The workers that logged a request."""
    return {int(n) for n in re.findall(r"request \[wharf.access\].* worker=(\d+)", wharf.log())}


def wait_for_workers(wharf: WharfProcess, count: int) -> None:
    """Until `count` workers serve: the supervisor answers as soon as the first one does."""
    wait_until(lambda: len(set(re.findall(r"worker serving .*worker=(\d+)", wharf.log()))) == count)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[WharfProcess]:
    with running_wharf(tmp_path / "data", workers=2) as wharf:
        wait_for_workers(wharf, 2)
        yield wharf


def fresh_connections(url: str) -> Registry:
    """A client that opens a new connection for every request, so the kernel hands each one
    to whichever worker accepts it."""
    http = requests.Session()
    http.headers["Connection"] = "close"
    return Registry(url, http)


def test_a_chunked_upload_completes_across_workers(two_workers: WharfProcess) -> None:
    reg = fresh_connections(two_workers.url)
    data = random_bytes(3 * 1024 * 1024, seed=7)
    digest = digest_of(data)
    location = reg.start_upload("workers/chunked").headers["Location"]
    chunk = 64 * 1024
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        answer = reg.http.patch(
            f"{two_workers.url}{location}",
            data=part,
            headers={"Content-Type": OCTET, "Content-Range": f"{start}-{start + len(part) - 1}"},
        )
        assert answer.status_code == 202, answer.text
        location = answer.headers["Location"]
    done = reg.http.put(with_query(f"{two_workers.url}{location}", digest=digest))
    assert done.status_code == 201, done.text
    assert reg.blob("workers/chunked", digest).content == data
    # Both workers took part: the upload's state lives in the database, not in a process.
    assert workers_in_log(two_workers) == {0, 1}


def test_a_dead_worker_is_replaced_and_the_others_serve_meanwhile(
    two_workers: WharfProcess,
) -> None:
    before = children(two_workers.process.pid)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    reg = fresh_connections(two_workers.url)
    for _ in range(20):
        assert reg.http.get(reg.v2("")).status_code == 200
    wait_until(lambda: len(children(two_workers.process.pid) - {victim}) == 2, timeout=30)
    assert "worker died; starting it again" in two_workers.log()


def test_sigterm_drains_every_worker_and_exits_zero(two_workers: WharfProcess) -> None:
    workers = children(two_workers.process.pid)
    two_workers.process.send_signal(signal.SIGTERM)
    assert two_workers.process.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in workers)
    assert two_workers.log().count("worker stopped") == 2


def test_a_killed_supervisor_takes_its_workers_along(two_workers: WharfProcess) -> None:
    workers = children(two_workers.process.pid)
    two_workers.process.kill()
    two_workers.process.wait(timeout=10)
    wait_until(lambda: not any(alive(pid) for pid in workers), timeout=10)
    # Its threads end a moment after the process shows as exited: the port closes with them.
    wait_until(lambda: refuses(two_workers.port), timeout=10)


def test_role_registry_serves_no_api(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", role="registry") as wharf:
        assert requests.get(f"{wharf.url}/v2/", timeout=5).status_code == 200
        assert refuses(wharf.api_port)


def test_role_api_serves_no_registry(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", role="api") as wharf:
        answer = requests.get(f"{wharf.api_url}/version", verify=str(wharf.ca_file), timeout=5)
        assert answer.status_code == 200
        assert refuses(wharf.port)


def wharf_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wharf", *args], capture_output=True, text=True, timeout=120
    )


def database_args(tmp_path: Path) -> list[str]:
    url = database_for_new_wharf()
    return ["--data-dir", str(tmp_path / "data"), *(["--database-url", url] if url else [])]


def test_migrate_brings_a_new_database_to_the_newest_schema_and_again_changes_nothing(
    tmp_path: Path,
) -> None:
    args = database_args(tmp_path)
    first = wharf_command("migrate", *args)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"database schema at revision \d{4}\n", first.stdout)
    again = wharf_command("migrate", *args)
    assert (again.returncode, again.stdout) == (0, first.stdout)


def test_a_schema_newer_than_the_code_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    args = database_args(tmp_path)
    assert wharf_command("migrate", *args).returncode == 0
    set_revision(args, "9999")
    for verb in (["migrate"], ["serve", "--workers", "1", "--listen", f"127.0.0.1:{free_port()}"]):
        refused = wharf_command(*verb, *args)
        assert refused.returncode == 1
        assert "error: the database's schema is at revision 9999, newer than this Wharf" in (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr


def set_revision(args: list[str], revision: str) -> None:
    """Mark the database as migrated by a future Wharf."""
    statement = f"UPDATE alembic_version SET version_num = '{revision}'"
    if "--database-url" in args:
        from tests.support.postgres import shared_cluster

        database = args[args.index("--database-url") + 1].rsplit("/", 1)[1]
        shared_cluster().sql(statement, database)
        return
    with sqlite3.connect(Path(args[1]) / "wharf.db") as conn:
        conn.execute(statement)


def test_servers_starting_together_on_one_database_all_serve(tmp_path: Path) -> None:
    url = database_for_new_wharf()
    shared = tmp_path / "shared"
    with contextlib.ExitStack() as stack:
        # Entered one after another, but each process starts at once: their start-up work
        # (schema, default roles and namespaces) overlaps.
        processes = [
            stack.enter_context(running_wharf(shared, database_url=url, wait=False))
            for _ in range(3)
        ]
        for wharf in processes:
            wharf.wait_ready()
            assert "Traceback" not in wharf.log()
            assert "error" not in wharf.log().lower()


def requests_counted(text: str) -> float:
    found = re.search(
        r'^imageregistry_http_requests_total\{code="200",method="GET"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    secret = "scrape-me"
    with running_wharf(tmp_path / "data", "--metrics-secret", secret, workers=2) as wharf:
        wait_for_workers(wharf, 2)
        reg = fresh_connections(wharf.url)
        for _ in range(40):
            assert reg.http.get(reg.v2("")).status_code == 200
        wait_until(lambda: workers_in_log(wharf) == {0, 1}, timeout=10)
        scrape = f"{wharf.url}/extensions/v2/metrics"
        for _ in range(6):  # answered by either worker: each tells the sum
            text = reg.http.get(scrape, headers={"Authorization": f"Bearer {secret}"}).text
            assert requests_counted(text) >= 40
            # The API's metrics stay on the API's endpoint.
            assert "apiserver_request_total" not in text


def test_the_configs_replicas_are_the_number_of_workers(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", workers=2) as wharf:
        admin = RegistryAdmin(Cluster(wharf, tmp_path).kubectl())
        assert admin.config()["spec"]["replicas"] == 2  # the first Config takes --workers
        for wanted in (3, 1):
            admin.patch({"replicas": wanted})
            wait_until(lambda n=wanted: len(children(wharf.process.pid)) == n, timeout=30)
            wait_until(
                lambda n=wanted: admin.config()["status"].get("readyReplicas") == n, timeout=40
            )
        assert requests.get(f"{wharf.url}/v2/", timeout=5).status_code == 200


def test_a_generation_is_observed_once_every_worker_applied_it(two_workers: WharfProcess) -> None:
    """observedGeneration is what the workers confirmed: right after it, every worker (each
    request may reach either) answers as the Config says."""
    admin = RegistryAdmin(Cluster(two_workers, two_workers.data_dir.parent).kubectl())
    uploads = f"{two_workers.url}/v2/gen/app/blobs/uploads/"
    for read_only, status in ((True, 405), (False, 202)):
        admin.patch({"readOnly": read_only})
        answers = {requests.post(uploads, timeout=5).status_code for _ in range(20)}
        assert answers == {status}, answers


def test_concurrent_pushes_into_one_new_image_stream_across_workers(tmp_path: Path) -> None:
    """Pushes racing to make the same image stream, on different processes: every one lands
    (on PostgreSQL the later INSERT waits for the earlier commit and takes its stream)."""
    with running_wharf(tmp_path / "data", "--auth", workers=2) as wharf:
        wait_for_workers(wharf, 2)
        cluster = Cluster(wharf, tmp_path)
        token = requests.get(
            f"{wharf.url}/openshift/token",
            auth=("kubeadmin", cluster.admin_token),
            timeout=10,
        ).json()["token"]
        pushes = 12

        def push(n: int) -> str:
            http = requests.Session()
            http.headers.update({"Authorization": f"Bearer {token}", "Connection": "close"})
            return Registry(wharf.url, http).push_image("default/raced", f"t{n}", seed=n).digest

        with ThreadPoolExecutor(max_workers=pushes) as pool:
            digests = list(pool.map(push, range(pushes)))
        stream = cluster.admin.get(
            "/apis/image.openshift.io/v1/namespaces/default/imagestreams/raced"
        ).json()
        tags = {t["tag"]: t["items"][0]["image"] for t in stream["status"]["tags"]}
        assert tags == {f"t{n}": digest for n, digest in enumerate(digests)}
