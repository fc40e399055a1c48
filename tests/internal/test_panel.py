"""The Cholesky-QR steps' panel products (cpp/panel.*).

Y^T Y, Y R (R upper triangular) and Y W (W square) for tall panels, always in float64: the AVX-512
kernels (where this CPU has them) and the BLAS path (syrk, trmm) both match float64
NumPy to float64's rounding for the Gram matrix and to the panel dtype's rounding
for the product, on shapes that exercise every tail: rows not a multiple of 8 or
32, columns not a multiple of 4, 6 or 8, one row, one column, and widths on both
sides of where the kernels hand over to BLAS (64 columns, 128 for float32).
"""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core
from lowrank_core.data import decaying_spectrum

from helpers import random_matrix

AVAILABLE, _ = _core._testing.panel_kernels()
PATHS = ["kernels", "blas"] if AVAILABLE else ["blas"]
SHAPES = [(1, 1), (0, 4), (3, 7), (7, 3), (8, 8), (13, 9), (33, 5), (100, 17), (1000, 20), (2001, 30),
          (515, 64), (300, 65), (257, 128), (200, 130)]


@pytest.fixture(params=PATHS)
def path(request):
    """Runs the test on one path and restores the switch afterwards."""
    _, before = _core._testing.panel_kernels(request.param == "kernels")
    yield request.param
    _core._testing.panel_kernels(before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gram_matches_numpy(shape, dtype, path):
    Y = random_matrix(shape, dtype, seed=sum(shape))
    G = _core._testing.panel_gram(Y)
    assert G.dtype == np.float64 and G.shape == (shape[1], shape[1])
    Y64 = Y.astype(np.float64)
    expected = Y64.T @ Y64
    # Sums of m products, exact in float64 for float32 input, in any order.
    scale = np.abs(Y64).T @ np.abs(Y64)
    upper = np.triu(np.ones_like(G, dtype=bool))
    assert np.all(np.abs(G - expected)[upper] <= shape[0] * 2.0**-52 * scale[upper])
    assert np.all(G[~upper] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_times_upper_matches_numpy(shape, dtype, path):
    Y = random_matrix(shape, dtype, seed=sum(shape) + 1)
    before = Y.copy()
    rng = np.random.default_rng(shape[1])
    R = rng.standard_normal((shape[1], shape[1]))
    # Only the upper triangle counts: whatever is below must not be read.
    R_full = R.copy()
    R_full[np.tril_indices(shape[1], -1)] = np.nan
    P = _core._testing.panel_times_upper(Y, R_full)
    assert P.dtype == dtype and P.shape == shape
    assert np.array_equal(Y, before)  # the input is not modified
    Y64 = Y.astype(np.float64)
    expected = Y64 @ np.triu(R)
    scale = np.abs(Y64) @ np.abs(np.triu(R))
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(P - expected) <= (eps + shape[1] * 2.0**-52) * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_times_square_matches_numpy(shape, dtype, path):
    Y = random_matrix(shape, dtype, seed=sum(shape) + 2)
    before = Y.copy()
    W = np.random.default_rng(shape[1] + 1).standard_normal((shape[1], shape[1]))
    P = _core._testing.panel_times_square(Y, W)
    assert P.dtype == dtype and P.shape == shape
    assert np.array_equal(Y, before)
    Y64 = Y.astype(np.float64)
    scale = np.abs(Y64) @ np.abs(W)
    eps = np.finfo(dtype).eps
    assert np.all(np.abs(P - Y64 @ W) <= (eps + shape[1] * 2.0**-52) * scale)


def test_both_paths_agree_to_rounding():
    if not AVAILABLE:
        pytest.skip("this CPU has no AVX-512: only the BLAS path runs")
    Y = random_matrix((3001, 30), np.float32, seed=3)
    R = np.triu(random_matrix((30, 30), np.float64, seed=4))
    _, before = _core._testing.panel_kernels(True)
    try:
        G_kernel, P_kernel = _core._testing.panel_gram(Y), _core._testing.panel_times_upper(Y, R)
        _core._testing.panel_kernels(False)
        G_blas, P_blas = _core._testing.panel_gram(Y), _core._testing.panel_times_upper(Y, R)
    finally:
        _core._testing.panel_kernels(before)
    np.testing.assert_allclose(G_kernel, G_blas, rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(P_kernel, P_blas, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("kernels", [True, False], ids=["kernels", "blas"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [33, 3001, 10007])
def test_panels_split_over_threads(dtype, rows, kernels):
    # Inside randomized_svd the panel products split tall panels over the core's
    # threads (PanelThreads), both the AVX-512 kernels and the BLAS path: Y R row by
    # row, the same bits with the kernels (OpenBLAS rounds rows near a range's
    # edge differently: the same to rounding there); Y^T Y as a sum of the parts'
    # sums, the same to rounding. (3001 and 10007 rows split, 33 do not.)
    Y = random_matrix((rows, 20), dtype, seed=rows)
    R = np.triu(random_matrix((20, 20), np.float64, seed=5))
    W = random_matrix((20, 20), np.float64, seed=6)
    _, before = _core._testing.panel_kernels(kernels)
    try:
        G1 = _core._testing.panel_gram(Y)
        for threads in (2, 3):
            for times, F in ((_core._testing.panel_times_upper, R),
                             (_core._testing.panel_times_square, W)):
                got, want = times(Y, F, threads), times(Y, F)
                if kernels:
                    np.testing.assert_array_equal(got, want)
                else:
                    bound = 2 * np.finfo(dtype).eps * (np.abs(Y.astype(np.float64)) @ np.abs(F))
                    assert np.all(np.abs(got.astype(np.float64) - want) <= bound)
            Y64 = Y.astype(np.float64)
            scale = np.abs(Y64).T @ np.abs(Y64)
            G = _core._testing.panel_gram(Y, threads)
            assert np.all(np.abs(G - G1) <= rows * 2.0**-52 * np.triu(scale))
            assert np.array_equal(np.tril(G, -1), np.zeros_like(G))
            if rows > 1000 and kernels:
                assert not np.array_equal(G, G1)  # it did split
    finally:
        _core._testing.panel_kernels(before)
    with pytest.raises(ValueError, match="threads"):
        _core._testing.panel_gram(Y, 0)


def test_panel_products_refuse_bad_shapes():
    Y = random_matrix((10, 4), np.float64)
    with pytest.raises(ValueError, match="R must be square"):
        _core._testing.panel_times_upper(Y, np.eye(3))
    with pytest.raises(TypeError):
        _core._testing.panel_gram(Y.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_randomized_svd_is_the_same_on_either_path(dtype):
    # The panel products only change rounding in the Cholesky-QR steps.
    if not AVAILABLE:
        pytest.skip("this CPU has no AVX-512: only the BLAS path runs")
    s = 1.0 / np.arange(1, 401, dtype=np.float64)
    A = decaying_spectrum(1500, 400, s, seed=21, dtype=dtype)
    _, before = _core._testing.panel_kernels(True)
    try:
        on = lc.randomized_svd(A, 20, seed=2)
        _core._testing.panel_kernels(False)
        off = lc.randomized_svd(A, 20, seed=2)
    finally:
        _core._testing.panel_kernels(before)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(on.S, off.S, rtol=200 * eps)
    # Singular vectors to rounding against the gap around each (1/i: about 1/i^2).
    for x, y in ((on.U, off.U), (on.Vh.T, off.Vh.T)):
        np.testing.assert_allclose(np.abs(np.sum(x * y, axis=0)), 1.0, atol=1e4 * eps)
