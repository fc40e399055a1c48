"""`python -m lowrank_core demo` runs and reports errors at the optimum."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lowrank_core.__main__ import main
from lowrank_core import _demo


def test_demo_rows_reach_the_optimum():
    lines = []
    rows = _demo.run(size=48, ranks=(1, 3, 8), out=lines.append)
    assert {row["method"] for row in rows} >= {"svd", "randomized_svd", "bottleneck"}
    for row in rows:
        assert row["rank"] <= row["k"]
        if row["method"] == "bottleneck":
            # Trained until it converged: at the optimum, and the row says so.
            assert row["converged"] and row["epochs"] >= 1
            assert row["ratio"] == pytest.approx(1.0, abs=1e-4)
        else:
            assert row["ratio"] == pytest.approx(1.0, abs=0.05)
        if row["method"] == "svd":
            assert row["ratio"] == pytest.approx(1.0, abs=1e-8)
    assert any("erank" in line for line in lines)
    assert sum("converged in" in line for line in lines) == 3


def test_demo_command_line(capsys):
    assert main(["demo", "--size", "32", "--ranks", "1,2"]) == 0
    out = capsys.readouterr().out
    assert "randomized_svd" in out and "bottleneck" in out and "optimum" in out


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "lowrank_core", "demo", "--size", "24",
                           "--ranks", "2"], capture_output=True, text=True, check=True)
    assert "svd" in done.stdout


def test_bad_command_line_exits_with_usage():
    with pytest.raises(SystemExit):
        main(["demo", "--ranks", "0"])
