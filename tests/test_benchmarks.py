"""A tiny run of the benchmark suite, so it keeps working. Timings are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    for row in rows:  # one round: its ratio is the ratio of the two medians
        if row["library"] == "numpy":
            assert row["round_ratios"] == pytest.approx([row["ratio"]])
        else:
            assert "round_ratios" not in row
    assert "| lowrank_core |" in (tmp_path / "smoke.md").read_text()


def test_precision_study_table_keeps_the_worst_seed():
    sys.path.insert(0, str(ROOT))
    from benchmarks.studies import precision_study

    rows = [{"spectrum": "1/i", "k": 20, "seed": seed, "x": 6.1e-3, "error_amx": 1.0,
             "error_float32": error, "change": change}
            for seed, error, change in [(1, 1.0, 2e-7), (2, 1.2, -5e-6), (3, 1.1, 1e-8)]]
    rows.append({"spectrum": "1/i^2", "k": 10, "seed": 1, "x": 0.15, "error_amx": 1.0,
                 "error_float32": 1.0, "change": 0.0})
    text = precision_study.markdown(rows, {"date": "today", "cpu": "cpu", "command": "c"})
    table = [line for line in text.splitlines() if line.startswith("| ") and "spectrum" not in line]
    assert table == ["| 6.10e-03 | 1/i | 20 | 1.10000 | 5.0e-06 |",
                     "| 1.50e-01 | 1/i^2 | 10 | 1.00000 | 0.0e+00 |"]


def test_worker_measures_every_seed(tmp_path):
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from benchmarks import cases, worker

    case = cases.Case(60, 40, 5, "inverse", "float64")
    rng = np.random.default_rng(0)
    s = cases.spectrum(case.spectrum, 40, case.k)
    U, _ = np.linalg.qr(rng.standard_normal((60, 40)))
    V, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    np.save(tmp_path / "a.npy", (U * s) @ V.T)
    job = {"op": "randomized_svd", "library": "lowrank_core", "matrix": str(tmp_path / "a.npy"),
           "k": case.k, "sketch": case.sketch, "power_iters": 0,
           "singular_values": s[: case.k + 1].tolist(), "seeds": [0, 1, 2]}
    errors = worker.main(job)["error_ratios"]
    assert len(errors) == 3
    assert all(1.0 - 1e-9 < e < 2.0 for e in errors)  # no power iterations: not optimal
    assert len(set(errors)) == 3  # three sketches, three errors


def test_seed_study_compares_means_in_standard_errors():
    sys.path.insert(0, str(ROOT))
    from benchmarks.studies import seed_study

    ours = seed_study.summary([1.01, 1.03, 1.02])
    theirs = seed_study.summary([1.00, 1.02, 1.01])
    assert abs(ours["mean"] - 1.02) < 1e-12 and abs(ours["sem"] - 0.01 / 3**0.5) < 1e-12
    ratio, z = seed_study.comparison(ours, theirs)
    assert abs(ratio - 1.02 / 1.01) < 1e-12
    assert abs(z - 0.01 / (0.01 * (2 / 3) ** 0.5)) < 1e-9
    case = {"label": "10x10 k=1 inverse float64", "case": {}}
    rows = [dict(case, library="lowrank_core", errors=[], **ours),
            dict(case, library="torch", errors=[], **theirs),
            dict(case, library="fbpca", failed="ImportError: no fbpca")]
    text = seed_study.markdown(rows, {"date": "today", "cpu": "cpu", "command": "c"})
    table = [line for line in text.splitlines() if line.startswith("| 10x10")]
    assert table[1] == ("| 10x10 k=1 inverse float64 | torch | 3 | 1.01000 | 0.00577 | 1.00000 "
                        "| 1.02000 | 1.00990 | +1.2 |")
    assert "failed: ImportError" in table[2]


def _planted(m, n, seed=0):
    """A float64 m x n matrix with singular values 1/i."""
    import numpy as np

    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (U / np.arange(1, n + 1)) @ V.T


@pytest.mark.parametrize("library", ["numpy", "torch", "sklearn", "fbpca"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reproduced_sketch_is_the_one_the_library_draws(library, dtype):
    # With no power iterations the result is the SVD of A projected on range(A Omega),
    # so lowrank_core from the reproduced sketch must give the library's own singular
    # values to rounding; the next seed's sketch is ~1e-2 off.
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from benchmarks import libraries

    if library != "numpy":
        pytest.importorskip(library)
    A = _planted(120, 80).astype(dtype)
    k, l = 5, 15
    theirs = libraries.RANDOMIZED[library][0](A, k, l, 0, 7)[1]
    draw = libraries.SKETCHES[library]
    ours = libraries.rsvd_lowrank_core(A, k, l, 0, None, sketch=draw(A.shape, l, A.dtype, 7))[1]
    other = libraries.rsvd_lowrank_core(A, k, l, 0, None, sketch=draw(A.shape, l, A.dtype, 8))[1]
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    assert np.max(np.abs(ours - theirs)) < tolerance * theirs[0]
    assert np.max(np.abs(other - theirs)) > 1e-3 * theirs[0]
    if library != "numpy":  # the others transpose a wide A, and so draw another shape
        with pytest.raises(ValueError, match="m >= n"):
            draw((80, 120), l, A.dtype, 7)


def test_worker_pairs_errors_from_the_same_sketch(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks import worker
    from benchmarks.studies import seed_study

    A = _planted(90, 60)
    import numpy as np

    np.save(tmp_path / "a.npy", A)
    s = 1 / np.arange(1, 61)
    job = {"op": "randomized_svd", "library": "numpy", "matrix": str(tmp_path / "a.npy"),
           "k": 5, "sketch": 10, "power_iters": 0, "singular_values": s[:6].tolist(),
           "seeds": [0, 1, 2], "same_sketch": True}
    pairs = worker.main(job)["error_pairs"]
    assert len(pairs) == 3
    for ours, theirs in pairs:  # the same sketch: the same error to rounding
        assert 1.0 < theirs < 3.0 and abs(ours / theirs - 1) < 1e-8
    assert len({round(theirs, 6) for _, theirs in pairs}) == 3  # three different sketches
    summary = seed_study.paired_summary(pairs)
    assert summary["n"] == 3 and abs(summary["ratio_mean"] - 1) < 1e-8


def test_seed_study_paired_table():
    sys.path.insert(0, str(ROOT))
    from benchmarks.studies import seed_study

    summary = seed_study.paired_summary([[1.02, 1.0], [1.0, 1.0], [1.1, 1.1]])
    assert abs(summary["ratio_mean"] - 1.02 / 3 - 2 / 3) < 1e-12
    assert abs(summary["ratio_max"] - 1.02) < 1e-12
    assert abs(summary["ours_mean"] - 3.12 / 3) < 1e-12
    assert abs(summary["ratio_sem"] - 0.02 / 3**0.5 / 3**0.5) < 1e-12
    base = {"label": "10x10 k=1 inverse float64", "case": {}, "same_sketch": True}
    rows = [dict(base, library="torch", **summary),
            dict(base, library="fbpca", failed="ImportError: no fbpca")]
    text = seed_study.markdown(rows, {"date": "today", "cpu": "cpu", "command": "c"})
    assert "our mean error (their sketches)" in text
    table = [line for line in text.splitlines() if line.startswith("| 10x10")]
    assert table[0] == ("| 10x10 k=1 inverse float64 | torch | 3 | 1.03333 | 1.04000 | "
                        "1.006667 | 0.006667 | 1.020000 |")
    assert "failed: ImportError" in table[1]


def test_ratio_by_round_pairs_each_rounds_medians(tmp_path, monkeypatch):
    # A slow spell in round 1 moves both libraries: the pooled medians give 2.7 / 2.1,
    # each round's 2.0 and 1.0.
    from benchmarks import __main__ as bench
    from benchmarks.cases import Case

    monkeypatch.setenv("LOWRANK_BENCH_CACHE", str(tmp_path))
    times = {("lowrank_core", 0): [1.0, 1.2], ("other", 0): [2.0, 2.4],
             ("lowrank_core", 1): [3.0, 3.0], ("other", 1): [3.0, 3.0]}
    calls = []

    def fake_worker(job, timeout):
        round_ = sum(1 for name in calls if name == job["library"])
        calls.append(job["library"])
        return {"times": list(times[(job["library"], round_)])}

    monkeypatch.setattr(bench, "run_worker", fake_worker)
    case = Case(40, 30, 3, "inverse", "float64")
    rows = bench.measure(case, "randomized_svd", ["lowrank_core", "other"], 2, 2, 10)
    other = next(r for r in rows if r["library"] == "other")
    assert other["ratio"] == pytest.approx(2.7 / 2.1)
    assert other["round_ratios"] == pytest.approx([2.0, 1.0])
    ours = next(r for r in rows if r["library"] == "lowrank_core")
    assert "round_ratios" not in ours
    # Each round's median is kept, so a slow round shows whose time moved.
    assert ours["round_medians_s"] == pytest.approx([1.1, 3.0])
    assert other["round_medians_s"] == pytest.approx([2.2, 3.0])


def test_gpu_suite_runs_its_steps_with_numpy_standing_in_for_cupy():
    # The GPU suite's measuring code is written against the array module, so every
    # step runs here on NumPy arrays (the CPU core) at tiny sizes: the GPU run then
    # spends its minutes measuring. Timings are not asserted.
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from benchmarks import gpu

    def sync():
        return None

    rows = gpu.randomized_svd_rows(np, None, [(300, 200)], 1, sync, k=20)
    rows += gpu.stack_rows(np, [(4, 6, 5)], 1, sync)
    rows += gpu.bottleneck_rows(np, None, 12, 3, 64, 1, sync)
    measured = [r for r in rows if "median_s" in r]
    assert {r["op"] for r in measured} == {"randomized_svd", "singular_values", "rank",
                                            "bottleneck"}
    for row in measured:
        assert "error" not in row, row
    for row in (r for r in measured if r["op"] == "randomized_svd"):
        assert 0.99 < row["error_ratio"] < 1.1, row  # both reach the optimum sigma_(k+1)
    for row in (r for r in measured if r["op"] == "singular_values"):
        assert row["max_relative_error"] < 1e-5, row
    assert {r["rank"] for r in measured if r["op"] == "rank"} == {5}
    unavailable = [r for r in rows if r["library"] in ("torch", "torch.svd_lowrank")]
    assert unavailable and all("not available" in r["error"] for r in unavailable)
    meta = {"date": "today", "command": "c", "repeats": 1, "versions": {"numpy": "1"},
            "lowrank_core_cuda": "13.0",
            "gpu": {"gpu": "stand-in", "memory_gib": 1.0, "driver": 1, "cuda_runtime_cupy": 1,
                    "nvidia_smi": None}}
    text = gpu.markdown(rows, meta)
    assert "| 300x200 float64 k=20 | lowrank_core |" in text
    assert "cuSOLVER gesvdr" in text and "## bottleneck" in text


def test_gpu_suite_without_a_gpu_says_so(tmp_path):
    if __import__("lowrank_core").gpu_available():
        pytest.skip("a GPU is usable here: the suite would measure")
    command = [sys.executable, "-m", "benchmarks", "--suite", "gpu", "--out", str(tmp_path),
               "--name", "gpu"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    meta = json.loads((tmp_path / "gpu.json").read_text())["meta"]
    assert meta["skipped"].startswith("no usable GPU here")
    assert "Not run: no usable GPU" in (tmp_path / "gpu.md").read_text()


@pytest.mark.parametrize("module", ["benchmarks", "benchmarks.studies.precision_study",
                                    "benchmarks.studies.copy_range_study",
                                    "benchmarks.studies.contract_study",
                                    "benchmarks.studies.seed_study"])
def test_benchmark_and_study_command_lines_answer_help(module):
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    assert "usage:" in done.stdout


@pytest.mark.parametrize("suite", ["gpu", "bottleneck", "tolerance", "compat", "dask", "sparse"])
def test_suites_with_their_own_options_are_dispatched(suite):
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--suite", suite, "--help"],
                          cwd=ROOT, check=True, capture_output=True, text=True)
    assert f"--suite {suite}" in done.stdout and "--name" in done.stdout


def test_results_are_named_by_what_and_date():
    # benchmarks/results/ keeps the latest result of each suite and study, named
    # <what>-<YYYY-MM-DD>.md/.json (git keeps the others).
    import re

    names = sorted(p.name for p in (ROOT / "benchmarks" / "results").iterdir())
    pattern = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*-\d{4}-\d{2}-\d{2}\.(md|json)")
    assert names and all(pattern.fullmatch(name) for name in names), names
    stems = {name.rsplit("-", 3)[0] for name in names}
    assert len(stems) == len({name.rsplit(".", 1)[0] for name in names}), names


def test_tolerance_suite_tables_show_every_part():
    sys.path.insert(0, str(ROOT))
    from benchmarks import tolerance

    rows = [{"part": "tolerance", "m": 50, "n": 20, "spectrum": "1/i", "ord": 2, "tol": 0.1,
             "optimal_rank": 9, "numpy_full_svd_s": 1.0, "lowrank_core_s": 0.5,
             "lowrank_core_rank": 10, "lowrank_core_error": 0.09, "full_svd_ratio": 2.0},
            {"part": "rank", "m": 50, "n": 20, "dtype": "float64", "r": 3, "numpy_rank": 3,
             "lowrank_core_rank": 3, "same": True, "certified": False, "basis_columns": 0,
             "numpy_s": 1.0, "lowrank_core_s": 0.25, "ratio": 4.0},
            {"part": "estimate", "matrices": 2, "ratio_min": 0.97, "ratio_median": 0.98,
             "ratio_max": 1.0, "bound_ratio_min": 20.0, "bound_ratio_median": 30.0,
             "bound_failures": 0, "m": 50, "n": 20, "k": 5, "estimate_s": 0.1, "exact_s": 1.0,
             "ratio": 10.0, "estimate_over_true": 0.99, "fro_s": 0.1, "fro_numpy_s": 0.2,
             "fro_ratio": 2.0, "fro_difference": 1e-15}]
    text = tolerance.markdown(rows, {"date": "d", "cpu": "c", "versions": "v", "command": "x"})
    assert "| 50x20 | 1/i | 2 | 0.1 | 9 | 10 | 9.00e-02 | 0.50 | 1.0 (2.0x) | - |" in text
    assert "| 50x20 | float64 | 3 | 3 | 3 | True | False (0) | 1.00 | 0.250 | 4.0x |" in text
    assert "estimate / true from 0.9700 to 1.0000" in text and "10.0x" in text


@pytest.mark.parametrize("row", ["randomized_svd", "svd_lowrank", "svds", "pca_pipeline"])
def test_compat_suite_measures_each_library_of_a_row(row, tmp_path, monkeypatch):
    from benchmarks import cases, compat

    pytest.importorskip("sklearn")
    if row == "svd_lowrank":
        pytest.importorskip("torch")
    monkeypatch.setenv("LOWRANK_BENCH_CACHE", str(tmp_path))
    case = cases.smoke_suite()[0]
    path, sigma = cases.materialise(case)
    ours, theirs = compat.ROWS[row]
    for library in [ours, *theirs]:
        out = compat.worker({"row": row, "library": library, "matrix": str(path), "k": case.k,
                             "repeats": 1, "accuracy": True, "sigma": sigma.tolist()})
        assert out["seconds"] > 0
        assert 1 - 1e-9 <= out["fro_ratio"] < 1.01, (library, out)
        if row != "pca_pipeline":
            assert out["sv_error"] < 1e-3, (library, out)
