"""How much the randomized SVD's error moves when its power iterations run on AMX.

    python -m benchmarks.studies.precision_study [--pieces two|one] [--out benchmarks/results]
        [--name NAME]

On 2000 x 1000 float32 matrices with known spectra (1/sqrt(i), 1/i, 1/i^1.5,
1/i^2, exp(-i/10), exp(-i/5)), k from 10 to 300, l = k + 10, 4 power iterations
and 3 seeds, it runs lowrank_core.randomized_svd twice: with the power iterations on
AMX in bfloat16 pieces whatever the spectrum (the limit lifted), and with AMX
switched off (float32 products). It reports the spectral error of each
(divided by the optimum sigma_(k+1), computed in float64) and the relative change,
against x = 2^-16 (sigma_1 / sigma_k)^2, the quantity the core's limit bounds
(2 by default, amx_limit; the core's estimate of x comes out about twice as large). This
is the measurement behind that limit (cpp/lowrank/svd/, kBf16x3Unit). With
``--pieces one`` the iterations after the first split A into one bfloat16 piece
instead of two (amx_one_piece_limit lifted too): the measurement behind
amx_one_piece_limit. It needs a CPU with AMX-BF16; elsewhere it says so and exits.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmarks.studies import study_main

M, N, ITERS, OVERSAMPLES = 2000, 1000, 4, 10
KS = (10, 20, 30, 45, 70, 100, 150, 200, 300)
SEEDS = (1, 2, 3)


def spectra(n: int) -> dict:
    i = np.arange(1, n + 1, dtype=np.float64)
    return {"1/sqrt(i)": i ** -0.5, "1/i": 1 / i, "1/i^1.5": i ** -1.5, "1/i^2": i ** -2.0,
            "exp(-i/10)": np.exp(-(i - 1) / 10), "exp(-i/5)": np.exp(-(i - 1) / 5)}


def spectral_error(A64, U, S, Vh) -> float:
    residual = A64 - (U.astype(np.float64) * S) @ Vh.astype(np.float64)
    return float(np.linalg.svd(residual, compute_uv=False)[0])


def run(args) -> list[dict]:
    from lowrank_core import _core
    from lowrank_core.data import decaying_spectrum

    rows = []
    _, enabled = _core._testing.amx()
    one_piece = float("inf") if args.pieces == "one" else 0.0
    try:
        for name, s in spectra(N).items():
            A = decaying_spectrum(M, N, s, seed=7, dtype=np.float32)
            A64 = A.astype(np.float64)
            for k in KS:
                x = 2.0**-16 * (s[0] / s[k - 1]) ** 2
                for seed in SEEDS:
                    errors = {}
                    for amx in (True, False):
                        _core._testing.amx(amx)
                        U, S, Vh = _core.randomized_svd(A, _core.RandomizedSvdOptions(
                            rank=k, sketch_columns=k + OVERSAMPLES, power_iters=ITERS,
                            seed=seed,
                            tuning=_core.RandomizedSvdTuning(
                                amx_limit=float("inf"), amx_one_piece_limit=one_piece)))
                        errors[amx] = spectral_error(A64, U, S, Vh) / s[k]
                    rows.append({"spectrum": name, "k": k, "seed": seed, "x": x,
                                 "pieces": args.pieces,
                                 "error_amx": errors[True], "error_float32": errors[False],
                                 "change": errors[True] / errors[False] - 1})
                    print(f"{name:10s} k={k:3d} seed={seed} x={x:.2e} "
                          f"change={rows[-1]['change']:+.1e}", file=sys.stderr, flush=True)
    finally:
        _core._testing.amx(enabled)
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Randomized SVD error with AMX iterations ({meta['date']})", "",
             f"- CPU: {meta['cpu']}; command: `{meta['command']}`",
             f"- {M} x {N} float32, l = k + {OVERSAMPLES}, {ITERS} power iterations (all "
             "on AMX, the limit lifted; the last pass, Q and B, in float32), seeds "
             f"{', '.join(map(str, SEEDS))}; A in {pieces(rows)} bfloat16 piece(s) after the "
             "first iteration (which splits it in two).",
             "- error: spectral error / sigma_(k+1); change: error with AMX / error "
             "without - 1, the largest magnitude over the seeds; x = 2^-16 "
             "(sigma_1 / sigma_k)^2 (the core uses AMX up to an estimate of 2, "
             "amx_limit).", "",
             "| x | spectrum | k | error (float32) | max abs change |",
             "|---:|---|---:|---:|---:|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["x"], r["spectrum"], r["k"]), []).append(r)
    for (x, name, k), group in sorted(groups.items(), key=lambda item: item[0][0]):
        worst = max(abs(r["change"]) for r in group)
        error = float(np.median([r["error_float32"] for r in group]))
        lines.append(f"| {x:.2e} | {name} | {k} | {error:.5f} | {worst:.1e} |")
    return "\n".join(lines) + "\n"


def pieces(rows: list[dict]) -> str:
    return rows[0].get("pieces", "two") if rows else "two"


def add_arguments(parser) -> None:
    parser.add_argument("--pieces", choices=["two", "one"], default="two",
                        help="bfloat16 pieces of A in the iterations after the first")


def main(argv=None) -> int:
    def ready():
        from lowrank_core import _core

        if not _core._testing.amx()[0]:
            return "this CPU or OS gives no AMX-BF16: nothing to measure"
        return None

    def stem(args):
        return "amx-precision-one-piece" if args.pieces == "one" else "amx-precision"

    return study_main("precision_study", __doc__, stem, run, markdown, argv, ready,
                      add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
