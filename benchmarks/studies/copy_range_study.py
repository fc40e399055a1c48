"""How much float64 randomized SVD results move when Y = A W after the power
iterations comes from the float32 copy of A.

    python -m benchmarks.studies.copy_range_study [--out benchmarks/results] [--name NAME]

For C-ordered float64 A whose power iterations ran on its float32 copy
(``mixed_precision``), the core takes the product after them, Y = A W (whose span
becomes the basis Q), from the copy too while eps32 sigma_1 / sigma_(k+1) <= 1e-4
as Y's singular values estimate it, then forms Q = orth(Y) and B = Q^T A in float64
(cpp/lowrank/svd/, range_from_float32_copy; RandomizedSvdOptions::copy_range_limit).
On 2000 x 1000 float64 matrices with known spectra (those of precision_study.py,
and k values in [0.5, 1] over floors of 1e-2, 1e-4 and 1e-6), k from 10 to 300,
l = k + 10, 4 power iterations and 3 seeds, it runs randomized_svd with that limit
and with 0 (the float64 product), and reports whether the path was taken (the bits
differ), the relative change of the spectral error (computed in float64, divided by
the optimum sigma_(k+1)) and the largest change of a singular value over sigma_1.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.studies import study_main
from benchmarks.studies.precision_study import spectra, spectral_error

M, N, ITERS, OVERSAMPLES = 2000, 1000, 4, 10
KS = (10, 30, 70, 150, 300)
SEEDS = (1, 2, 3)
EPS32 = float(np.finfo(np.float32).eps)


def all_spectra(n: int) -> dict:
    out = spectra(n)
    for floor in (1e-2, 1e-4, 1e-6):
        s = np.full(n, floor)
        s[:10] = np.linspace(1.0, 0.5, 10)
        out[f"10 + {floor:g}"] = s
    return out


def run() -> list[dict]:
    from lowrank_core import _core
    from lowrank_core.data import decaying_spectrum

    rows = []
    for name, s in all_spectra(N).items():
        A = decaying_spectrum(M, N, s, seed=7, dtype=np.float64)
        for k in KS:
            if name.startswith("10 +") and k != 10:
                continue
            x = EPS32 * s[0] / s[k]
            for seed in SEEDS:
                copy = _core.randomized_svd(A, _core.RandomizedSvdOptions(
                    rank=k, sketch_columns=k + OVERSAMPLES, power_iters=ITERS, seed=seed))
                full = _core.randomized_svd(A, _core.RandomizedSvdOptions(
                    rank=k, sketch_columns=k + OVERSAMPLES, power_iters=ITERS, seed=seed,
                    tuning=_core.RandomizedSvdTuning(copy_range_limit=0.0)))
                taken = not all(np.array_equal(a, b) for a, b in zip(copy, full))
                errors = [spectral_error(A, *r) / s[k] for r in (copy, full)]
                rows.append({"spectrum": name, "k": k, "seed": seed, "x": x, "taken": taken,
                             "error_copy": errors[0], "error_float64": errors[1],
                             "change": errors[0] / errors[1] - 1,
                             "s_change": float(np.abs(copy[1] - full[1]).max() / s[0]),
                             "orthogonality": float(np.abs(copy[0].T @ copy[0]
                                                           - np.eye(k)).max())})
                print(f"{name:10s} k={k:3d} seed={seed} x={x:.2e} taken={taken} "
                      f"change={rows[-1]['change']:+.1e}", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Float64 randomized SVD with Y = A W from the float32 copy ({meta['date']})",
             "", f"- CPU: {meta['cpu']}; command: `{meta['command']}`",
             f"- {M} x {N} float64, l = k + {OVERSAMPLES}, {ITERS} power iterations, "
             f"seeds {', '.join(map(str, SEEDS))}; the default copy_range_limit (1e-4) "
             "against 0 (Y in float64).",
             "- x = eps32 sigma_1 / sigma_(k+1) (true values; the core estimates it from "
             "Y); taken: seeds whose bits differ from the float64 product's (the "
             "float32 iterations themselves refuse where eps32 (sigma_1 / sigma_k)^2 > "
             "3e-2, and then neither runs); error: spectral error / sigma_(k+1) with "
             "Y in float64; change: error / that error - 1, largest magnitude over the "
             "seeds; S change: largest |S - S_float64| / sigma_1; U: largest "
             "|U^T U - I|.", "",
             "| x | spectrum | k | taken | error (float64 Y) | max abs change | S change "
             "| U |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["x"], r["spectrum"], r["k"]), []).append(r)
    for (x, name, k), group in sorted(groups.items(), key=lambda item: item[0][0]):
        taken = sum(r["taken"] for r in group)
        worst = max(abs(r["change"]) for r in group)
        s_change = max(r["s_change"] for r in group)
        orth = max(r["orthogonality"] for r in group)
        error = float(np.median([r["error_float64"] for r in group]))
        lines.append(f"| {x:.2e} | {name} | {k} | {taken}/{len(group)} | {error:.6g} | "
                     f"{worst:.1e} | {s_change:.1e} | {orth:.0e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    return study_main("copy_range_study", __doc__, "copy-range", run, markdown, argv)


if __name__ == "__main__":
    sys.exit(main())
