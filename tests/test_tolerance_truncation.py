"""randomized_svd(A, k, tol=...) of sparse, centred and Dask input: the fixed-k sketch
truncated to the smallest rank within tol in the Frobenius norm, by the identity
||A - U_r S_r Vh_r||_F^2 = ||A||_F^2 - sum_{i<=r} s_i^2 (Eckart–Young as the yardstick)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import lowrank_core as lc

sparse = pytest.importorskip("scipy.sparse")


def known(m=1500, n=300, decay=0.9, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    U0, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = decay ** np.arange(n)
    return ((U0 * sigma) @ V0.T).astype(dtype), sigma


def optimal_rank(sigma, tol):
    """The smallest r with ||A - A_r||_F <= tol ||A||_F (Eckart–Young)."""
    tails = np.sqrt(np.cumsum((sigma ** 2)[::-1])[::-1])
    return int(np.flatnonzero(np.append(tails, 0.0) <= tol * tails[0])[0])


def true_error(A, result):
    dense = A.toarray() if sparse.issparse(A) else np.asarray(A, dtype=np.float64)
    return np.linalg.norm(dense - (result.U * result.S) @ result.Vh)


@pytest.mark.parametrize("fmt", ["csr_array", "csc_matrix", "coo_array"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tol", [1e-1, 1e-2])
def test_sparse_rank_is_optimal_and_error_exact(fmt, dtype, tol):
    A, sigma = known(dtype=dtype)
    S = getattr(sparse, fmt)(A)
    result = lc.randomized_svd(S, 120, tol=tol, seed=0)
    assert isinstance(result, lc.ToleranceSVDResult)
    U, s, Vh = result  # unpacks as the fixed-k result
    assert result.rank == len(s) == U.shape[1] == Vh.shape[0]
    best = optimal_rank(sigma, tol)
    assert best <= result.rank <= best + 1
    norm = np.linalg.norm(A.astype(np.float64))
    error = true_error(S, result)
    assert error <= tol * norm * (1 + 1e-5)
    assert result.tol_reached and result.ord == "fro"
    # The identity's cancellation: ||A||^2 - sum s_i^2 is good to about eps ||A||^2.
    eps = np.finfo(dtype).eps
    assert abs(result.error - error) <= 50 * eps * norm ** 2 / error
    assert_allclose(result.norm, norm, rtol=1e-6)
    # Minimal for its own basis: one rank fewer misses tol.
    fewer = lc.randomized_svd(S, result.rank - 1, tol=0.999, seed=0)  # any tol: rank cap
    if result.rank > 1:
        assert true_error(S, fewer) > tol * norm


def test_sparse_duplicates_are_summed_and_the_input_untouched():
    A, sigma = known(400, 100, 0.7)
    coo = sparse.coo_array(A)
    half = coo.data / 2
    twice = sparse.coo_array((np.concatenate([half, half]),
                              (np.concatenate([coo.row, coo.row]),
                               np.concatenate([coo.col, coo.col]))), shape=A.shape)
    csr = twice.tocsr(copy=False)  # keeps the duplicates: non-canonical
    csr.has_canonical_format = False
    data_before = csr.data.copy()
    result = lc.randomized_svd(csr, 60, tol=1e-3, seed=0)
    assert_allclose(result.norm, np.linalg.norm(A), rtol=1e-12)
    assert result.rank == optimal_rank(sigma, 1e-3)
    np.testing.assert_array_equal(csr.data, data_before)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("how", ["center", "mean"])
def test_centred_against_the_explicitly_centred_matrix(kind, how):
    A, _ = known(800, 200, 0.85, seed=2)
    A = A + np.linspace(0, 1, 200)  # column means far from zero
    mu = A.mean(axis=0) if how == "center" else np.full(200, 0.3)
    explicit = A - mu
    X = A if kind == "dense" else sparse.csr_array(A)
    options = {"center": True} if how == "center" else {"mean": mu}
    tol = 1e-2
    result = lc.randomized_svd(X, 100, tol=tol, seed=0, **options)
    s_explicit = np.linalg.svd(explicit, compute_uv=False)
    assert optimal_rank(s_explicit, tol) <= result.rank <= optimal_rank(s_explicit, tol) + 1
    error = np.linalg.norm(explicit - (result.U * result.S) @ result.Vh)
    assert error <= tol * np.linalg.norm(explicit) * (1 + 1e-8)
    assert_allclose(result.error, error, rtol=1e-6)
    assert_allclose(result.norm, np.linalg.norm(explicit), rtol=1e-10)


def test_the_rank_cap_is_reported_when_tol_is_out_of_reach():
    A, sigma = known(600, 200, 0.95)
    result = lc.randomized_svd(sparse.csr_array(A), 10, tol=1e-3, seed=0)
    assert result.rank == 10 and not result.tol_reached
    assert result.error > 1e-3 * result.norm
    assert_allclose(result.error, true_error(A, result), rtol=1e-8)


def test_dask_as_the_computed_array():
    da = pytest.importorskip("dask.array")
    A, sigma = known(1200, 200, 0.88, seed=4)
    for chunks in [(300, 200), (400, 100)]:
        result = lc.randomized_svd(da.from_array(A, chunks=chunks), 100, tol=1e-2, seed=3,
                                   compute=True)
        dense = lc.randomized_svd(A, 100, seed=3, mixed_precision=False)
        assert result.rank == optimal_rank(sigma, 1e-2)
        assert_allclose(result.S, dense.S[:result.rank], rtol=1e-10)
        assert_allclose(result.error, true_error(A, result), rtol=1e-6)
        assert result.tol_reached


def test_bad_arguments_name_what_to_change():
    A, _ = known(300, 100)
    S = sparse.csr_array(A)
    with pytest.raises(TypeError, match="needs k"):
        lc.randomized_svd(S, tol=0.1)
    with pytest.raises(ValueError, match="ord='fro'"):
        lc.randomized_svd(S, 10, tol=0.1, ord=2)
    with pytest.raises(ValueError, match="tol must be in"):
        lc.randomized_svd(S, 10, tol=1.5)
    with pytest.raises(ValueError, match="ord must be"):
        lc.randomized_svd(A, 10, tol=0.1, ord=1, center=True)
    from scipy.sparse.linalg import aslinearoperator
    with pytest.raises(TypeError, match="linear operator"):
        lc.randomized_svd(aslinearoperator(A), 10, tol=0.1)
