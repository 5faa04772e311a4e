"""S3 going away, answering errors, or too slow to answer, in the middle of a run: clients get
503 UNAVAILABLE with Retry-After (never a 500), /readyz says storage is not ready while
/healthz stays up, and once S3 is back everything acknowledged before is there and the uploads
in progress continue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.oci import (
    OCTET,
    Registry,
    absolute,
    assert_error,
    digest_of,
    random_bytes,
    with_query,
)
from tests.support.s3 import MotoServer, s3_args
from tests.support.server import WharfProcess, running_wharf, wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.s3
MiB = 1024 * 1024


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[TcpProxy]:
    front = TcpProxy(moto.port)
    front.start()
    yield front
    front.stop()


@pytest.fixture
def wharf_behind(proxy: TcpProxy, moto: MotoServer, tmp_path: Path) -> Iterator[WharfProcess]:
    """Wharf with S3 through the proxy; blob GETs streamed, so that they need S3 too."""
    args = s3_args(moto, moto.new_bucket(), "--s3-disable-redirect", "--s3-chunk-size", "5")
    args = (*args, "--s3-endpoint", proxy.url, "--s3-request-timeout", "2")
    with running_wharf(tmp_path / "data", *args) as server:
        yield server


def ready(server: WharfProcess) -> int:
    return requests.get(f"{server.url}/readyz", timeout=10).status_code


def assert_unavailable(response: requests.Response) -> None:
    assert_error(response, 503, "UNAVAILABLE")
    assert response.headers["Retry-After"] == "5"


def assert_no_internal_errors(server: WharfProcess) -> None:
    assert server.process.poll() is None, "wharf exited"
    log = server.log()
    assert "Traceback" not in log
    assert "request failed" not in log  # the envelope's line for an unexpected exception


def test_s3_stopped_mid_run_then_back(wharf_behind: WharfProcess, proxy: TcpProxy) -> None:
    reg = Registry(wharf_behind.url)
    image = reg.push_image("faults/app", "v1", layers=2)
    pending = random_bytes(8 * MiB, seed=1)
    session = absolute(reg.url, reg.start_upload("faults/app"))
    first = reg.http.patch(session, data=pending[: 6 * MiB], headers={"Content-Type": OCTET})
    assert first.status_code == 202
    session = absolute(reg.url, first)

    proxy.stop()
    layer = next(iter(image.blobs))
    assert_unavailable(reg.blob("faults/app", layer))
    assert_unavailable(
        reg.http.post(
            with_query(reg.v2("faults/app/blobs/uploads/"), digest=digest_of(b"new")),
            data=b"new",
        )
    )
    assert_unavailable(
        reg.http.patch(
            session,
            data=pending[6 * MiB :],
            headers={"Content-Range": f"{6 * MiB}-{8 * MiB - 1}", "Content-Type": OCTET},
        )
    )
    wait_until(lambda: ready(wharf_behind) == 503, timeout=20)
    # The answer names the part that failed; the reason is in the log, once.
    answer = requests.get(f"{wharf_behind.url}/readyz", timeout=10).text
    assert answer.splitlines() == [
        "[+]database ok",
        "[-]storage failed: reason withheld",
        "readyz check failed",
    ]
    assert requests.get(f"{wharf_behind.url}/healthz", timeout=5).status_code == 200
    # What the database knows needs no S3.
    assert reg.head_blob("faults/app", layer).status_code == 200
    assert reg.get_manifest("faults/app", "v1").content == image.payload
    assert reg.http.get(session).headers["Range"] == f"0-{6 * MiB - 1}"

    proxy.start()
    wait_until(lambda: ready(wharf_behind) == 200, timeout=20)
    log = wharf_behind.log()
    assert log.count("not ready") == 1 and "part=storage" in log and "ready again" in log
    for digest, data in image.blobs.items():
        assert reg.blob("faults/app", digest).content == data
    # The upload continues from what was acknowledged before S3 went away.
    rest = reg.http.patch(
        session,
        data=pending[6 * MiB :],
        headers={"Content-Range": f"{6 * MiB}-{8 * MiB - 1}", "Content-Type": OCTET},
    )
    assert rest.status_code == 202, rest.content
    created = reg.http.put(with_query(absolute(reg.url, rest), digest=digest_of(pending)))
    assert created.status_code == 201, created.content
    assert reg.blob("faults/app", digest_of(pending)).content == pending
    assert_no_internal_errors(wharf_behind)


def test_s3_errors_and_throttling_are_503(wharf_behind: WharfProcess, proxy: TcpProxy) -> None:
    reg = Registry(wharf_behind.url)
    kept = reg.push_blob("faults/throttled", b"before")
    proxy.set_mode("error")
    assert_unavailable(
        reg.http.post(
            with_query(reg.v2("faults/throttled/blobs/uploads/"), digest=digest_of(b"x")),
            data=b"x",
        )
    )
    assert_unavailable(reg.blob("faults/throttled", kept))
    wait_until(lambda: ready(wharf_behind) == 503, timeout=20)
    proxy.set_mode("forward")
    wait_until(lambda: ready(wharf_behind) == 200, timeout=20)
    assert reg.blob("faults/throttled", kept).content == b"before"
    assert reg.push_blob("faults/throttled", b"after") == digest_of(b"after")
    assert_no_internal_errors(wharf_behind)


def test_s3_too_slow_is_503(wharf_behind: WharfProcess, proxy: TcpProxy) -> None:
    reg = Registry(wharf_behind.url)
    kept = reg.push_blob("faults/slow", b"patience")
    proxy.set_mode("silent")
    started = time.monotonic()
    assert_unavailable(reg.http.get(reg.v2(f"faults/slow/blobs/{kept}"), timeout=60))
    assert time.monotonic() - started < 30  # timeouts, not a hang
    proxy.set_mode("forward")
    wait_until(lambda: ready(wharf_behind) == 200, timeout=20)
    assert reg.blob("faults/slow", kept).content == b"patience"
    assert_no_internal_errors(wharf_behind)


def test_s3_gone_while_a_blob_streams(wharf_behind: WharfProcess, proxy: TcpProxy) -> None:
    """The status and length went out before S3 failed: the connection is cut, the client
    gets a short body (and would retry), and Wharf serves again once S3 is back."""
    reg = Registry(wharf_behind.url)
    data = random_bytes(32 * MiB, seed=4)
    digest = reg.push_blob("faults/streaming", data)
    received = b""
    with reg.http.get(reg.v2(f"faults/streaming/blobs/{digest}"), stream=True) as answer:
        assert answer.status_code == 200
        assert answer.headers["Content-Length"] == str(len(data))
        pieces = answer.iter_content(MiB)
        received += next(pieces)
        proxy.stop()
        with pytest.raises(requests.exceptions.RequestException):
            for piece in pieces:
                received += piece
    assert len(received) < len(data)
    assert received == data[: len(received)]
    proxy.start()
    wait_until(lambda: ready(wharf_behind) == 200, timeout=20)
    assert reg.blob("faults/streaming", digest).content == data
    assert_no_internal_errors(wharf_behind)
    assert "blob stream cut" in wharf_behind.log()
