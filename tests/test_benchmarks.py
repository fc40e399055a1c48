"""A tiny run of the benchmark suite, so it keeps working. Timings are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke_run(tmp_path):
    env = dict(os.environ, LOWRANK_BENCH_CACHE=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "benchmarks", "--suite", "smoke", "--rounds", "1",
               "--repeats", "1", "--libraries", "lowrank_core,numpy", "--out", str(tmp_path),
               "--name", "smoke"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    rows = json.loads((tmp_path / "smoke.json").read_text())["rows"]
    ops = {row["op"] for row in rows}
    assert ops == {"randomized_svd", "svd", "rank", "singular_values"}
    for row in rows:
        assert "error" not in row, row
        assert row["median_s"] > 0 and row["samples"] == 1
        if "error_ratio" in row:  # both libraries reach the optimum on these tiny cases
            assert 0.999 < row["error_ratio"] < 1.01, row
        if "unmodified" in row:
            assert row["unmodified"], row
    core = [r for r in rows if r["library"] == "lowrank_core"]
    assert all(r["ratio"] == 1.0 for r in core)
    assert "| lowrank_core |" in (tmp_path / "smoke.md").read_text()
