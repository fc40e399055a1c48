"""rank against numpy.linalg.matrix_rank; erank and relatives against the reference
and their invariants; relative_error against numpy.linalg.norm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lowrank_core as lc
from lowrank_core import reference
from lowrank_core.data import decaying_spectrum

from helpers import assert_close, low_rank, random_matrix, rtol_for, to_device, to_host

NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


def rank_inputs():
    yield "zero", np.zeros((4, 5))
    yield "identity", np.eye(6)
    yield "1x1", np.array([[3.0]])
    yield "1x1 zero", np.array([[0.0]])
    yield "1-D", np.array([0.0, 1.0, 2.0])
    yield "1-D zero", np.zeros(3)
    yield "0-D", np.float64(2.0)
    yield "int", random_matrix((7, 5), np.int64, seed=1)
    yield "bool", random_matrix((6, 6), np.bool_, seed=2)
    yield "float32 low rank", low_rank((30, 20), 4, np.float32)
    yield "float64 low rank", low_rank((30, 20), 7)
    yield "wide low rank", low_rank((10, 40), 3)
    yield "stack", low_rank((2, 3, 8, 6), 2)
    yield "near-singular", np.diag([1.0, 1e-8, 1e-17])
    yield "float32 near-singular", np.diag([1.0, 1e-5, 1e-9]).astype(np.float32)


@pytest.mark.parametrize("name,A", list(rank_inputs()), ids=[n for n, _ in rank_inputs()])
def test_rank_matches_numpy(name, A):
    expected = np.linalg.matrix_rank(A)
    got = lc.rank(A)
    assert np.array_equal(got, expected), (got, expected)
    assert np.array_equal(reference.rank(A), expected)
    if np.ndim(expected) == 0:
        assert isinstance(got, int)


@pytest.mark.parametrize("tol", [0.5, 1e-9, np.array([1e-3, 10.0, 1e3])])
def test_rank_absolute_tol_matches_numpy(tol):
    for A in (low_rank((9, 9), 5, seed=3), low_rank((3, 9, 9), 4, seed=4)):
        A = A + np.diag(np.linspace(0.0, 2.0, 9))
        expected = np.linalg.matrix_rank(A, tol)
        assert np.array_equal(lc.rank(A, tol), expected)
        assert np.array_equal(reference.rank(A, tol), expected)


@pytest.mark.skipif(not NUMPY_2, reason="numpy.linalg.matrix_rank has rtol from NumPy 2.0")
@pytest.mark.parametrize("rtol", [1e-3, 0.3, np.array([[0.01], [0.5]])])
def test_rank_relative_tol_matches_numpy(rtol):
    A = decaying_spectrum(10, 8, 0.5 ** np.arange(8), seed=5)
    stack = np.stack([A, 2 * A, 3 * A])
    for matrix in (A, stack):
        expected = np.linalg.matrix_rank(matrix, rtol=rtol)
        got = lc.rank(matrix, rtol=rtol)
        assert np.array_equal(got, expected), (got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_hermitian_matches_numpy(dtype):
    X = np.random.default_rng(6).standard_normal((9, 4))
    S = (X @ X.T).astype(dtype)  # rank 4, symmetric
    assert lc.rank(S, hermitian=True) == np.linalg.matrix_rank(S, hermitian=True) == 4
    lower = np.tril(np.ones((5, 5)))  # only the lower triangle is read, as NumPy
    assert lc.rank(lower, hermitian=True) == np.linalg.matrix_rank(lower, hermitian=True)


def _value_at_the_threshold(rng, m, n, dtype, delta, rtol=None):
    # Random rank with one singular value at (1 + delta) times the default (or
    # relative) threshold and a tail far below it.
    p = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, p)))
    V, _ = np.linalg.qr(rng.standard_normal((n, p)))
    tol = max(m, n) * np.finfo(dtype).eps if rtol is None else rtol
    r = int(rng.integers(1, p))
    s = np.concatenate([np.linspace(1, 0.5, r), [tol * (1 + delta)], np.full(p - r - 1, tol / 1e3)])
    return ((U * s) @ V.T).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_matches_numpy_at_the_threshold(dtype):
    # NumPy computes float32 ranks in float64 (numpy.linalg lifts every input) and
    # rounds the values back before comparing: a float32 SVD (sgesdd) disagreed with
    # it on about 30% of these matrices. From 512 rows and columns the values come
    # from the two-stage reduction, whose rounding differs from gesdd's; a value that
    # near the threshold is recomputed by gesdd, NumPy's routine.
    rng = np.random.default_rng(20)
    cases = [(40, 30)] * 30 + [(200, 120)] * 12 + [(600, 520)] * 2
    for m, n in cases:
        delta = rng.choice([-1.0, 1.0]) * 10 ** rng.uniform(-8, -1)
        A = _value_at_the_threshold(rng, m, n, dtype, delta)
        assert lc.rank(A) == np.linalg.matrix_rank(A), (m, n, delta)
        rtol = 1e-4
        A = _value_at_the_threshold(rng, m, n, dtype, delta, rtol=rtol)
        assert lc.rank(A, rtol=rtol) == np.linalg.matrix_rank(A, rtol=rtol), (m, n, delta)
    # Hermitian: |eigenvalues| (eigvalsh, also computed in float64 by NumPy).
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    tol = 60 * np.finfo(dtype).eps
    for delta in (-1e-6, 1e-6, -1e-3, 1e-3):
        w = np.concatenate([np.linspace(1, 0.5, 20), [-tol * (1 + delta)], np.full(39, tol / 1e3)])
        H = ((Q * w) @ Q.T).astype(dtype)
        assert lc.rank(H, hermitian=True) == np.linalg.matrix_rank(H, hermitian=True), delta


def test_rank_matches_numpy_where_the_two_stage_values_do_not():
    # float64 at 600 x 520: the two-stage values (lc.singular_values) and gesdd's
    # differ by about 1e-4 of the threshold; a value that close is recomputed.
    rng = np.random.default_rng(1)
    two_stage_alone = []
    for delta in (1e-4, -1e-4, 5e-5, -5e-5, 2e-5, -2e-5) * 2:
        A = _value_at_the_threshold(rng, 600, 520, np.float64, delta)
        expected = np.linalg.matrix_rank(A)
        assert lc.rank(A) == expected, delta
        s = lc.singular_values(A)
        two_stage_alone.append(int(np.count_nonzero(s > s[0] * 600 * np.finfo(float).eps)))
        two_stage_alone[-1] -= expected
    assert any(two_stage_alone)  # the cases do reach the recomputation


def test_rank_tol_and_rtol_together_is_an_error():
    with pytest.raises(ValueError, match="tol and rtol"):
        lc.rank(np.eye(3), 0.1, rtol=0.1)


@pytest.mark.parametrize("name", ["erank", "stable_rank", "entropy_rank"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_measures_match_reference(name, dtype):
    for shape in [(1, 1), (8, 5), (5, 8), (2, 6, 6)]:
        A = random_matrix(shape, dtype, seed=7)
        got, want = getattr(lc, name)(A), getattr(reference, name)(A)
        tolerance = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got, want, rtol=tolerance)
        if len(shape) == 2:
            assert isinstance(got, float)
        else:
            assert got.shape == shape[:-2] and got.dtype == np.float64


@pytest.mark.parametrize("name", ["erank", "stable_rank", "entropy_rank"])
def test_measures_of_zero_matrix_are_zero(name):
    assert getattr(lc, name)(np.zeros((4, 3))) == 0.0
    assert getattr(reference, name)(np.zeros((4, 3))) == 0.0
    stack = getattr(lc, name)(np.zeros((2, 3, 3)))
    assert np.array_equal(stack, [0.0, 0.0])


def test_measures_of_known_spectra():
    assert lc.erank(np.eye(5)) == pytest.approx(5.0)
    assert lc.entropy_rank(np.eye(5)) == pytest.approx(5.0)
    assert lc.stable_rank(np.eye(5)) == pytest.approx(5.0)
    D = np.diag([3.0, 1.0])
    assert lc.erank(D) == pytest.approx(16.0 / 10.0)
    assert lc.stable_rank(D) == pytest.approx(10.0 / 9.0)
    p = np.array([0.75, 0.25])
    assert lc.entropy_rank(D) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert lc.erank(np.outer([1.0, 2.0], [3.0, 4.0, 5.0])) == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                  elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)))
def test_rank_measure_invariants(A):
    slack = 1e-9
    stable, effective, entropy = lc.stable_rank(A), lc.erank(A), lc.entropy_rank(A)
    assert stable <= effective * (1 + slack)
    assert effective <= entropy * (1 + slack)
    assert entropy <= min(A.shape) * (1 + slack)
    assert 0 <= lc.rank(A) <= min(A.shape)
    assert lc.rank(A) == np.linalg.matrix_rank(A)


@pytest.mark.parametrize("ord", [2, "fro"])
def test_relative_error_matches_reference(ord, float_dtype):
    A = random_matrix((9, 7), float_dtype, seed=8)
    B = A + 0.1 * random_matrix((9, 7), float_dtype, seed=9)
    got = lc.relative_error(A, B, ord)
    want = reference.relative_error(A, B, ord)
    direct = np.linalg.norm(A - B, ord) / np.linalg.norm(A, ord)
    tolerance = 1e-5 if float_dtype == np.float32 else 1e-12
    assert got == pytest.approx(want, rel=tolerance)
    assert got == pytest.approx(direct, rel=tolerance)


def test_relative_error_edge_cases():
    Z = np.zeros((3, 3))
    assert lc.relative_error(Z, Z) == 0.0
    assert lc.relative_error(Z, np.eye(3)) == float("inf")
    assert lc.relative_error(np.eye(3), np.eye(3), "fro") == 0.0
    # Mixed precision is computed in the wider one.
    A = np.diag([1.0, 1e-9])
    assert lc.relative_error(A, np.diag([1.0, 0.0]).astype(np.float32)) == pytest.approx(1e-9)


@pytest.mark.parametrize("ord", [2, "fro"])
def test_relative_error_near_the_float_limits(ord):
    # A - B of entries near the largest float overflowed to Inf (found by
    # tools/fuzz_bindings.py); both are scaled by one power of two first.
    big = np.float32(3e38)
    A = np.full((2, 2), big)
    assert lc.relative_error(A, -A, ord) == pytest.approx(2.0, rel=1e-6)
    tiny = np.diag([3e-320, 1e-320])  # subnormal float64
    assert lc.relative_error(tiny, np.diag([3e-320, 0.0]), ord) == pytest.approx(
        reference.relative_error(tiny * 2.0**1000, np.diag([3e-320, 0.0]) * 2.0**1000, ord),
        rel=1e-12)


def test_relative_error_of_tiny_a_against_huge_b_is_finite():
    # One common scale for A and B would underflow A to 0 (a case the deep hypothesis
    # profile finds): ||A|| is taken at A's own scale, the ratio put together in double.
    A = np.full((1, 7), -1.7e-18, np.float32)
    B = np.full((1, 7), 3e36, np.float32)
    want = reference.relative_error(A.astype(np.float64), B.astype(np.float64))
    assert lc.relative_error(A, B) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("float_dtype", [np.float32, np.float64])
def test_measures_of_a_finite_matrix_near_the_float_maximum_are_finite(float_dtype):
    # Its singular values overflow (sigma_1 > the largest float), so the measures are
    # computed on a copy scaled by a power of two: they are scale-invariant.
    top = float(np.finfo(float_dtype).max)
    A = (np.random.default_rng(46).uniform(-1, 1, (6, 5)) * top).astype(float_dtype)
    assert np.isinf(lc.singular_values(A)[0])  # why scaling is needed
    unit = (A / np.asarray(2.0 ** (np.finfo(float_dtype).maxexp - 1), float_dtype))
    for measure in (lc.erank, lc.stable_rank, lc.entropy_rank):
        got = measure(A)
        assert np.isfinite(got)
        assert got == pytest.approx(measure(unit), rel=1e-5)
    assert lc.stable_rank(A) <= lc.erank(A) <= lc.entropy_rank(A) <= 5


def test_measures_of_tiny_matrices_keep_their_digits():
    A = random_matrix((7, 5), np.float64, seed=47)
    for measure in (lc.erank, lc.stable_rank, lc.entropy_rank):
        assert measure(A * 2.0 ** -1000) == pytest.approx(measure(A), rel=1e-12)


# --- NumPy or CuPy --------------------------------------------------------------------
# On either device (the xp fixture): CuPy input runs on the CUDA core and must give
# the CPU core's answers, in arrays of the input's kind.


@pytest.mark.parametrize("shape", [(20, 30), (3, 20, 30), (2, 3, 40, 36), (4, 8, 8)], ids=str)
def test_rank_of_matrices_and_stacks_matches_numpy(xp, shape, float_dtype):
    A_host = low_rank(shape, 5, float_dtype, seed=2)
    A = xp.asarray(A_host)
    got = lc.rank(A)
    want = np.linalg.matrix_rank(A_host)
    if A_host.ndim == 2:
        assert isinstance(got, int) and got == want == 5
    else:
        assert isinstance(got, xp.ndarray) and got.dtype == np.int64
        np.testing.assert_array_equal(to_host(got), want)
    np.testing.assert_array_equal(np.asarray(lc.rank(A, tol=1e-3) if A_host.ndim == 2
                                             else to_host(lc.rank(A, tol=1e-3))),
                                  np.linalg.matrix_rank(A_host, tol=1e-3))
    rtol = np.full(A_host.shape[:-2], 0.5)
    got_rtol = lc.rank(A, rtol=rtol)
    want_rtol = lc.rank(A_host, rtol=rtol)
    np.testing.assert_array_equal(got_rtol if A_host.ndim == 2 else to_host(got_rtol), want_rtol)
    # hermitian: |eigenvalues| of the lower triangle
    S_host = A_host[..., :8, :8] + np.swapaxes(A_host[..., :8, :8], -1, -2)
    S_host = np.tril(S_host)  # only the lower triangle is read
    got_h = lc.rank(xp.asarray(S_host), hermitian=True)
    want_h = lc.rank(S_host, hermitian=True)
    np.testing.assert_array_equal(got_h if S_host.ndim == 2 else to_host(got_h), want_h)


@pytest.mark.parametrize("measure", ["erank", "stable_rank", "entropy_rank"])
@pytest.mark.parametrize("shape", [(30, 20), (3, 20, 30), (2, 40, 33), (5, 6, 6)], ids=str)
def test_rank_measures_match_cpu(xp, shape, measure, float_dtype):
    A_host = random_matrix(shape, float_dtype, seed=4)
    got = getattr(lc, measure)(xp.asarray(A_host))
    want = getattr(lc, measure)(A_host)
    ref = getattr(reference, measure)(A_host)
    if len(shape) == 2:
        assert isinstance(got, float)
    else:
        assert isinstance(got, xp.ndarray) and got.dtype == np.float64
        got = to_host(got)
    assert_close(got, want, float_dtype, factor=10)
    assert_close(got, ref, float_dtype, factor=10)
    assert getattr(lc, measure)(xp.zeros((4, 3), float_dtype)) == 0.0


@pytest.mark.parametrize("ord", [2, "fro"])
def test_relative_error_matches_cpu(xp, ord, float_dtype):
    A_host = random_matrix((50, 30), float_dtype, seed=7)
    B_host = lc.svd(A_host, 5).to_dense()
    for layout_a, layout_b in [("C", "C"), ("C", "F"), ("F", "C"), ("F", "F")]:
        A = to_device(xp, A_host, layout_a)
        B = to_device(xp, B_host, layout_b)
        got = lc.relative_error(A, B, ord=ord)
        assert isinstance(got, float)
        want = lc.relative_error(A_host, B_host, ord=ord)
        assert abs(got - want) <= 10 * rtol_for(float_dtype) * want
    zero = xp.zeros((4, 3), float_dtype)
    assert lc.relative_error(zero, zero, ord=ord) == 0.0
    assert lc.relative_error(zero, xp.ones((4, 3), float_dtype), ord=ord) == float("inf")
    huge = xp.full((3, 3), 1e300 if float_dtype == np.float64 else 1e30, float_dtype)
    assert lc.relative_error(huge, huge * 0.5, ord="fro") == pytest.approx(0.5)
    # Near the top of the range A - B overflows unless both are scaled first (as the
    # CPU core does); at the bottom, unscaled entries would be subnormal.
    finfo = np.finfo(float_dtype)
    for value in (float(finfo.max) * 0.9, float(finfo.tiny) * 4):
        A_edge = np.full((4, 3), value, float_dtype)
        A_edge[0, 0] = -value
        B_edge = -A_edge
        want = lc.relative_error(A_edge, B_edge, ord=ord)
        assert np.isfinite(want) and want == pytest.approx(2.0)
        got = lc.relative_error(xp.asarray(A_edge), xp.asarray(B_edge), ord=ord)
        assert got == pytest.approx(want, rel=10 * rtol_for(float_dtype))
