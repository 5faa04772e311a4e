"""benchmarks/run in smoke mode: both registries start, every measurement yields a figure."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.registry_bench import LINE_NAMES
from benchmarks.servers import reference_binary

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    reference_binary() is None or shutil.which("curl") is None,
    reason="needs docker-registry and curl (scripts/test installs them)",
)


def _figures(table: str, name: str) -> tuple[float, float, float]:
    line = next((row for row in table.splitlines() if row.startswith(name + " ")), None)
    assert line is not None, f"no line {name!r} in the table:\n{table}"
    reference, wharf, ratio = line[len(name):].split()[:3]
    return float(reference), float(wharf), float(ratio.removesuffix("x"))


def test_smoke_run_prints_every_line_with_positive_figures(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.registry_bench", "--smoke",
         "--json", str(result_file), "--workdir", str(tmp_path)],
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

    document = json.loads(result_file.read_text())
    assert [line["name"] for line in document["lines"]] == LINE_NAMES
    for line in document["lines"]:
        assert line["reference"] > 0 and line["wharf"] > 0 and line["ratio"] > 0
    # The work directory (data, logs, random blobs) is removed afterwards.
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
