"""benchmarks/run in smoke mode: both registries start, every measurement yields a figure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.registry_bench import AUTH_LINES, LINE_NAMES, WORKER_LINES
from benchmarks.servers import reference_binary
from benchmarks.wrk_load import wrk_binary
from tests.support.lanes import database_lane

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    reference_binary() is None or shutil.which("curl") is None,
    reason="needs docker-registry and curl (scripts/test installs them)",
)


def _figures(table: str, name: str) -> tuple[float, float, float]:
    line = next((row for row in table.splitlines() if row.startswith(name + " ")), None)
    assert line is not None, f"no line {name!r} in the table:\n{table}"
    reference, wharf, ratio = line[len(name) :].split()[:3]
    return float(reference), float(wharf), float(ratio.removesuffix("x"))


def test_smoke_run_prints_every_line_with_positive_figures(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.registry_bench",
            "--smoke",
            # The lane's database: on PostgreSQL, Wharf's is a cluster of the run's own.
            "--database",
            database_lane(),
            "--json",
            str(result_file),
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    table = result.stdout
    assert "higher is better" in table
    for name in LINE_NAMES:
        reference, wharf, ratio = _figures(table, name)
        assert reference > 0 and wharf > 0 and ratio > 0, f"{name}: {reference} {wharf} {ratio}"

    # Wharf with auth on, against Wharf without it: the reference column is Wharf's.
    assert "reference = Wharf without auth" in table
    auth_names = [name for _, name, *_ in AUTH_LINES]
    assert auth_names == [
        "small-image push, auth on (images/s)",
        "small-image pull, auth on (images/s)",
    ]
    for name in auth_names:
        reference, wharf, ratio = _figures(table, name)
        assert reference > 0 and wharf > 0 and ratio > 0, f"{name}: {reference} {wharf} {ratio}"
        assert ">= 0.8x" in next(row for row in table.splitlines() if row.startswith(name))

    document = json.loads(result_file.read_text())
    assert document["database"] == database_lane()
    assert [line["name"] for line in document["lines"]] == LINE_NAMES
    for line in document["lines"]:
        assert line["reference"] > 0 and line["wharf"] > 0 and line["ratio"] > 0
    lines = {line["name"]: line for line in document["lines"]}
    for name, auth_off in [
        ("small-image push, auth on (images/s)", "small-image push (images/s)"),
        ("small-image pull, auth on (images/s)", "small-image pull (images/s)"),
    ]:
        line = lines[name]
        assert (line["reference_is"], line["wharf_is"]) == ("wharf --no-auth", "wharf with auth")
        assert line["reference"] == lines[auth_off]["wharf"]
        assert line["ratio"] == pytest.approx(line["wharf"] / line["reference"])
        assert line["target_ratio"] == 0.8
    assert lines["small-image push (images/s)"]["reference_is"] == "docker-registry"
    # The work directory (data, logs, random blobs) is removed afterwards.
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.skipif(wrk_binary() is None, reason="needs wrk (scripts/test installs it)")
def test_smoke_workers_phase_compares_one_worker_with_two_under_wrk(tmp_path: Path) -> None:
    """`benchmarks/run --phases workers --workers 2`: Wharf with auth on, one worker and two,
    each pushed to and pulled from by wrk in alternating rounds, every image answered as
    pushed, and what the machine's cores allow at most noted."""
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.registry_bench", "--smoke",
            "--phases", "workers", "--workers", "2", "--database", database_lane(),
            "--json", str(result_file), "--workdir", str(tmp_path),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "reference = Wharf with auth on and 1 worker" in result.stdout
    lines = {line["name"]: line for line in json.loads(result_file.read_text())["lines"]}
    assert set(lines) == {name for _, name, _ in WORKER_LINES}
    for line in lines.values():
        assert line["reference"] > 0 and line["wharf"] > 0, line
        assert line["reference_is"] == "wharf with auth, 1 worker", line
        assert line["target_ratio"] == 1.7
    # Rounds alternate which server goes first, so that a drifting machine favours neither.
    order = [
        result.stderr.index(f"wharf-auth-{count}-workers small pull round {number} (wrk)")
        for number, count in ((1, 1), (1, 2), (2, 2), (2, 1))
    ]
    assert order == sorted(order)
    for mode in ("push", "pull"):
        assert f"{mode} with 1 worker kept" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.s3
def test_smoke_run_on_s3_compares_both_registries_on_one_moto_server(tmp_path: Path) -> None:
    """`benchmarks/run --storage s3`: both registries on buckets of one moto server, the
    storage phases only, with the S3 targets."""
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.registry_bench",
            "--smoke",
            "--storage",
            "s3",
            "--json",
            str(result_file),
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "storage s3" in result.stdout
    document = json.loads(result_file.read_text())
    assert document["storage"] == "s3"
    lines = {line["name"]: line for line in document["lines"]}
    assert set(lines) == {name for name in LINE_NAMES if "auth on" not in name} - {
        "tags/list p50 (ms)",
        "catalog first page p50 (ms)",
        "catalog full walk p50 (ms)",
    }
    for line in lines.values():
        assert line["reference"] > 0 and line["wharf"] > 0 and line["ratio"] > 0
    assert lines["small-image push (images/s)"]["target_ratio"] == 2.0
    assert lines["peak RSS during large transfers (MiB)"]["target_wharf_below"] == 250.0
    assert "moto server" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
