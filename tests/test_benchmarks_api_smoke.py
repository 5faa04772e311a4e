"""benchmarks/run-api in smoke mode: Wharf starts, every measurement yields a positive figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.lanes import database_lane

ROOT = Path(__file__).resolve().parent.parent


def _figure(table: str, name: str) -> float:
    row = next((r for r in table.splitlines() if r.startswith(name + " ")), None)
    assert row is not None, f"no line {name!r} in the table:\n{table}"
    return float(row[len(name) :].split()[0])


def test_smoke_run_prints_every_line_with_a_positive_figure(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.api_bench",
            "--smoke",
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
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]

    document = json.loads(result_file.read_text())
    lines = document["lines"]
    names = [line["name"] for line in lines]
    assert len(names) == len(set(names)) >= 40, names
    for line in lines:
        assert line["figure"] > 0, line
        assert line["unit"], line
        # The table shows the same line, with the same unit.
        assert _figure(result.stdout, line["name"]) > 0, line["name"]
        assert any(
            r.startswith(line["name"] + " ") and r.rstrip().endswith(line["unit"])
            for r in result.stdout.splitlines()
        ), line
    for part in (
        "create Secret",
        "GET Secret",
        "LIST",
        "WATCH",
        "RBAC allowed()",
        "SelfSubjectAccessReview",
    ):
        assert any(name.startswith(part) for name in names), part
    assert f"database: {database_lane()}" in document["notes"]
    assert document["load_average"]["before"] and document["load_average"]["after"]
    assert not document["warnings"] or all("not quiet" in w for w in document["warnings"])
    # The work directory (data directory, log) is removed afterwards.
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
