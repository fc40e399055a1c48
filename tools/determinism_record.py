"""A record of the bits the package computes, to show that a change of layout or
structure changed no result.

Runs a fixed set of calls through the public API (and the kernel hooks the tests
use), chosen so that every path of the CPU core runs at least once: exact SVD,
randomized SVD in float32 and float64, C and F order, each ``mixed_precision``
setting, AMX where the CPU has it, an explicit sketch, entries outside LAPACK's
safe range (the scaled copy), ill-conditioned spectra (two products per power
iteration), products large enough to be chunked across threads; singular values
by gesdd and by the two-stage reduction; rank at and near the threshold; the
erank family; and the bottleneck network in each data mode and optimizer. Each
result is hashed (SHA-256 of dtype, shape and bytes).

    python tools/determinism_record.py --write benchmarks/results/determinism-DATE.json
    python tools/determinism_record.py --check benchmarks/results/determinism-DATE.json

Bits depend on the machine (instruction set, BLAS, thread count): a record is
compared only on the machine that wrote it, with the BLAS threads pinned as written
in it (``--check`` exits 1 and names each call that differs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys

import numpy as np


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def spectrum_matrix(rng, m, n, s, dtype, order):
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return np.asarray((U * s) @ V.T, dtype=dtype, order=order)


def record() -> dict[str, str]:
    import lowrank_core as lc

    out: dict[str, str] = {}
    rng = np.random.default_rng(20261206)
    gauss = rng.standard_normal((1200, 800))
    r = min(gauss.shape)
    spectra = {
        "gaussian": None,
        "inverse": 1.0 / np.arange(1, r + 1),
        "exp5": np.exp(-np.arange(r) / 5.0),
        "gapped": np.r_[np.ones(20), np.full(r - 20, 1e-3)],
    }
    matrices = {}
    for name, s in spectra.items():
        matrices[name] = gauss if s is None else spectrum_matrix(rng, *gauss.shape, s,
                                                                 np.float64, "C")
    for name, base in matrices.items():
        for dtype in (np.float64, np.float32):
            for order in ("C", "F"):
                A = np.asarray(base, dtype=dtype, order=order)
                for precision in ("auto", "fast", False):
                    for q in (0, 1, "auto"):
                        res = lc.randomized_svd(A, 20, seed=5, power_iters=q,
                                                mixed_precision=precision)
                        key = (f"randomized_svd {name} {np.dtype(dtype).name} {order} "
                               f"mp={precision} q={q}")
                        out[key] = digest(res.U, res.S, res.Vh)
    # Small, wide, rank 1, k = min(m, n), oversamples 0, explicit sketch.
    small = rng.standard_normal((30, 70))
    for dtype in (np.float64, np.float32):
        A = small.astype(dtype)
        for k, p in ((1, 10), (30, 0), (5, 3)):
            res = lc.randomized_svd(A, k, oversamples=p, seed=1)
            out[f"randomized_svd small {np.dtype(dtype).name} k={k} p={p}"] = digest(*res)
        sk = rng.standard_normal((70, 15)).astype(dtype)
        res = lc.randomized_svd(A, 5, sketch=sk)
        out[f"randomized_svd sketch {np.dtype(dtype).name}"] = digest(*res)
        out[f"svd {np.dtype(dtype).name}"] = digest(*lc.svd(A, 7))
    # Entries outside LAPACK's safe range: the iterations run on a scaled copy.
    for scale in (1e300, 1e-300):
        res = lc.randomized_svd(gauss[:300, :200] * scale, 10, seed=2)
        out[f"randomized_svd scaled {scale:g}"] = digest(*res)
    # The same at sizes where the unscaled A would take the float32 copy or AMX, both
    # layouts and dtypes: the scaled copy is planned for itself (it is column-major).
    for dtype, scales in ((np.float64, (1e300, 1e-300)), (np.float32, (1e36, 1e-36))):
        for scale in scales:
            for order in ("C", "F"):
                A = np.asarray(matrices["exp5"] * scale, dtype=dtype, order=order)
                for precision in ("auto", "fast"):
                    res = lc.randomized_svd(A, 20, seed=4, mixed_precision=precision)
                    out[f"randomized_svd scaled large {np.dtype(dtype).name} {scale:g} "
                        f"{order} mp={precision}"] = digest(*res)
    # Products chunked across threads.
    tall = rng.standard_normal((20000, 100))
    # lowrank_core._core._testing.chunked_flops (_core._chunked_flops in older builds).
    testing = getattr(lc._core, "_testing", None)
    chunked_flops = testing.chunked_flops if testing else lc._core._chunked_flops
    before = chunked_flops(0)
    try:
        for dtype in (np.float64, np.float32):
            res = lc.randomized_svd(tall.astype(dtype), 20, seed=3)
            out[f"randomized_svd chunked {np.dtype(dtype).name}"] = digest(*res)
    finally:
        chunked_flops(before)
    # Singular values: gesdd below 512, two-stage from 512; stacks.
    for shape in ((300, 200), (700, 600), (600, 700)):
        for dtype in (np.float64, np.float32):
            A = rng.standard_normal(shape).astype(dtype)
            out[f"singular_values {shape} {np.dtype(dtype).name}"] = digest(
                lc.singular_values(A))
            out[f"rank {shape} {np.dtype(dtype).name}"] = digest(lc.rank(A))
            for f in (lc.erank, lc.stable_rank, lc.entropy_rank):
                out[f"{f.__name__} {shape} {np.dtype(dtype).name}"] = digest(f(A))
    out["singular_values stack"] = digest(lc.singular_values(rng.standard_normal((4, 9, 6))))
    # Rank near the threshold (recomputed by gesdd at >= 512) and of low-rank matrices.
    for n in (100, 600):
        s = np.r_[np.ones(n // 2), np.full(n - n // 2, 1e-13)]
        A = spectrum_matrix(rng, n, n, s, np.float64, "C")
        out[f"rank threshold {n}"] = digest(lc.rank(A), lc.rank(A, rtol=1e-12),
                                            lc.rank(A, tol=1e-10))
        out[f"rank hermitian {n}"] = digest(lc.rank(A @ A.T, hermitian=True))
    out["relative_error"] = digest(lc.relative_error(gauss, gauss * 0.5),
                                   lc.relative_error(gauss, gauss * 0.5, ord="fro"))
    # The bottleneck network in each data mode, optimizer and dtype.
    B = rng.standard_normal((40, 30))
    X = rng.standard_normal((16, 30))
    for data in ("fixed", "stream", "exact"):
        for dtype in ("float32", "float64"):
            for optimizer in ("adam", "sgd"):
                net = lc.Bottleneck(5, epochs=1 if data == "exact" else 2, samples=512,
                                    seed=7, data=data, dtype=dtype, optimizer=optimizer,
                                    lr=1e-3 if optimizer == "adam" else 1e-2).fit(B)
                out[f"Bottleneck {data} {dtype} {optimizer}"] = digest(
                    net.loss_history_, net.matrix(), *net.factors(), net.intercept_,
                    net.singular_values_, net.predict(X))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="FILE")
    group.add_argument("--check", metavar="FILE")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (default: the record's, or the machine's cores)")
    args = parser.parse_args(argv)
    expected = None
    if args.check:
        with open(args.check) as f:
            expected = json.load(f)
    threads = args.threads or (expected["blas_threads"] if expected else os.cpu_count())
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads, user_api="blas"):
        hashes = record()
    if args.write:
        with open(args.write, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(),
                       "cpu_count": os.cpu_count(), "blas_threads": threads,
                       "numpy": np.__version__, "hashes": hashes}, f, indent=1,
                      sort_keys=True)
            f.write("\n")
        print(f"{len(hashes)} results hashed to {args.write}")
        return 0
    old = expected["hashes"]
    differ = sorted(k for k in old if hashes.get(k) != old[k])
    missing = sorted(set(hashes) - set(old))
    for name in differ:
        print(f"DIFFERS: {name}")
    for name in missing:
        print(f"NEW (not in the record): {name}")
    print(f"{len(old) - len(differ)} of {len(old)} results identical")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
