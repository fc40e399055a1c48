"""Rank to a tolerance: randomized_svd(A, tol=...), rank(method="randomized") and
estimate_error, each beside what a user would run instead, in one run.

    python -m benchmarks --suite tolerance [--quick] [--large] [--out DIR] [--name STEM]

1. ``randomized_svd(A, tol=tol, ord=...)`` against the full SVD then truncated
   (``numpy.linalg.svd``, gesdd), ``scipy.linalg.interpolative.svd(A, tol)`` and the
   loop users write with ``torch.svd_lowrank`` (k = 16, doubled until the Frobenius
   error, from the dense residual, meets tol; niter=2), on matrices with known
   spectra. Per row: the rank each found, the optimal rank for tol (Eckart–Young,
   from the full SVD's singular values), the true relative error reached (the
   Frobenius norm of the dense residual; the spectral norm by ARPACK on it) and the
   time ratios against lowrank_core. Rows whose optimal rank exceeds min(m, n) / 4
   are left out: there the full SVD is the right tool.
2. ``rank(A, method="randomized")`` against ``numpy.linalg.matrix_rank`` on exactly
   low-rank matrices (float64, float32): the same answer, and the time ratio.
3. ``estimate_error(A, approx, 2)`` against the exact spectral norm of the residual:
   estimate / true and bound / true over many matrices, and the time of each.

Each timing is one run (the matrices are large); the machine is shared, so the
ratios, all measured in this one run, are what to compare.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bottleneck_speed import cpu_name


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def orthonormal(rows, cols, rng):
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


SPECTRA = {
    "fast decay 10^(-i/10)": lambda p: 10.0 ** (-np.arange(p) / 10.0),
    "1/i": lambda p: 1.0 / np.arange(1, p + 1),
    "rank 50 + 1e-3 noise": lambda p: np.concatenate([np.linspace(1, 0.1, 50), np.full(p - 50, 1e-3)]),
    "rank 50 + 1e-8 noise": lambda p: np.concatenate([np.linspace(1, 0.1, 50), np.full(p - 50, 1e-8)]),
}


def with_spectrum(m, n, s, rng):
    """U diag(s) V^T with random orthonormal U (m x p), V (n x p), p = len(s)."""
    return (orthonormal(m, len(s), rng) * s) @ orthonormal(n, len(s), rng).T


def optimal_rank(s, tol, ord):
    if ord == "fro":
        tail = np.sqrt(np.append(np.cumsum((s**2)[::-1])[::-1], 0.0))
        return int(np.nonzero(tail[1:] <= tol * tail[0])[0][0]) + 1
    return int(np.nonzero(np.append(s[1:], 0.0) <= tol * s[0])[0][0]) + 1


def true_relative_error(A, U, S, Vh, ord, norm):
    import scipy.sparse.linalg as ssl

    R = A - (U * S) @ Vh
    if ord == "fro":
        return float(np.linalg.norm(R)) / norm
    top = ssl.svds(R, k=1, return_singular_vectors=False, tol=1e-8, random_state=0)
    return float(top[0]) / norm


def torch_loop(A_torch, tol, norm_fro):
    """The loop users write: svd_lowrank at k, doubled until the Frobenius error meets tol."""
    import torch

    m, n = A_torch.shape
    k = 16
    while True:
        k = min(k, min(m, n))
        U, S, V = torch.svd_lowrank(A_torch, q=k, niter=2)
        error = float(torch.linalg.matrix_norm(A_torch - (U * S) @ V.T))
        if error <= tol * norm_fro or k == min(m, n):
            return U.numpy(), S.numpy(), V.T.numpy()
        k *= 2


def part_tolerance(sizes, tols, libraries, rows, log):
    import scipy.linalg.interpolative as sli

    import lowrank_core as lc

    for m, n in sizes:
        for spectrum, make in SPECTRA.items():
            rng = np.random.default_rng(0)
            s = make(n)
            A = with_spectrum(m, n, s, rng)
            norms = {"fro": float(np.linalg.norm(s)), 2: float(s[0])}
            (_, S_full, _), t_full = timed(np.linalg.svd, A, full_matrices=False)
            A_torch = None
            if "torch" in libraries:
                import torch

                A_torch = torch.from_numpy(A)
            for ord in ("fro", 2):
                for tol in tols:
                    best = optimal_rank(S_full, tol, ord)
                    if best > min(m, n) // 4:
                        continue
                    row = {"part": "tolerance", "m": m, "n": n, "spectrum": spectrum,
                           "ord": ord, "tol": tol, "optimal_rank": best,
                           "numpy_full_svd_s": t_full}
                    got, t = timed(lc.randomized_svd, A, tol=tol, ord=ord, seed=0)
                    row.update(lowrank_core_s=t, lowrank_core_rank=got.rank,
                               lowrank_core_error=true_relative_error(A, *got, ord, norms[ord]),
                               lowrank_core_reported=got.error / got.norm,
                               full_svd_ratio=t_full / t)
                    if "scipy_id" in libraries:
                        (U, S, V), t_id = timed(sli.svd, A, tol)
                        row.update(scipy_id_s=t_id, scipy_id_rank=int(S.shape[0]),
                                   scipy_id_error=true_relative_error(A, U, S, V.T, ord,
                                                                      norms[ord]),
                                   scipy_id_ratio=t_id / t)
                    if A_torch is not None and ord == "fro":
                        (U, S, Vh), t_torch = timed(torch_loop, A_torch, tol, norms["fro"])
                        row.update(torch_loop_s=t_torch, torch_loop_rank=int(S.shape[0]),
                                   torch_loop_error=true_relative_error(A, U, S, Vh, ord,
                                                                        norms[ord]),
                                   torch_loop_ratio=t_torch / t)
                    rows.append(row)
                    log(row)


def low_rank(m, n, r, dtype, rng):
    return (rng.standard_normal((m, r)) @ rng.standard_normal((r, n))).astype(dtype)


def part_rank(sizes, ranks, rows, log):
    import lowrank_core as lc
    from lowrank_core import _core

    for m, n in sizes:
        for dtype in (np.float64, np.float32):
            for r in ranks:
                A = low_rank(m, n, r, dtype, np.random.default_rng(r))
                want, t_numpy = timed(np.linalg.matrix_rank, A)
                got, t = timed(lc.rank, A, method="randomized", seed=0)
                _, certified, basis, _ = _core.randomized_rank(A, None, False, 16, 0, 0)
                row = {"part": "rank", "m": m, "n": n, "dtype": np.dtype(dtype).name, "r": r,
                       "numpy_rank": int(want), "lowrank_core_rank": int(got),
                       "same": int(want) == int(got), "certified": bool(certified),
                       "basis_columns": int(basis), "numpy_s": t_numpy, "lowrank_core_s": t,
                       "ratio": t_numpy / t}
                rows.append(row)
                log(row)
                del A


def part_estimate(count, timing_size, rows, log):
    import lowrank_core as lc

    rng = np.random.default_rng(7)
    ratios, bounds, fails = [], [], 0
    for i in range(count):
        m, n = int(rng.integers(200, 800)), int(rng.integers(100, 400))
        kind = i % 3
        p = min(m, n)
        s = [1.0 / np.arange(1, p + 1), 0.9 ** np.arange(p), rng.random(p)][kind]
        A = with_spectrum(m, n, np.sort(s)[::-1], rng)
        k = int(rng.integers(1, p // 2))
        approx = lc.randomized_svd(A, k, seed=i, power_iters=1)
        true = float(np.linalg.norm(A - approx.to_dense(), 2))
        e = lc.estimate_error(A, approx, 2, seed=i)
        ratios.append(float(e) / true)
        bounds.append(e.bound / true)
        fails += e.bound < true
    row = {"part": "estimate", "matrices": count, "ratio_min": min(ratios),
           "ratio_median": float(np.median(ratios)), "ratio_max": max(ratios),
           "bound_ratio_min": min(bounds), "bound_ratio_median": float(np.median(bounds)),
           "bound_failures": int(fails)}
    m, n = timing_size
    A = with_spectrum(m, n, 1.0 / np.arange(1, n + 1), np.random.default_rng(1))
    approx = lc.randomized_svd(A, 50, seed=0)
    e, t_est = timed(lc.estimate_error, A, approx, 2, seed=0)
    true, t_exact = timed(lambda: float(np.linalg.norm(A - approx.to_dense(), 2)))
    fro, t_fro = timed(lc.estimate_error, A, approx, "fro")
    fro_np, t_fro_np = timed(lambda: float(np.linalg.norm(A - approx.to_dense())))
    row.update(m=m, n=n, k=50, estimate_s=t_est, exact_s=t_exact, ratio=t_exact / t_est,
               estimate_over_true=float(e) / true, fro_s=t_fro, fro_numpy_s=t_fro_np,
               fro_ratio=t_fro_np / t_fro, fro_difference=abs(float(fro) - fro_np) / fro_np)
    rows.append(row)
    log(row)


def markdown(rows, meta) -> str:
    out = ["# Rank to a tolerance: randomized_svd(tol=...), rank(method='randomized'), "
           "estimate_error", "",
           f"- date: {meta['date']}", f"- CPU: {meta['cpu']}", f"- versions: {meta['versions']}",
           f"- command: `{meta['command']}`",
           f"- BLAS/OpenMP threads (every library): {meta.get('threads', 'default')}", "",
           "Each time is one run; ratios are the alternative's time over lowrank_core's "
           "(above 1: lowrank_core is faster), all from this one run. Errors are relative "
           "(||A - U S Vh|| / ||A||) and true (dense residual: Frobenius exactly, spectral by "
           "ARPACK). The torch loop runs for ord='fro' only (its Frobenius check is what "
           "users write; a spectral check would be a full SVD per step).", "",
           "## 1. randomized_svd(A, tol=tol, ord=ord) (float64, C order)", "",
           "| m x n | spectrum | ord | tol | optimal rank | lowrank_core rank | error | s "
           "| full SVD s (ratio) | scipy ID rank | error | ratio | torch loop rank | error | ratio |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["part"] == "tolerance"):
        def cell(name, fmt):
            return format(r[name], fmt) if name in r else "-"
        out.append(
            f"| {r['m']}x{r['n']} | {r['spectrum']} | {r['ord']} | {r['tol']:g} | "
            f"{r['optimal_rank']} | {r['lowrank_core_rank']} | {r['lowrank_core_error']:.2e} | "
            f"{r['lowrank_core_s']:.2f} | {r['numpy_full_svd_s']:.1f} ({r['full_svd_ratio']:.1f}x) | "
            f"{cell('scipy_id_rank', 'd')} | {cell('scipy_id_error', '.2e')} | "
            f"{cell('scipy_id_ratio', '.1f')} | {cell('torch_loop_rank', 'd')} | "
            f"{cell('torch_loop_error', '.2e')} | {cell('torch_loop_ratio', '.1f')} |")
    out += ["", "## 2. rank(A, method='randomized') against numpy.linalg.matrix_rank", "",
            "| m x n | dtype | rank | NumPy | lowrank_core | same | certified (basis) | "
            "NumPy s | lowrank_core s | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["part"] == "rank"):
        out.append(f"| {r['m']}x{r['n']} | {r['dtype']} | {r['r']} | {r['numpy_rank']} | "
                   f"{r['lowrank_core_rank']} | {r['same']} | {r['certified']} "
                   f"({r['basis_columns']}) | {r['numpy_s']:.2f} | {r['lowrank_core_s']:.3f} | "
                   f"{r['ratio']:.1f}x |")
    for r in (r for r in rows if r["part"] == "estimate"):
        out += ["", "## 3. estimate_error(A, approx, 2) against the exact spectral norm", "",
                f"- {r['matrices']} matrices (200-800 x 100-400; spectra 1/i, 0.9^i, uniform; "
                "randomized_svd at a random k, 1 power iteration): estimate / true from "
                f"{r['ratio_min']:.4f} to {r['ratio_max']:.4f} (median {r['ratio_median']:.4f}); "
                f"bound / true at least {r['bound_ratio_min']:.2f} (median "
                f"{r['bound_ratio_median']:.2f}); bound below the true norm: "
                f"{r['bound_failures']} times (stated probability 1e-10 each).",
                f"- {r['m']}x{r['n']}, 1/i spectrum, rank-{r['k']} approximation: estimate "
                f"{r['estimate_s']:.2f} s, exact (NumPy, dense residual then norm 2) "
                f"{r['exact_s']:.2f} s: {r['ratio']:.1f}x; estimate / true "
                f"{r['estimate_over_true']:.6f}. Frobenius: {r['fro_s']:.3f} s against "
                f"NumPy's {r['fro_numpy_s']:.3f} s ({r['fro_ratio']:.1f}x), relative "
                f"difference {r['fro_difference']:.1e}."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --suite tolerance",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--large", action="store_true",
                        help="add 20000x5000 to part 1 and 50000x5000 to part 2")
    parser.add_argument("--parts", default="tolerance,rank,estimate")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    libraries = ["scipy_id"]
    try:
        import torch  # noqa: F401

        libraries.append("torch")
    except ImportError:
        pass
    if args.quick:
        tol_sizes, rank_sizes, tols, ranks, count, timing = [(600, 300)], [(2000, 500)], \
            [1e-1, 1e-3], [10], 6, (600, 300)
    else:
        tol_sizes = [(5000, 2000)] + ([(20000, 5000)] if args.large else [])
        rank_sizes = [(20000, 5000)] + ([(50000, 5000)] if args.large else [])
        tols, ranks, count, timing = [1e-1, 1e-2, 1e-3, 1e-4, 1e-6], [10, 50, 200], 100, \
            (5000, 2000)
    rows: list = []

    def log(row):
        print(json.dumps(row), flush=True)

    parts = args.parts.split(",")
    if "tolerance" in parts:
        part_tolerance(tol_sizes, tols, libraries, rows, log)
    if "rank" in parts:
        part_rank(rank_sizes, ranks, rows, log)
    if "estimate" in parts:
        part_estimate(count, timing, rows, log)
    import scipy

    versions = f"Python {sys.version.split()[0]}, NumPy {np.__version__}, SciPy {scipy.__version__}"
    if "torch" in libraries:
        import torch

        versions += f", PyTorch {torch.__version__}"
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": f"{cpu_name()} ({__import__('os').cpu_count()} cores)", "versions": versions,
            "command": "python -m benchmarks --suite tolerance " + " ".join(argv or sys.argv[3:]),
            "threads": {name: __import__("os").environ.get(name, "default")
                        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = args.name or f"tolerance-{datetime.date.today().isoformat()}"
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    text = markdown(rows, meta)
    (out / f"{stem}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
