"""`python -m lowrank_core reproduce ... --quick` runs and its numbers say what the
sources say."""

from __future__ import annotations

import json

import pytest

import lowrank_core as lc
from lowrank_core.__main__ import main


def test_reproduce_blog_quick(tmp_path, capsys):
    assert main(["reproduce", "blog", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "report.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())["blog"]
    assert "erank against n" in report and "Findings" in report
    largest = str(results["erank_sizes"][-1])
    dense = results["erank"]["dense i.i.d."][largest]
    # Multiplicative nonlinearities keep exact rank one; the others stay O(1).
    for name in ("identity", "z^2", "sign"):
        assert all(rank == 1 for rank in results["numerical_rank"][name].values()), name
        assert results["erank"][name][largest] == pytest.approx(1.0, abs=1e-6)
    for name in ("tanh", "sin", "relu", "exp"):
        assert results["erank"][name][largest] < 5 < dense, name
    # relu(x y) = x+ y+ + x- y-: exactly rank two.
    assert all(rank == 2 for rank in results["numerical_rank"]["relu"].values())
    # The dense baseline grows like (8 / 3 pi)^2 n.
    assert 0.6 < results["dense_slope"] < 0.85
    # The open question, k = round(sqrt(n)): the identity's erank is at most k (X Y^T
    # has rank k), the homogeneous phi give the same erank scaled or not, and the
    # dense baseline's grows like n = k^2 (exponent near 2 in k).
    sqrt_rank = json.loads((tmp_path / "results.json").read_text())["blog_sqrt_rank"]
    assert "inner rank k = round(sqrt(n))" in report and "What the data show" in report
    for n in sqrt_rank["sizes"]:
        k = sqrt_rank["k"][str(n)]
        assert k == round(n ** 0.5)
        assert sqrt_rank["erank"]["identity"][str(n)] <= k + 1e-9
        for name in ("identity", "z^2", "sign", "relu"):
            assert sqrt_rank["erank_scaled"][name][str(n)] == sqrt_rank["erank"][name][str(n)]
        assert sqrt_rank["erank_scaled"]["tanh"][str(n)] != sqrt_rank["erank"]["tanh"][str(n)]
    assert 1.7 < sqrt_rank["exponent"]["dense i.i.d."] < 2.3
    assert 0.8 < sqrt_rank["exponent"]["identity"] < 1.2
    figures = {"blog_spectra.png", "blog_erank.png", "blog_sqrt_rank.png"}
    present = {path.name for path in tmp_path.glob("*.png")}
    if "skipped" in report:
        assert "matplotlib" in capsys.readouterr().err
    else:
        assert figures <= present


def test_reproduce_rejects_unknown_experiment(tmp_path):
    from lowrank_core import reproduce

    with pytest.raises(ValueError, match="experiment must be one of"):
        reproduce.run("novel", tmp_path)
    with pytest.raises(SystemExit):
        main(["reproduce", "novel"])


def test_cuda_device_without_gpu_is_a_clear_error(tmp_path):
    if getattr(lc, "gpu_available", lambda: False)():
        pytest.skip("a GPU is available: the CUDA path is exercised by the GPU tests")
    with pytest.raises(RuntimeError, match="--device cuda needs"):
        main(["reproduce", "blog", "--quick", "--device", "cuda", "--out", str(tmp_path),
              "--no-progress"])


def test_reproduce_paper_quick(tmp_path):
    assert main(["reproduce", "paper", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "report.md").read_text()
    results = json.loads((tmp_path / "results.json").read_text())["paper"]
    for heading in ("Identity and M_50", "Random 10x10", "symmetric", "Images", "design",
                    "Rank check"):
        assert heading in report, heading
    # The choke point caps every learned map's rank (the paper's rank-1 surprise).
    assert results["max_rank_excess"] <= 0
    # M_50 = diag(0..49) reproduces the paper's SVD error 29/49.
    diagonal = results["identity_and_diagonal"]["M_50 = diag(0..49), rank 20"]
    assert diagonal["svd"] == pytest.approx(29 / 49, abs=1e-6)
    # data="exact" (the best settings) reaches the SVD on every random 10x10 rank.
    for table in (results["random_10x10"], results["random_symmetric_10x10"]):
        assert [row["rank"] for row in table] == list(range(1, 10))
        for row in table:
            assert row["mean_gap_best"] < 1e-3, row
            assert row["max_learned_rank"] <= row["rank"]


def test_blog_max_n_must_be_a_power_of_two(tmp_path):
    for bad in ("100", "128", "3000"):
        with pytest.raises(SystemExit):
            main(["reproduce", "blog", "--max-n", bad, "--out", str(tmp_path)])
        with pytest.raises(SystemExit):
            main(["reproduce", "blog", "--sqrt-max-n", bad, "--out", str(tmp_path)])
