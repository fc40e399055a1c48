"""randomized_svd of Dask arrays (lowrank_core._dask): the same result as the
in-memory path on the computed array, X read q + 1 times, bad input refused, and
the same bits after a worker is lost.

"To rounding" here: the Dask path sums the blocks' products in another order than
the in-memory core (a tree over row blocks instead of the core's thread ranges), so
S, U and Vh agree within helpers.RTOL of the dtype (2e-4 for float32, 1e-10 for
float64, relative to sigma_1 for S and to 1 for the unit vectors), on spectra
whose top k + 1 values are well separated.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import lowrank_core as lc
from helpers import assert_close

dask = pytest.importorskip("dask", reason="Dask is optional (pip install lowrank_core[dask])")
da = pytest.importorskip("dask.array", reason="dask[array] is not installed")

from lowrank_core import _dask  # noqa: E402  (after the skip: needs nothing from Dask)

K = 6


def spectrum(r):
    """A known spectrum: 1/i for the first 3 K values, then a faster decay."""
    i = np.arange(1, r + 1, dtype=np.float64)
    return np.where(i <= 3 * K, 1 / i, (1 / (3 * K)) * 0.7 ** (i - 3 * K))


def generated(m, n, chunks, dtype, *, seed=0, calls=None, r=40):
    """X (m x n) = G diag(s) V^T / sqrt(m), made chunk by chunk from the seed (G's
    rows from the row offset, V from the seed): any chunk on its own, the same
    numbers whatever the chunking. Each chunk made appends its location to `calls`."""
    V, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, r)))
    s = spectrum(r)

    def block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        if calls is not None:
            calls.append((r0, c0))
        # Rows in units of 60, each from its own stream: any row chunking that splits
        # at multiples of 60 (all of the tests') gives the same X.
        assert r0 % 60 == 0 and (r1 % 60 == 0 or r1 == m)
        G = np.concatenate([np.random.default_rng([seed, unit]).standard_normal(
            (min(60, m - 60 * unit), r)) for unit in range(r0 // 60, -(-r1 // 60))])
        return ((G * s) @ V[c0:c1].T / math.sqrt(m)).astype(dtype)

    return da.map_blocks(block, dtype=dtype, chunks=chunks, meta=np.empty((0, 0), dtype))


def in_memory(X, k, **options):
    return lc.randomized_svd(np.asarray(X), k, mixed_precision=False, **options)


def assert_same_svd(got, ref, dtype):
    assert_close(got.S, ref.S, dtype, scale=float(ref.S[0]))
    assert_close(got.U, ref.U, dtype, scale=1.0)
    assert_close(got.Vh, ref.Vh, dtype, scale=1.0)


CHUNKINGS = {
    "rows": ((60,) * 6, (150,)),
    "uneven-rows": ((120, 60, 180), (150,)),
    "one-block": ((360,), (150,)),
    "2d": ((60,) * 6, (50, 100)),
    "2d-uneven": ((120, 60, 180), (7, 93, 50)),
}


@pytest.mark.parametrize("scheduler", ["threads", "sync"])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("power_iters", [0, 2])
def test_matches_in_memory(float_dtype, chunking, scheduler, power_iters):
    X = generated(360, 150, CHUNKINGS[chunking], float_dtype, seed=3)
    with dask.config.set(scheduler=scheduler):
        got = lc.randomized_svd(X, K, seed=11, power_iters=power_iters)
        computed = X.compute()
    ref = in_memory(computed, K, seed=11, power_iters=power_iters)
    assert isinstance(got.U, da.Array)
    assert got.U.chunks == (X.chunks[0], (K,))
    assert isinstance(got.S, np.ndarray) and isinstance(got.Vh, np.ndarray)
    assert got.S.dtype == got.Vh.dtype == got.U.dtype == float_dtype
    with dask.config.set(scheduler=scheduler):
        U = got.U.compute()
    assert_same_svd(lc.SVDResult(U, got.S, got.Vh), ref, float_dtype)


def test_same_result_whatever_the_chunking(float_dtype):
    results = [lc.randomized_svd(generated(360, 150, c, float_dtype, seed=4), K, seed=2,
                                 compute=True) for c in CHUNKINGS.values()]
    for other in results[1:]:
        assert_same_svd(other, results[0], float_dtype)


def test_default_in_memory_call_agrees(float_dtype):
    # The in-memory default (mixed_precision="auto") may run its iterations below
    # float64 where its check allows: within its contract, not to rounding.
    X = generated(360, 150, CHUNKINGS["rows"], float_dtype, seed=5)
    got = lc.randomized_svd(X, K, seed=1, compute=True)
    ref = lc.randomized_svd(X.compute(), K, seed=1)
    assert_close(got.S, ref.S, float_dtype, scale=float(ref.S[0]), factor=10)


def test_close_to_the_exact_svd():
    X = generated(600, 200, ((120,) * 5, (200,)), np.float64, seed=6)
    got = lc.randomized_svd(X, K, seed=0, power_iters=4, compute=True)
    exact = np.linalg.svd(X.compute(), compute_uv=False)
    np.testing.assert_allclose(got.S, exact[:K], rtol=1e-8)
    assert np.allclose(got.U.T @ got.U, np.eye(K), atol=1e-12)
    # Eckart-Young: the spectral error is near sigma_{K+1}.
    residual = np.linalg.norm(X.compute() - got.to_dense(), 2)
    assert residual <= exact[K] * (1 + 1e-6)


@pytest.mark.parametrize("chunking", ["rows", "2d"])
@pytest.mark.parametrize("power_iters", [0, 1, 3])
def test_reads_x_q_plus_one_times(chunking, power_iters):
    calls = []
    X = generated(360, 150, CHUNKINGS[chunking], np.float64, seed=7, calls=calls)
    with dask.config.set(scheduler="threads"):
        result = lc.randomized_svd(X, K, seed=0, power_iters=power_iters)
        after_svd = len(calls)
        result.U.compute()  # U comes from the kept range basis, not from X
    blocks = X.numblocks[0] * X.numblocks[1]
    assert after_svd == blocks * (power_iters + 1)
    assert len(calls) == after_svd
    # Every chunk read the same number of times.
    assert len(set(calls)) == blocks


def test_float32_with_a_wide_spread_takes_two_products_like_the_core():
    # (sigma_1 / sigma_k)^2 beyond float32's one-product bound: each power iteration
    # takes two passes, and Y = A W is too ill-conditioned for Q and B^T = A^T Q to
    # come from one pass (orthonormalize_with_product): two more, as in the core.
    rng = np.random.default_rng(0)
    U0, _ = np.linalg.qr(rng.standard_normal((400, 30)))
    V0, _ = np.linalg.qr(rng.standard_normal((120, 30)))
    A = ((U0 * np.logspace(0, -10, 30)) @ V0.T).astype(np.float32)
    calls = []

    def block(x, block_info=None):
        if block_info is not None:  # (not the call that finds the output's type)
            calls.append(block_info[0]["chunk-location"])
        return x

    X = da.from_array(A, chunks=(100, 120)).map_blocks(block, dtype=np.float32)
    got = lc.randomized_svd(X, 10, seed=3, power_iters=2, compute=True)
    assert len(calls) == 4 * (2 + 2 + 2)
    ref = in_memory(A, 10, seed=3, power_iters=2)
    assert_close(got.S, ref.S, np.float32, scale=float(ref.S[0]))


def test_integer_input_is_float64():
    A = np.random.default_rng(0).integers(-5, 6, size=(200, 40))
    got = lc.randomized_svd(da.from_array(A, chunks=(50, 40)), 4, seed=1, compute=True)
    assert got.S.dtype == np.float64
    assert_same_svd(got, in_memory(A, 4, seed=1), np.float64)


def test_explicit_sketch():
    A = generated(360, 150, CHUNKINGS["rows"], np.float64, seed=8).compute()
    omega = np.random.default_rng(1).standard_normal((150, K + 10)) * 1e3
    got = lc.randomized_svd(da.from_array(A, chunks=(90, 150)), K, sketch=omega,
                            compute=True)
    assert_same_svd(got, in_memory(A, K, sketch=omega), np.float64)


@pytest.mark.parametrize("scale", [2.0**600, 2.0**-600])
def test_entries_outside_the_safe_range(scale):
    A = generated(360, 150, CHUNKINGS["rows"], np.float64, seed=9).compute() * scale
    got = lc.randomized_svd(da.from_array(A, chunks=(90, 75)), K, seed=4, compute=True)
    ref = in_memory(A, K, seed=4)
    assert np.isfinite(got.S).all() and got.S[0] > 0
    assert_same_svd(got, ref, np.float64)


def test_short_wide_matrix():
    # m < 4 l: Q is orthonormalised on the client.
    A = np.random.default_rng(2).standard_normal((40, 500))
    got = lc.randomized_svd(da.from_array(A, chunks=(20, 200)), 5, seed=6, compute=True)
    assert_same_svd(got, in_memory(A, 5, seed=6), np.float64)


def test_rank_deficient():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((300, 4)) @ rng.standard_normal((4, 90))
    got = lc.randomized_svd(da.from_array(A, chunks=(75, 90)), 6, seed=2, compute=True)
    ref = in_memory(A, 6, seed=2)
    assert_close(got.S, ref.S, np.float64, scale=float(ref.S[0]))
    assert_close(got.to_dense(), A, np.float64, factor=100)


def test_input_not_modified():
    A = np.random.default_rng(4).standard_normal((120, 30))
    before = A.copy()
    lc.randomized_svd(da.from_array(A, chunks=(40, 30)), 3, seed=0, compute=True)
    np.testing.assert_array_equal(A, before)


def test_same_seed_same_bits():
    X = generated(360, 150, CHUNKINGS["2d"], np.float64, seed=10)
    first = lc.randomized_svd(X, K, seed=5, compute=True)
    second = lc.randomized_svd(X, K, seed=5, compute=True)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# --- bad input ---------------------------------------------------------------------------

def test_chunks_of_mixed_dtypes():
    def block(x, block_info=None):
        return x.astype(np.float32) if block_info[0]["chunk-location"][0] == 1 else x

    X = da.from_array(np.ones((90, 10)), chunks=(30, 10)).map_blocks(block, dtype=np.float64)
    with pytest.raises(TypeError, match=r"chunk \(1, 0\) has dtype float32.*X.dtype is float64"):
        lc.randomized_svd(X, 2, seed=0)


def test_unknown_chunk_sizes():
    x = da.from_array(np.arange(200.0).reshape(100, 2), chunks=(25, 2))
    X = x[x[:, 0] > 10]
    assert any(math.isnan(c) for c in X.chunks[0])
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        lc.randomized_svd(X, 1, seed=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf(bad):
    A = np.ones((80, 10))
    A[70, 3] = bad
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        lc.randomized_svd(da.from_array(A, chunks=(20, 5)), 2, seed=0)


def test_bad_arguments():
    X = da.from_array(np.ones((40, 10)), chunks=(20, 10))
    with pytest.raises(TypeError, match="complex"):
        lc.randomized_svd(X.astype(np.complex128), 2)
    with pytest.raises(ValueError, match="2-D"):
        lc.randomized_svd(da.ones((4, 4, 4)), 2)
    with pytest.raises(ValueError, match="k must be <= 10"):
        lc.randomized_svd(X, 11)
    with pytest.raises(ValueError, match="sketch must have shape"):
        lc.randomized_svd(X, 2, sketch=np.ones((10, 3)))
    with pytest.raises(TypeError, match="compute must be True or False"):
        lc.randomized_svd(X, 2, compute="yes")
    with pytest.raises(ValueError, match="mixed_precision"):
        lc.randomized_svd(X, 2, mixed_precision="sometimes")


def test_cupy_chunks_are_refused_with_what_to_do():
    # The block steps are bound for the CPU core only (docs/dask.md); a Dask array whose
    # chunks are CuPy arrays (here the stand-in's) must say so, not copy them silently.
    import cupy_standin

    meta = cupy_standin.make_cupy().empty((0, 0))
    X = da.from_array(np.ones((4, 4)), chunks=2).map_blocks(lambda b: b, meta=meta,
                                                            dtype=np.float64)
    with pytest.raises(TypeError, match="CuPy chunks.*cupy.asnumpy"):
        lc.randomized_svd(X, 2, seed=0)


@pytest.mark.parametrize("name", ["rank", "erank", "stable_rank", "entropy_rank",
                                  "singular_values"])
def test_measures_that_need_every_singular_value_refuse(name):
    X = da.from_array(np.eye(20), chunks=(10, 20))
    with pytest.raises(TypeError, match=rf"{name} of a Dask array.*randomized_svd\(A, k\)"):
        getattr(lc, name)(X)


def test_block_tasks_limit_their_threads():
    with dask.config.set(scheduler="synchronous"):
        alone = _dask._thread_share()
    with dask.config.set(scheduler="threads", num_workers=alone):
        assert _dask._thread_share() == 1
    with dask.config.set(scheduler="threads", num_workers=1):
        assert _dask._thread_share() == alone
    assert alone >= 1


def test_importing_lowrank_core_does_not_import_dask():
    code = "import sys, lowrank_core; print('dask' in sys.modules, 'distributed' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False False"


# --- dask.distributed: worker processes ---------------------------------------------------

CLUSTER_SCRIPT = r"""
import os, sys, numpy as np, dask.array as da
from dask.distributed import Client, LocalCluster
import lowrank_core as lc
from lowrank_core import _dask

