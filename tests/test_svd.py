"""svd and singular_values against NumPy, the reference and Eckart-Young."""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import reference
from lowrank_core.data import decaying_spectrum

from helpers import assert_close, computed_dtype, random_matrix, rtol_for, to_device, to_host

SHAPES = [(1, 1), (7, 3), (3, 7), (6, 6), (40, 25), (25, 40)]
DTYPES = [np.float32, np.float64, np.int64]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_svd_every_rank_matches_numpy_and_reference(shape, dtype):
    A = random_matrix(shape, dtype, seed=sum(shape))
    want = computed_dtype(dtype)
    full = np.linalg.svd(A.astype(want), compute_uv=False)
    for k in range(1, min(shape) + 1):
        U, S, Vh = lc.svd(A, k)
        assert U.shape == (shape[0], k) and S.shape == (k,) and Vh.shape == (k, shape[1])
        assert U.dtype == S.dtype == Vh.dtype == want
        assert_close(S, full[:k], want, scale=full[0])
        assert_close(U.T @ U, np.eye(k), want, scale=1.0, factor=10)
        assert_close(Vh @ Vh.T, np.eye(k), want, scale=1.0, factor=10)
        # The rank-k approximation is unique where sigma_k > sigma_{k+1}.
        expected = reference.svd(A, k).to_dense()
        assert_close(lc.svd(A, k).to_dense(), expected, want, scale=full[0], factor=10)


@pytest.mark.parametrize("shape", [(30, 12), (12, 30)], ids=str)
def test_svd_vectors_match_reference_with_sign_convention(shape, float_dtype):
    # Well separated singular values make the vectors themselves unique up to sign.
    A = decaying_spectrum(*shape, 2.0 ** -np.arange(12), seed=1, dtype=float_dtype)
    for k in (1, 4, 12):
        got, want = lc.svd(A, k), reference.svd(A, k)
        assert_close(got.U, want.U, float_dtype, scale=1.0, factor=100)
        assert_close(got.Vh, want.Vh, float_dtype, scale=1.0, factor=100)
        rows = np.argmax(np.abs(got.U), axis=0)
        assert np.all(got.U[rows, np.arange(k)] > 0)


@pytest.mark.parametrize("shape", [(50, 30), (30, 50)], ids=str)
def test_eckart_young_error_equals_next_singular_value(shape, float_dtype):
    A = random_matrix(shape, float_dtype, seed=2)
    sigma = np.linalg.svd(A.astype(np.float64), compute_uv=False)
    for k in range(1, min(shape)):
        approximation = lc.svd(A, k).to_dense()
        error = lc.relative_error(A, approximation)
        optimum = sigma[k] / sigma[0]
        assert abs(error - optimum) <= 50 * rtol_for(float_dtype), (k, error, optimum)
        frobenius = lc.relative_error(A, approximation, "fro")
        optimum_fro = np.sqrt((sigma[k:] ** 2).sum() / (sigma**2).sum())
        assert abs(frobenius - optimum_fro) <= 50 * rtol_for(float_dtype)
    # Full rank reproduces A.
    assert lc.relative_error(A, lc.svd(A, min(shape)).to_dense()) <= 50 * rtol_for(float_dtype)


def test_svd_result_unpacks_like_a_tuple():
    A = random_matrix((5, 4), np.float64)
    result = lc.svd(A, 2)
    U, S, Vh = result
    assert isinstance(result, lc.SVDResult) and isinstance(result, tuple)
    assert U is result.U and S is result.S and Vh is result.Vh
    assert np.allclose(result.to_dense(), U @ np.diag(S) @ Vh)


