"""The same seed gives bit-identical results on one machine with one BLAS thread
count: randomized_svd (float32 and float64, both layouts, sizes where the BLAS runs
threaded and float64 takes the float32 power iterations) and Bottleneck.fit (data
fixed, stream and exact).

Compared by SHA-256 of the result bytes, within one process and across two fresh
processes (so no state left by an earlier call, e.g. a cached workspace or the
BLAS's thread count, can make two runs agree or differ).
"""

from __future__ import annotations

import json

import pytest

from helpers import run_python

# Run in this process (exec) and in subprocesses (python -c): prints nothing,
# defines hashes(threads) -> {name: sha256 of the result's bytes}.
SCRIPT = r'''
import contextlib
import hashlib

import numpy as np

import lowrank_core as lc


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def hashes(threads):
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(threads, user_api="blas") if threads else None
    except ImportError:
        limit = None
    out = {}
    with limit if limit is not None else contextlib.nullcontext():
        rng = np.random.default_rng(0)
        # 2 m n (k + 10) >= 5e7: float64 runs its power iterations in float32.
        A = rng.standard_normal((1200, 800))
        for dtype in (np.float64, np.float32):
            for order in ("C", "F"):
                M = np.asarray(A, dtype=dtype, order=order)
                for seed in (7, 8):
                    r = lc.randomized_svd(M, 20, seed=seed)
                    out[f"randomized_svd {np.dtype(dtype).name} {order} seed={seed}"] = \
                        digest(r.U, r.S, r.Vh)
        # Products of any size in chunks that the threads take as they come (by
        # default only from 4e9 flops; 20000 rows make 5 to 8 chunks): the bits must
        # not depend on who took which.
        T = rng.standard_normal((20000, 100))
        before = lc._core._testing.chunked_flops(0)
        try:
            for dtype in (np.float64, np.float32):
                for seed in (7, 8):
                    r = lc.randomized_svd(np.asarray(T, dtype=dtype), 20, seed=seed)
                    out[f"chunked randomized_svd {np.dtype(dtype).name} seed={seed}"] = \
                        digest(r.U, r.S, r.Vh)
        finally:
            lc._core._testing.chunked_flops(before)
        B = rng.standard_normal((40, 30))
        X = rng.standard_normal((16, 30))
        for data in ("fixed", "stream", "exact"):
            for dtype in ("float32", "float64"):
                for seed in (7, 8):
                    options = dict(epochs=1 if data == "exact" else 2, samples=512, seed=seed,
                                   data=data, dtype=dtype)
                    net = lc.Bottleneck(5, **options).fit(B)
                    out[f"Bottleneck {data} {dtype} seed={seed}"] = digest(
                        net.loss_history_, net.matrix(), *net.factors(), net.intercept_,
                        net.singular_values_, net.predict(X))
    return out
'''


def blas_threads():
    """The BLAS thread count now (None without threadpoolctl): pinned in every run."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else None


def in_process(threads):
    namespace = {}
    exec(compile(SCRIPT, "<determinism script>", "exec"), namespace)  # noqa: S102
    return namespace["hashes"](threads)


def in_subprocess(threads):
    code = SCRIPT + "\nimport json, sys\nprint(json.dumps(hashes(json.loads(sys.argv[1]))))\n"
    process = run_python(code, json.dumps(threads))
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def threads():
    return blas_threads()


@pytest.fixture(scope="module")
def first_run(threads):
    return in_process(threads)


def test_same_seed_same_bits_within_one_process(first_run, threads):
    again = in_process(threads)
    assert again == first_run
    # The hashes do see the seed (they are not of something constant).
    for name in first_run:
        if name.endswith("seed=7"):
            assert first_run[name] != first_run[name[:-1] + "8"], name


def test_same_seed_same_bits_across_processes(first_run, threads):
    one, two = in_subprocess(threads), in_subprocess(threads)
    differ = sorted(name for name in one if one[name] != two.get(name))
    assert not differ and one.keys() == two.keys(), f"differ between processes: {differ}"
    # And a fresh process computes what this one (after all the other tests) did.
    differ = sorted(name for name in one if one[name] != first_run.get(name))
    assert not differ, f"differ from this process: {differ}"
