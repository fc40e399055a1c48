"""One library, one operation, one matrix, in a process of its own.

``python -m benchmarks.worker JOB_JSON`` prints one JSON line: the timings of
``repeats`` calls after one untimed warm-up, and the accuracy of the result; or,
for a randomized SVD job with ``seeds``, the error ratio of each seed's result,
or with ``same_sketch`` too, the pair (lowrank_core's error from this library's
sketch, this library's error) for each seed (benchmarks/studies/seed_study.py).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def spectral_residual(A, U, S, Vh, seed=0) -> float:
    """||A - U diag(S) Vh||_2 in float64, by Lanczos (ARPACK) on the residual operator."""
    from scipy.sparse.linalg import LinearOperator, svds

    A = np.asarray(A, dtype=np.float64)
    U, S, Vh = (np.asarray(x, dtype=np.float64) for x in (U, S, Vh))
    m, n = A.shape
    op = LinearOperator(
        (m, n), dtype=np.float64,
        matvec=lambda x: A @ x.ravel() - U @ (S * (Vh @ x.ravel())),
        rmatvec=lambda y: A.T @ y.ravel() - Vh.T @ (S * (U.T @ y.ravel())))
    v0 = np.random.default_rng(seed).standard_normal(min(m, n))
    return float(svds(op, k=1, tol=1e-10, v0=v0, return_singular_vectors=False)[0])


def probe() -> dict:
    """The machine's yardsticks: GEMM rate (large square products through NumPy's BLAS,
    all threads) and memory bandwidth (a threaded dot product of two 512 MiB vectors)."""
    out = {}
    for dtype in ("float32", "float64"):
        n = 3000
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        a @ a
        best = min(_timed(lambda: a @ a) for _ in range(3))
        out[f"gemm_gflops_{dtype}"] = 2 * n**3 / best / 1e9
    x, y = np.ones(2**26), np.ones(2**26)  # 2 x 512 MiB, read once by a threaded BLAS dot
    np.dot(x, y)
    best = min(_timed(lambda: np.dot(x, y)) for _ in range(5))
    out["read_gbs"] = (x.nbytes + y.nbytes) / best / 1e9
    return out


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(job: dict) -> dict:
    if job.get("op") == "probe":
        return probe()
    from benchmarks.libraries import OPERATIONS

    function, module_name = OPERATIONS[job["op"]][job["library"]]
    A = np.load(job["matrix"])
    k, l, q = job["k"], job["sketch"], job["power_iters"]
    if job["op"] == "randomized_svd":
        call = lambda: function(A, k, l, q, 0)  # noqa: E731
    elif job["op"] == "svd":
        call = lambda: function(A, k)  # noqa: E731
    else:
        call = lambda: function(A)  # noqa: E731
    sigma = np.asarray(job["singular_values"])

    def error_ratio(result) -> float:
        """The result's spectral error over the optimum sigma_(k+1) (the error itself
        when sigma_(k+1) is not given)."""
        error = spectral_residual(A, *result)
        return error / sigma[k] if k < sigma.size else error

    if job.get("seeds") is not None and job.get("same_sketch"):
        # Per seed: this library's error, and lowrank_core's from the very sketch the
        # library drew (nothing timed).
        from benchmarks.libraries import SKETCHES, rsvd_lowrank_core

        draw = SKETCHES[job["library"]]
        return {"error_pairs": [
            [error_ratio(rsvd_lowrank_core(A, k, l, q, None,
                                           sketch=draw(A.shape, l, A.dtype, seed))),
             error_ratio(function(A, k, l, q, seed))]
            for seed in job["seeds"]]}
    if job.get("seeds") is not None:  # errors over several sketches, nothing timed
        return {"error_ratios": [error_ratio(function(A, k, l, q, seed))
                                 for seed in job["seeds"]]}
    before = A.copy() if job.get("check_unmodified") else None
    times = []
    result = None
    if job.get("warmup", True):
        result = call()  # warm-up (and the result whose accuracy is reported)
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        outcome = call()
        times.append(time.perf_counter() - start)
        result = outcome if result is None else result
    out = {"times": times}
    if not job.get("accuracy", True):
        pass
    elif job["op"] in ("randomized_svd", "svd"):
        out["error_ratio"] = error_ratio(result)
    elif job["op"] == "singular_values":
        out["max_relative_error"] = float(np.max(np.abs(np.asarray(result, np.float64) - sigma))
                                          / sigma[0])
    elif job["op"] == "rank":
        out["rank"] = int(result)
    if before is not None:
        out["unmodified"] = bool(np.array_equal(before, A))
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