@pytest.mark.parametrize("layout", ["C", "F", "strided", "transposed"])
def test_svd_accepts_every_layout(layout, float_dtype):
    base = random_matrix((24, 36), float_dtype, seed=3)
    A = {"C": base[:, :18].copy(), "F": np.asfortranarray(base[:, :18]),
         "strided": base[:, ::2], "transposed": base[:18, :].T}[layout]
    expected = reference.svd(np.ascontiguousarray(A), 6)
    got = lc.svd(A, 6)
    assert_close(got.S, expected.S, float_dtype)
    assert_close(got.to_dense(), expected.to_dense(), float_dtype, scale=expected.S[0], factor=10)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_singular_values_of_stacks(dtype):
    A = random_matrix((2, 3, 9, 5), dtype, seed=4)
    got = lc.singular_values(A)
    want = np.linalg.svd(A.astype(computed_dtype(dtype)), compute_uv=False)
    assert got.shape == (2, 3, 5) and got.dtype == computed_dtype(dtype)
    assert_close(got, want, computed_dtype(dtype))
    assert_close(got, reference.singular_values(A), computed_dtype(dtype))
    assert lc.singular_values(np.zeros((0, 4, 3))).shape == (0, 3)
    assert lc.singular_values(np.zeros((4, 0))).shape == (0,)


@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (300, 260)])  # gesdd, and the two-stage path
def test_singular_values_of_negative_zeros_are_positive_zeros(shape, float_dtype):
    A = -np.zeros(shape, dtype=float_dtype)
    for S in (lc.svd(A, 2).S, lc.singular_values(A), lc.randomized_svd(A, 2, seed=0).S):
        assert not np.signbit(S).any(), S


# --- NumPy or CuPy --------------------------------------------------------------------
# On either device (the xp fixture): CuPy input runs on the CUDA core and must give
# the CPU core's answers, in arrays of the input's kind.

DEVICE_STACKS = [(3, 5, 4), (2, 3, 4, 6), (4, 32, 32), (2, 40, 35), (2, 35, 40), (1, 1, 1),
                 (0, 3, 3)]


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("shape", [(60, 40), (40, 60), (33, 33)], ids=str)
def test_svd_matches_cpu_and_reference(xp, shape, layout, float_dtype):
    m, n = shape
    spectrum = 0.7 ** np.arange(min(m, n))
    A_host = decaying_spectrum(m, n, spectrum, seed=3, dtype=float_dtype)
    A = to_device(xp, A_host, layout)
    before = A.copy()
    for k in [1, 5, min(m, n)]:
        got = lc.svd(A, k)
        assert all(isinstance(x, xp.ndarray) for x in got)
        assert got.U.shape == (m, k) and got.S.shape == (k,) and got.Vh.shape == (k, n)
        assert got.U.dtype == got.S.dtype == got.Vh.dtype == float_dtype
        cpu = lc.svd(A_host, k)
        want = reference.svd(A_host, k)
        scale = float(want.S[0])
        assert_close(to_host(got.S), want.S, float_dtype, scale=scale, factor=10)
        assert_close(to_host(got.S), cpu.S, float_dtype, scale=scale, factor=10)
        assert_close(to_host(got.to_dense()), want.to_dense(), float_dtype, scale=scale,
                     factor=100)
        # The same sign convention: the leading vectors themselves agree (their
        # singular values are well separated, so they are well conditioned).
        lead = min(k, 5)
        assert_close(to_host(got.U)[:, :lead], cpu.U[:, :lead], float_dtype, scale=1.0,
                     factor=100)
        assert_close(to_host(got.Vh)[:lead], cpu.Vh[:lead], float_dtype, scale=1.0, factor=100)
        U = to_host(got.U)
        assert np.all(U[np.abs(U).argmax(axis=0), np.arange(k)] > 0)
    assert bool((A == before).all()), "A was modified"


@pytest.mark.parametrize("shape", DEVICE_STACKS, ids=str)
def test_singular_values_of_stacks_match_numpy(xp, shape, float_dtype):
    A_host = random_matrix(shape, float_dtype, seed=1)
    A = xp.asarray(A_host)
    got = lc.singular_values(A)
    assert isinstance(got, xp.ndarray) and got.dtype == float_dtype
    want = np.linalg.svd(A_host.astype(np.float64), compute_uv=False)
    assert got.shape == want.shape
    if want.size:
        assert_close(to_host(got), want, float_dtype, factor=10)
    assert_close(to_host(lc.singular_values(xp.asfortranarray(A))), want, float_dtype, factor=10)
