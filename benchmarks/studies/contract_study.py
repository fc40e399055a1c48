"""How close verified mixed precision stays to the working precision, by leak margin.

    python -m benchmarks.studies.contract_study [--margins 100 300 1000 3000] [--dtypes float64]

For each margin (RandomizedSvdOptions::leak_margin), runs the sweep of
tests/test_accuracy_contract.py (1000 x 600 matrices, k = 10: spectra 1/sqrt(i),
1/i, exp(-i/10), 0.3^i and one with a gap after the k-th value; noise floors 1e-3,
1e-8, 1e-14; C and F order; float64 and float32; q = 0, 1, 3, 8, 30) through the
core with mixed precision "auto" and "off", and prints, per dtype, the largest
share of the contract's allowance that "auto" used: how far it moved the rank-k
approximation from "off", over 1e-2 of "off"'s own spectral distance from the
exact truncation plus 200 eps sigma_1 of rounding (the test's bound; at most 1
passes). This is the measurement behind the default margin (docs/reliability.md,
"Verified mixed precision").
"""

from __future__ import annotations

import argparse

import numpy as np

M, N, K, L = 1000, 600, 10, 20
QS = (0, 1, 3, 8, 30)
FLOORS = (1e-3, 1e-8, 1e-14)


def spectra() -> dict:
    i = np.arange(1, N + 1, dtype=np.float64)
    return {"1/sqrt(i)": i ** -0.5, "1/i": 1 / i, "exp(-i/10)": np.exp(-(i - 1) / 10),
            "0.3^i": 0.3 ** (i - 1), "gap": np.where(i <= K, 1 / i, 1e-2 / i)}


def dense(U, S, Vh):
    return (U.astype(np.float64) * S.astype(np.float64)) @ Vh.astype(np.float64)


def worst_ratios(margin: float, dtypes=(np.float64, np.float32)) -> dict:
    from lowrank_core import _core

    rng = np.random.default_rng(7)
    U, _ = np.linalg.qr(rng.standard_normal((M, N)))
    V, _ = np.linalg.qr(rng.standard_normal((N, N)))
    worst: dict = {}
    for name, s in spectra().items():
        for floor in FLOORS:
            for dtype in dtypes:
                A = ((U * np.maximum(s, floor)) @ V.T).astype(dtype)
                Ue, Se, Vhe = np.linalg.svd(A.astype(np.float64), full_matrices=False)
                exact = (Ue[:, :K] * Se[:K]) @ Vhe[:K]
                rounding = 200 * np.finfo(dtype).eps * Se[0]
                for layout in "CF":
                    B = np.asfortranarray(A) if layout == "F" else A
                    for q in QS:
                        auto = dense(*_core.randomized_svd(B, _core.RandomizedSvdOptions(
                            rank=K, sketch_columns=L, power_iters=q, seed=3,
                            mixed_precision="auto",
                            tuning=_core.RandomizedSvdTuning(leak_margin=margin))))
                        off = dense(*_core.randomized_svd(B, _core.RandomizedSvdOptions(
                            rank=K, sketch_columns=L, power_iters=q, seed=3,
                            mixed_precision="off")))
                        own = np.linalg.norm(off - exact, 2)
                        ratio = np.linalg.norm(auto - off, 2) / (1e-2 * own + rounding)
                        key = np.dtype(dtype).name
                        if ratio > worst.get(key, (0.0,))[0]:
                            worst[key] = (ratio, f"{name} floor={floor:g} {layout} q={q}")
    return worst


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margins", type=float, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    args = parser.parse_args(argv)
    dtypes = [np.dtype(name).type for name in args.dtypes]
    for margin in args.margins:
        for dtype, (share, case) in sorted(worst_ratios(margin, dtypes).items()):
            print(f"margin {margin:g}: {dtype} largest share of the allowance {share:.2g} "
                  f"({case})", flush=True)


if __name__ == "__main__":
    main()
