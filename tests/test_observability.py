"""Running Wharf is not blind: one access-log line per request on both ports (never a token),
Prometheus metrics under OpenShift's names for the registry and Kubernetes' for the API, each
readable only by who may, and scraped by the real Prometheus."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.cluster import Cluster, bearer, registry_session, unique
from tests.support.oci import Registry, assert_error
from tests.support.server import WharfProcess, free_port, running_wharf, wait_until

RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def wharf(integrated_wharf: WharfProcess) -> WharfProcess:
    return integrated_wharf


@pytest.fixture(scope="module")
def cluster(integrated_wharf: WharfProcess, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    return Cluster(integrated_wharf, tmp_path_factory.mktemp("observe-cluster"))


def access_lines(wharf: WharfProcess, request_id: str) -> list[str]:
    return [line for line in wharf.log().splitlines() if request_id in line and "request" in line]


def test_each_request_is_one_access_line_without_its_token(
    wharf: WharfProcess, cluster: Cluster
) -> None:
    project = cluster.new_project(cluster.admin, unique("logged"))
    registry = Registry(wharf.url, registry_session(wharf, bearer(cluster.admin_token)))
    registry.push_image(f"{project}/app", "v1")
    answered = registry.http.get(f"{wharf.url}/v2/{project}/app/manifests/v1")
    assert answered.status_code == 200
    request_id = answered.headers["X-Request-Id"]

    def logged() -> bool:
        return len(access_lines(wharf, request_id)) == 1

    wait_until(logged, timeout=10)
    (line,) = access_lines(wharf, request_id)
    for part in (
        "method=GET",
        f"path=/v2/{project}/app/manifests/v1",
        "status=200",
        "user=kubeadmin",
        "bytes_out=",
        "ms=",
    ):
        assert part in line, line
    api = cluster.admin.get("/api/v1/namespaces", params={"limit": "1"})
    wait_until(lambda: len(access_lines(wharf, api.headers["X-Request-Id"])) == 1, timeout=10)
    (api_line,) = access_lines(wharf, api.headers["X-Request-Id"])
    assert "path=/api/v1/namespaces" in api_line and "limit" not in api_line, api_line
    token = cluster.admin_token.removeprefix("sha256~")
    assert token not in wharf.log(), "a token reached the log"


def test_registry_metrics_need_registry_monitoring(wharf: WharfProcess, cluster: Cluster) -> None:
    path = f"{wharf.url}/extensions/v2/metrics"
    anonymous = requests.get(path, verify=str(wharf.ca_file), timeout=30)
    assert_error(anonymous, 401, "UNAUTHORIZED")
    user = cluster.user("scraper")
    denied = requests.get(
        path, headers={"Authorization": bearer(user.token)}, verify=str(wharf.ca_file), timeout=30
    )
    # As OpenShift's registry answers any refusal: 401 with "access denied".
    assert (
        "may not read the registry's metrics"
        in assert_error(denied, 401, "UNAUTHORIZED")["message"]
    )
    binding = {
        "metadata": {"name": unique("monitoring")},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "registry-monitoring"},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user.name}],
    }
    made = cluster.admin.post(f"/apis/{RBAC}/v1/clusterrolebindings", json=binding)
    assert made.status_code == 201, made.text

    def allowed() -> bool:
        response = requests.get(
            path,
            headers={"Authorization": bearer(user.token)},
            verify=str(wharf.ca_file),
            timeout=30,
        )
        return response.status_code == 200

    wait_until(allowed, timeout=10)
    text = requests.get(
        path, headers={"Authorization": bearer(user.token)}, verify=str(wharf.ca_file), timeout=30
    ).text
    assert 'imageregistry_http_requests_total{code="401",method="GET"}' in text
    assert "imageregistry_http_in_flight_requests" in text
    assert 'imageregistry_request_duration_seconds_count{operation="metrics_endpoint"}' in text
    # The push of the first test went to storage: its calls are timed by operation.
    assert 'imageregistry_storage_duration_seconds_count{operation="commit"}' in text


def test_api_metrics_need_system_monitoring(cluster: Cluster) -> None:
    user = cluster.user("apiscraper")
    response = user.api.get("/metrics")
    assert response.status_code == 403 and response.json()["kind"] == "Status", response.text
    assert cluster.admin.get("/api/v1/secrets").status_code == 200
    text = cluster.admin.get("/metrics").text
    assert 'apiserver_request_total{code="200",resource="secrets",verb="list"}' in text, text[:500]
    assert 'wharf_database_seconds_count{kind="read"}' in text


def prometheus_config(wharf: WharfProcess, token: str, workdir: Path) -> Path:
    token_file = workdir / "token"
    token_file.write_text(token)
    tls = {"ca_file": str(wharf.ca_file)}
    jobs = [
        {"job_name": "registry", "metrics_path": "/extensions/v2/metrics", "target": wharf.host},
        {"job_name": "api", "metrics_path": "/metrics", "target": f"127.0.0.1:{wharf.api_port}"},
    ]
    scrape = [
        {
            "job_name": job["job_name"],
            "scheme": "https",
            "metrics_path": job["metrics_path"],
            "scrape_interval": "1s",
            "authorization": {"credentials_file": str(token_file)},
            "tls_config": tls,
            "static_configs": [{"targets": [job["target"]]}],
        }
        for job in jobs
    ]
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps({"scrape_configs": scrape}))  # JSON is YAML
    return config


def query(port: int, expression: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=10
    )
    body: dict[str, Any] = response.json()
    return list(body.get("data", {}).get("result", []))


def test_prometheus_scrapes_both(wharf: WharfProcess, cluster: Cluster, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is installed by scripts/test"
    port = free_port()
    config = prometheus_config(wharf, cluster.admin_token, tmp_path)
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        registry = Registry(wharf.url, registry_session(wharf, bearer(cluster.admin_token)))
        registry.http.get(f"{wharf.url}/v2/")

        def scraped() -> bool:
            try:
                registry_up = query(port, 'up{job="registry"} == 1')
                counted = query(port, "imageregistry_http_requests_total")
                api = query(port, 'apiserver_request_total{verb="get"}')
            except requests.ConnectionError:
                return False
            return bool(registry_up and counted and api)

        wait_until(scraped, timeout=60, interval=0.5)
        counted = query(port, 'sum(imageregistry_http_requests_total{method="GET"})')
        assert float(counted[0]["value"][1]) >= 1
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_a_metrics_secret_reads_the_registry_metrics(tmp_path: Path) -> None:
    secret = "metrics-" + unique("s")
    with running_wharf(tmp_path / "data", "--metrics-secret", secret, integrated=True) as wharf:
        path = f"{wharf.url}/extensions/v2/metrics"
        read = requests.get(
            path,
            headers={"Authorization": f"Bearer {secret}"},
            verify=str(wharf.ca_file),
            timeout=30,
        )
        assert read.status_code == 200 and "imageregistry_http_requests_total" in read.text
        wrong = requests.get(
            path,
            headers={"Authorization": f"Bearer {secret}x"},
            verify=str(wharf.ca_file),
            timeout=30,
        )
        assert_error(wrong, 401, "UNAUTHORIZED")
        assert secret not in wharf.log()


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", "--log-format", "json") as wharf:
        answered = requests.get(f"{wharf.url}/v2/", timeout=30)
        request_id = answered.headers["X-Request-Id"]
        wait_until(lambda: request_id in wharf.log(), timeout=10)
    entries = [json.loads(line) for line in wharf.log().splitlines() if line.startswith("{")]
    (access,) = [e for e in entries if e.get("request_id") == request_id]
    assert access["event"] == "request" and access["status"] == 200 and access["path"] == "/v2/"
    assert any(e.get("event") == "stopped" for e in entries)
    others = [line for line in wharf.log().splitlines() if not line.startswith("{")]
    assert all(line.startswith("kubeadmin password") for line in others), others


def in_flight(wharf: WharfProcess) -> float:
    text = requests.get(f"{wharf.url}/extensions/v2/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("imageregistry_http_in_flight_requests "):
            return float(line.split()[1])
    return 0.0


def start_slow_patch(wharf: WharfProcess, first: bytes) -> tuple[http.client.HTTPConnection, str]:
    """A chunked PATCH of a new upload whose body has only begun to arrive."""
    repo = f"slow/{unique('r')}"
    started = requests.post(f"{wharf.url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    connection = http.client.HTTPConnection("127.0.0.1", wharf.port, timeout=30)
    connection.putrequest("PATCH", location)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"%x\r\n%s\r\n" % (len(first), first))
    # The metrics request counts itself: more than one is the PATCH being answered.
    wait_until(lambda: in_flight(wharf) >= 2, timeout=10)
    return connection, location


def refused(wharf: WharfProcess) -> bool:
    try:
        socket.create_connection(("127.0.0.1", wharf.port), timeout=1).close()
    except OSError:
        return True
    return False


def test_sigterm_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    with running_wharf(tmp_path / "data", "--shutdown-timeout", "30") as wharf:
        connection, _location = start_slow_patch(wharf, b"a" * 1000)
        wharf.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping" in wharf.log(), timeout=10)
        wait_until(lambda: refused(wharf), timeout=10)  # no new connection is taken
        connection.send(b"%x\r\n%s\r\n0\r\n\r\n" % (1000, b"b" * 1000))
        answer = connection.getresponse()
        assert answer.status == 202, answer.read()
        assert answer.getheader("Range") == "0-1999"
        assert wharf.process.wait(timeout=30) == 0
    assert "requests_in_flight=1" in wharf.log() and "stopped" in wharf.log()


def test_sigterm_cuts_what_outlives_the_deadline(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_wharf(data, "--shutdown-timeout", "1") as wharf:
        connection, location = start_slow_patch(wharf, b"c" * 1000)
        wharf.process.send_signal(signal.SIGTERM)
        assert wharf.process.wait(timeout=30) == 0
        connection.close()
    with running_wharf(data, port=wharf.port) as again:
        status = requests.get(f"{again.url}{location}", timeout=30)
        # Resumable where it stopped, or gone: never a blob nobody finished.
        assert status.status_code in (204, 404), status.text
        if status.status_code == 204:
            assert int(status.headers["Range"].split("-")[1]) <= 999, status.headers