marker = sys.argv[1]
V, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((120, 20)))

def block(block_info=None, lose=False):
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    if lose and r0 == 200 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)  # the worker process dies while computing this chunk
    G = np.random.default_rng(r0).standard_normal((r1 - r0, 20))
    return (G * (1.0 / np.arange(1, 21))) @ V[c0:c1].T

def X(lose):
    return da.map_blocks(block, lose=lose, dtype=np.float64, chunks=((100,) * 4, (60, 60)),
                         meta=np.empty((0, 0)))

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        share = _dask._thread_share()
        plain = lc.randomized_svd(X(False), 4, seed=3, power_iters=2, compute=True)
        lost = lc.randomized_svd(X(True), 4, seed=3, power_iters=2, compute=True)
        A = X(False).compute()
    ref = lc.randomized_svd(A, 4, seed=3, power_iters=2, mixed_precision=False)
    print("share", share, (os.cpu_count() or 1) // 2)
    print("lost", os.path.exists(marker))
    print("identical", all(np.array_equal(a, b) for a, b in zip(plain, lost)))
    print("S", np.abs(plain.S - ref.S).max() / ref.S[0])
    print("U", np.abs(plain.U - ref.U).max(), "Vh", np.abs(plain.Vh - ref.Vh).max())
"""


def test_local_cluster_of_processes_and_a_lost_worker(tmp_path):
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "lost")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    share, expected = lines["share"].split()
    assert int(share) == max(1, int(expected))
    assert lines["lost"] == "True"  # a worker really died mid-computation
    assert lines["identical"] == "True"  # and the retried tasks gave the same bits
    assert float(lines["S"]) <= 1e-10
    u, vh = lines["U"].split()[0], lines["U"].split()[2]
    assert float(u) <= 1e-10 and float(vh) <= 1e-10


def test_benchmark_construction_has_its_spectrum_exactly():
    # benchmarks/dask_suite.py reports accuracy against the spectrum its arrays have
    # by construction: check that they have it, and that any chunking makes the same X.
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import dask_suite

    assert dask_suite.construction_error(m=3000, n=120) < 1e-13
    one = dask_suite.make_array(1000, 50, "float32", (1000, 50), 3, None).compute()
    many = dask_suite.make_array(1000, 50, "float32", (300, 20), 3, None).compute()
    np.testing.assert_array_equal(one, many)
