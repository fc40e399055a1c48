"""singular_values' two-stage path (cpp/lowrank/spectrum/band_reduction.hpp): large matrices reduced
to a band by blocked Householder QR/LQ, then to bidiagonal form (gbbrd) and solved
by dqds, against float64 values from NumPy. _core._testing.two_stage_singular_values runs
that path at any size, so the edge shapes of the band reduction are tested small;
the public functions take it from 512 columns and rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowrank_core as lc
from lowrank_core import _core, reference
from lowrank_core.data import decaying_spectrum

from helpers import random_matrix

FLOAT64_FROM = FLOAT32_FROM = 512  # band_reduction.hpp, two_stage_pays


def exact_values(A):
    return np.linalg.svd(np.asarray(A, dtype=np.float64), compute_uv=False)


def error_in_eps(got, A):
    """max |got - sigma| / (eps sigma_1), sigma from float64 SVD of A's values."""
    want = exact_values(A)
    eps = np.finfo(np.asarray(got).dtype).eps
    return float(np.abs(got.astype(np.float64) - want).max(initial=0.0) / (eps * want[0]))


def bound_in_eps(dtype, shape):
    # float64: gesdd's own error is 9-16 eps sigma_1 at 500-1500 columns on matrices
    # of known spectrum, ours 10-18; float32: stages 2-3 run in float64, 0.3-0.7 eps
    # (as numpy.linalg.svd's float32 values).
    return 4.0 if np.dtype(dtype) == np.float32 else 4.0 * np.sqrt(max(shape)) + 8.0


# The band width is 16: shapes around it and its multiples, tall enough for QR
# first (rows > 5/3 cols), wide (reduced as A^T), single rows and columns.
EDGE_SHAPES = [(1, 1), (1, 5), (5, 1), (2, 2), (16, 16), (17, 16), (16, 17), (33, 32),
               (32, 33), (48, 17), (17, 48), (100, 60), (64, 64), (65, 65), (97, 96),
               (300, 290), (1600, 1500), (2600, 1500)]


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", EDGE_SHAPES, ids=str)
def test_two_stage_values_at_every_edge_shape(shape, order, float_dtype):
    if max(shape) > 1000 and order == "F":
        pytest.skip("the large shapes once, in C order")
    A = np.asarray(random_matrix(shape, float_dtype, seed=sum(shape)), order=order)
    before = A.copy()
    got = _core._testing.two_stage_singular_values(A)
    assert got.dtype == float_dtype and got.shape == (min(shape),)
    assert np.all(np.diff(got) <= 0), "values must descend"
    assert error_in_eps(got, A) <= bound_in_eps(float_dtype, shape)
    np.testing.assert_array_equal(A, before)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 90), n=st.integers(1, 90), seed=st.integers(0, 2**16))
def test_two_stage_values_of_random_shapes(m, n, seed):
    for dtype in (np.float32, np.float64):
        A = random_matrix((m, n), dtype, seed=seed)
        got = _core._testing.two_stage_singular_values(A)
        assert error_in_eps(got, A) <= bound_in_eps(dtype, (m, n)), (m, n, dtype)


def test_two_stage_values_of_a_known_spectrum(float_dtype):
    # Exact values are known up to A's own rounding: 1/i, 200 of them.
    s = 1.0 / np.arange(1, 201)
    A = decaying_spectrum(260, 200, s, seed=3, dtype=float_dtype)
    got = _core._testing.two_stage_singular_values(A)
    assert error_in_eps(got, A) <= bound_in_eps(float_dtype, A.shape)
    # float64 agrees with the exact spectrum to rounding A, tens of eps.
    assert np.abs(got.astype(np.float64) - s).max() <= 100 * np.finfo(float_dtype).eps


def test_two_stage_values_outside_the_safe_range(float_dtype):
    # Scaled into range by a power of two and back: the values of A itself, to
    # rounding (dqds scales by factors of its own, so not to the bit).
    A = random_matrix((70, 50), float_dtype, seed=5)
    plain = _core._testing.two_stage_singular_values(A)
    exponents = (-1000, 1000) if float_dtype == np.float64 else (-120, 120)
    for e in exponents:
        scaled = np.ldexp(A, e).astype(float_dtype)
        got = _core._testing.two_stage_singular_values(scaled)
        assert np.all(np.isfinite(got)) and got[-1] > 0
        back = np.ldexp(got.astype(np.float64), -e)
        assert np.abs(back - plain).max() <= 4 * np.finfo(float_dtype).eps * plain[0]


