"""The randomized SVD's product kernels (cpp/normal_product.*).

Every instruction set this CPU runs ('avx512', 'avx2', and 'none', which is BLAS)
computes M^T (M X), M X and M^T Y to rounding of float64 NumPy, on shapes that
exercise every tail: rows not a multiple of a tile or a block, fewer columns than a
tile, more than a column range (1024), panels from 1 column to several chunks, C and
Fortran order, empty matrices. And randomized_svd gives the same result, to the
dtype's rounding, whichever kernel runs it.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core

from helpers import assert_close

KERNELS = _core._testing.normal_kernels()
WHICH = ("normal", "plain", "transposed")


@pytest.fixture(params=KERNELS)
def kernel(request):
    """Selects one kernel for the test and restores the default afterwards."""
    before = _core._testing.normal_kernel(request.param)
    yield request.param
    _core._testing.normal_kernel(before)


def expected(M, X, which):
    M64, X64 = M.astype(np.float64), X.astype(np.float64)
    if which == "normal":
        return M64.T @ (M64 @ X64)
    if which == "plain":
        return M64 @ X64
    return M64.T @ X64


SHAPES = [  # (rows, cols, l)
    (1, 1, 1),
    (5, 3, 2),
    (29, 13, 7),  # fewer rows than one block, a row tail in every tile
    (100, 37, 17),  # l across a vector: padding columns
    (301, 257, 33),  # several blocks, tails everywhere
    (250, 1500, 70),  # several chunks of the panel
    (40, 2100, 5),  # more than one column range (1024) in M X
    (1100, 9, 30),  # many blocks of short rows
    (30, 9000, 40),  # a panel past 2 MiB in float64: the kernels hand it to BLAS
    (50, 1500, 100),  # a float64 panel past 1 MiB: M^T (M X) in two ranges of columns
    (40, 3000, 100),  # the same in float32 (float64: past 2 MiB, BLAS)
    (0, 5, 3),
    (5, 0, 3),
    (7, 5, 0),
]


def test_the_kernels_are_listed():
    assert KERNELS[0] == "none"
    assert set(KERNELS) <= {"none", "avx2", "avx512"}
    assert _core._testing.normal_kernel() == KERNELS[-1]  # the best one is the default


@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_products_match_numpy(kernel, which, shape, dtype, order):
    rows, cols, l = shape
    rng = np.random.default_rng(rows * 7919 + cols * 31 + l)
    M = np.asarray(rng.standard_normal((rows, cols)), dtype=dtype, order=order)
    X = rng.standard_normal((rows if which == "transposed" else cols, l)).astype(dtype)
    M_before, X_before = M.copy(), X.copy()
    got = _core._testing.kernel_product(M, X, which)
    want = expected(M, X, which)
    assert got.shape == want.shape and got.dtype == dtype
    # Each entry is a sum of `terms` products of entries of size ~1: rounding grows
    # like sqrt(terms) for random signs; allow the worst case's linear growth.
    terms = (rows * cols) if which == "normal" else (cols if which == "plain" else rows)
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    bound = 4 * np.finfo(dtype).eps * max(terms, 1) ** 0.5 * scale * 10
    assert np.abs(got - want).max(initial=0.0) <= bound
    np.testing.assert_array_equal(M, M_before)
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_product_keeps_its_plain_product(kernel, shape, dtype):
    """M^T (M X) with Y = M X kept: the very bits of the two products on their own."""
    rows, cols, l = shape
    rng = np.random.default_rng(rows * 13 + cols * 7 + l)
    M = rng.standard_normal((rows, cols)).astype(dtype)
    X = rng.standard_normal((cols, l)).astype(dtype)
    Z, Y = _core._testing.kernel_product(M, X, "normal_kept")
    assert Z.shape == (cols, l) and Y.shape == (rows, l)
    assert Z.dtype == Y.dtype == dtype
    np.testing.assert_array_equal(Z, _core._testing.kernel_product(M, X, "normal"))
    np.testing.assert_array_equal(Y, _core._testing.kernel_product(M, X, "plain"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_of_extreme_scales(kernel, dtype):
    """No scaling inside the kernels: a tiny or huge M gives the product of NumPy."""
    rng = np.random.default_rng(3)
    for s in (2.0**-60, 2.0**60):
        M = (rng.standard_normal((90, 50)) * s).astype(dtype)
        X = rng.standard_normal((50, 4)).astype(dtype)
        want = expected(M, X, "plain")
        got = _core._testing.kernel_product(M, X, "plain")
        assert_close(got, want, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("mixed", [True, False], ids=["mixed", "full"])
def test_randomized_svd_agrees_across_kernels(dtype, order, mixed):
    """Each kernel, and BLAS, finds the same rank-k approximation, at the optimum.
    Float64 with mixed precision finds its basis from a float32 copy of A (the
    iterations, and for C order Y = A W after them): the kernels' float32 rounding
    moves the basis, so the results agree to float32's tolerance there and to
    float64's without mixed precision."""
    rng = np.random.default_rng(11)
    m, n, k = 700, 450, 12
    U, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = 1.0 / np.arange(1, n + 1)
    A = np.asarray((U * s) @ V.T, dtype=dtype, order=order)
    before = _core._testing.normal_kernel()
    try:
        results = {}
        for name in KERNELS:
            _core._testing.normal_kernel(name)
            results[name] = lc.randomized_svd(A, k, power_iters=3, seed=5,
                                              mixed_precision=mixed)
    finally:
        _core._testing.normal_kernel(before)
    reference = results["none"]
    agree = np.float32 if mixed else dtype
    for name, r in results.items():
        assert_close(r.S, reference.S, agree, scale=s[0], factor=10)
        assert_close(r.to_dense(), reference.to_dense(), agree, scale=s[0], factor=10)
        error = np.linalg.norm(A.astype(np.float64) - r.to_dense(), 2)
        assert error <= 1.001 * s[k], (name, error / s[k])


def test_bad_kernel_names_are_refused():
    before = _core._testing.normal_kernel()
    with pytest.raises(ValueError, match="kernel must be"):
        _core._testing.normal_kernel("sse9")
    assert _core._testing.normal_kernel() == before
    M = np.ones((3, 2))
    with pytest.raises(ValueError, match="which"):
        _core._testing.kernel_product(M, np.ones((2, 1)), "sideways")
    with pytest.raises(ValueError, match="rows"):
        _core._testing.kernel_product(M, np.ones((3, 1)), "plain")



@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_products_match_numpy_and_repeat_their_bits(kernel, chunked, which, dtype):
    """167 blocks of rows: 8 chunks, whose sums add up in the chunks' order whichever
    thread took which, so the bits repeat from call to call."""
    rows, cols, l = 40000, 24, 9
    rng = np.random.default_rng(5)
    M = rng.standard_normal((rows, cols)).astype(dtype)
    X = rng.standard_normal((rows if which == "transposed" else cols, l)).astype(dtype)
    got = _core._testing.kernel_product(M, X, which)
    want = expected(M, X, which)
    terms = (rows * cols) if which == "normal" else (cols if which == "plain" else rows)
    bound = 4 * np.finfo(dtype).eps * terms**0.5 * float(np.abs(want).max()) * 10
    assert np.abs(got - want).max() <= bound
    for _ in range(12):
        np.testing.assert_array_equal(_core._testing.kernel_product(M, X, which), got)


def test_chunked_flops_switch_refuses_negative_sizes():
    with pytest.raises(ValueError, match="flops"):
        _core._testing.chunked_flops(-1.0)