def test_two_stage_values_reject_nan_and_bad_shapes():
    A = random_matrix((20, 10), np.float64)
    A[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        _core._testing.two_stage_singular_values(A)
    with pytest.raises(ValueError, match="2-D"):
        _core._testing.two_stage_singular_values(np.ones(3))
    assert _core._testing.two_stage_singular_values(np.ones((0, 4))).shape == (0,)


@pytest.mark.parametrize("shape", [(600, 520), (520, 700)], ids=str)
def test_public_functions_take_the_two_stage_path_when_large(shape, float_dtype):
    # Past the gate, C order (wide: a plain copy of A^T) and F order.
    A = random_matrix(shape, float_dtype, seed=6)
    for X in (A, np.asfortranarray(A)):
        got = lc.singular_values(X)
        np.testing.assert_array_equal(got, _core._testing.two_stage_singular_values(X))
        assert error_in_eps(got, A) <= bound_in_eps(float_dtype, shape)
    atol = (1e-12 if float_dtype == np.float64 else 1e-5) * got[0]
    np.testing.assert_allclose(lc.singular_values(A), reference.singular_values(A),
                               rtol=0, atol=atol)


def test_rank_past_the_gate_matches_numpy(float_dtype):
    n = FLOAT32_FROM if float_dtype == np.float32 else FLOAT64_FROM
    rng = np.random.default_rng(7)
    low = (rng.standard_normal((n + 20, 37)) @ rng.standard_normal((37, n))).astype(float_dtype)
    full = rng.standard_normal((n + 20, n)).astype(float_dtype)  # condition ~150
    assert lc.rank(low) == np.linalg.matrix_rank(low) == 37
    assert lc.rank(full) == np.linalg.matrix_rank(full) == n
    stack = np.stack([low, full])  # the two matrices on the core's threads
    assert np.array_equal(lc.rank(stack), [37, n])
    values = lc.singular_values(stack)
    assert values.shape == (2, n) and values.dtype == float_dtype
    for got, A in zip(values, stack):
        assert error_in_eps(got, A) <= bound_in_eps(float_dtype, A.shape)


def test_float32_values_are_as_accurate_as_numpys():
    A = random_matrix((FLOAT32_FROM + 32, FLOAT32_FROM), np.float32, seed=8)
    ours = error_in_eps(lc.singular_values(A), A)
    numpys = error_in_eps(np.linalg.svd(A, compute_uv=False), A)
    assert ours <= max(2.0 * numpys, 1.0), (ours, numpys)


@pytest.mark.parametrize("shape", [(9, 5), (600, 520)], ids=str)
def test_fortran_ordered_input_is_read_as_its_transpose(shape, float_dtype):
    # The values of A and A^T are the same: a Fortran-ordered A (or A.T of a C-ordered
    # array) goes to the core as the C-ordered A^T it is, with no copy in Python.
    import tracemalloc

    A = random_matrix(shape, float_dtype, seed=9)
    F = np.asfortranarray(A)
    before = F.copy()
    as_transpose = np.ascontiguousarray(A.T)
    tracemalloc.start()
    try:
        got = lc.singular_values(F)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if F.nbytes >= 1 << 20:  # NumPy's allocations are traced: no copy of A
        assert peak < F.nbytes // 2, peak
    np.testing.assert_array_equal(got, lc.singular_values(as_transpose))
    np.testing.assert_allclose(got, np.linalg.svd(A.astype(np.float64), compute_uv=False),
                               rtol=0, atol=1e3 * np.finfo(float_dtype).eps * got[0])
    assert lc.rank(F) == np.linalg.matrix_rank(A)
    assert lc.rank(F, rtol=0.5) == np.linalg.matrix_rank(A, rtol=0.5)
    assert lc.erank(F) == lc.erank(as_transpose)
    # hermitian=True reads F's own lower triangle, not its transpose's.
    S = F[: min(shape), : min(shape)]
    assert lc.rank(S, hermitian=True) == np.linalg.matrix_rank(S, hermitian=True)
    np.testing.assert_array_equal(F, before)
