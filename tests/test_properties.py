"""Property-based tests of every public function on generated input.

Inputs vary in shape (1 x N, N x 1, empty, wide and tall, stacks), values (zeros,
subnormals, huge and tiny magnitudes, exact low rank, NaN, Inf), dtype (float16/32/64,
integers, bool, complex, object, strings) and memory layout (C, Fortran, strided,
reversed, read-only, misaligned, broadcast). For each call the property is:

* the outcome is the one the input calls for: a valid input is never rejected, and
  an invalid one (NaN/Inf, complex, bad shape or argument) raises ValueError or
  TypeError -- which one is predicted from the input, so a blanket ``except`` cannot
  hide a regression, and any other exception (or a crash) fails the test;
* a result satisfies its invariants (shapes, dtypes, sortedness, rank bounds,
  Eckart-Young, agreement with NumPy to a per-dtype tolerance, exactness on input of
  exact low rank, finite for finite input);
* the input array, its flags and the buffer it is a view of are unchanged, bytes
  included.

The number of examples comes from the Hypothesis profile (tests/conftest.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

import lowrank_core as lc
from lowrank_core import reference

from helpers import rtol_for

# --- generated input ---------------------------------------------------------------

ACCEPTED_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int8,
                   np.uint8, np.uint64, np.bool_]
REJECTED_DTYPES = [np.complex128, np.complex64, object, "U8"]
DTYPES = st.sampled_from(ACCEPTED_DTYPES * 3 + REJECTED_DTYPES).map(np.dtype)

# "gaussian" and "low_rank" weigh more: most inputs should be ordinary and valid.
KINDS = ["gaussian"] * 3 + ["low_rank"] * 3 + ["zeros", "ones", "subnormal", "huge", "tiny",
                                               "mixed", "nan", "inf"]
LAYOUTS = ["C", "F", "strided", "reversed", "readonly", "misaligned", "broadcast"]

# Largest and smallest magnitudes per float dtype: far out in the range, yet small
# enough that the singular values (<= 40 * max |a_ij|) and A - B still fit.
HUGE = {np.dtype(np.float64): 1e300, np.dtype(np.float32): 1e36, np.dtype(np.float16): 1e3}
TINY = {np.dtype(np.float64): 1e-300, np.dtype(np.float32): 1e-36,
        np.dtype(np.float16): 1e-4}
# Powers of two that scale an integer low-rank matrix exactly, far from 1.
EXACT_SCALES = {np.dtype(np.float64): [0, 0, -900, 900, -60, 60],
                np.dtype(np.float32): [0, 0, -100, 100, -60, 60],
                np.dtype(np.float16): [0, 0, -8, 4]}

EDGE_SHAPES = [(1, 1), (1, 7), (7, 1), (1, 40), (40, 1), (2, 40), (40, 2), (3, 33), (0, 0),
               (0, 5), (5, 0), (40, 40)]
MATRIX_SHAPES = st.one_of(st.sampled_from(EDGE_SHAPES),
                          st.tuples(st.integers(1, 10), st.integers(1, 10)),
                          st.tuples(st.integers(0, 40), st.integers(0, 40)))
STACK_SHAPES = st.tuples(st.lists(st.integers(0, 3), max_size=2).map(tuple),
                         st.one_of(st.sampled_from(EDGE_SHAPES[:9]),
                                   st.tuples(st.integers(0, 8), st.integers(0, 8)))
                         ).map(lambda t: t[0] + t[1])
ANY_NDIM_SHAPES = st.one_of(STACK_SHAPES, st.just(()), st.tuples(st.integers(0, 6)))
# Mostly stacks (a matrix being a stack of none), sometimes 0-D or 1-D.
MOSTLY_STACK_SHAPES = st.sampled_from([STACK_SHAPES] * 5 + [ANY_NDIM_SHAPES]).flatmap(
    lambda shapes: shapes)
# Mostly matrices, sometimes anything else (which 2-D-only functions reject).
MOSTLY_MATRIX_SHAPES = st.sampled_from([MATRIX_SHAPES] * 7 + [ANY_NDIM_SHAPES]).flatmap(
    lambda shapes: shapes)


def mostly(draw, valid, invalid, one_in=6):
    """A value from ``valid``, or one in ``one_in`` times from ``invalid``."""
    use_valid = draw(st.sampled_from([True] * (one_in - 1) + [False]))
    return draw(st.sampled_from(valid if use_valid else invalid))


class Case:
    """One generated array. ``parent`` is the buffer a strided/misaligned view lives
    in (checked unchanged too); ``rank_bound`` an upper bound on the exact rank of
    each matrix (None when unknown)."""

    def __init__(self, description, array, parent=None, rank_bound=None):
        self.description, self.array, self.parent = description, array, parent
        self.rank_bound = rank_bound
        self.snapshot = snapshot(array, parent)

    def __repr__(self):  # the array itself is printed by note() in call()
        return f"Case({self.description!r}, rank_bound={self.rank_bound})"

    def assert_unchanged(self):
        assert snapshot(self.array, self.parent) == self.snapshot, "the input was modified"


def snapshot(array, parent=None):
    """Everything a call must leave alone: dtype, shape, strides, flags and bytes."""
    flags = array.flags
    state = (array.dtype, array.shape, array.strides, flags.c_contiguous, flags.f_contiguous,
             flags.writeable, flags.aligned, flags.owndata, array.tobytes())
    return state + ((parent.tobytes(),) if parent is not None else ())


def _real_values(shape, dtype, kind, rng):
    """(values of the dtype, rank bound, the kind actually built)."""
    matrix = len(shape) >= 2
    p = min(shape[-2:]) if matrix else None
    if kind == "zeros":
        return np.zeros(shape, dtype), 0, kind
    if kind == "ones":
        return np.ones(shape, dtype), 1, kind
    if kind == "low_rank" and matrix:
        r = int(rng.integers(0, p + 1))
        if dtype.kind == "b":
            return np.ones(shape, dtype), 1, "ones"
        low, high = ((0, 2) if dtype == np.uint8 else (-1, 2) if dtype == np.int8
                     else (0, 4) if dtype.kind == "u" else (-3, 4))
        X = rng.integers(low, high, shape[:-1] + (r,))
        Y = rng.integers(low, high, shape[:-2] + (r, shape[-1]))
        values = (X @ Y).astype(dtype)  # small integers: exact in every dtype here
        if dtype.kind == "f":
            values *= dtype.type(2.0) ** int(rng.choice(EXACT_SCALES[dtype]))
        return values, r, kind
    if dtype.kind == "b":
        return rng.random(shape) < 0.5, None, "random"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if kind == "huge":
            return rng.choice(np.array([info.min, info.max, 0], dtype), size=shape), None, kind
        low = 0 if dtype.kind == "u" else -5
        return rng.integers(low, 6, shape).astype(dtype), None, "random"
    info = np.finfo(dtype)
    gaussian = np.array(rng.standard_normal(shape), dtype)
    if kind == "subnormal":
        return rng.integers(-3, 4, shape).astype(dtype) * info.smallest_subnormal, None, kind
    if kind == "huge":
        signs = rng.choice(np.array([-1.0, 1.0]), size=shape)
        return (signs * (0.5 + 0.5 * rng.random(shape)) * HUGE[dtype]).astype(dtype), None, kind
    if kind == "tiny":
        return gaussian * dtype.type(TINY[dtype]), None, kind
    specials = {"mixed": [0.0, info.smallest_subnormal, -info.smallest_subnormal, HUGE[dtype],
                          -HUGE[dtype], TINY[dtype]],
                "nan": [np.nan], "inf": [np.inf, -np.inf]}.get(kind)
    if specials is None or gaussian.size == 0:
        return gaussian, None, "gaussian"
    mask = np.asarray(rng.random(shape) < 0.3)
    mask.flat[int(rng.integers(0, gaussian.size))] = True  # at least one
    gaussian[mask] = rng.choice(np.array(specials, dtype), size=int(mask.sum()))
    return gaussian, None, kind


def _lay_out(values, layout):
    """(array with the values of ``values`` in ``layout``, the buffer it views or None)."""
    if layout == "F":
        return np.asfortranarray(values), None
    if layout == "readonly":
        out = values.copy()
        out.flags.writeable = False
        return out, None
    if layout in ("strided", "reversed"):
        # A view of every other element (of a buffer filled with another value), or
        # back to front.
        if layout == "strided":
            parent = np.empty(tuple(2 * s + 1 for s in values.shape), values.dtype)
            parent[...] = values.flat[0] if values.size else 0
            view = parent[tuple(slice(1, 1 + 2 * s, 2) for s in values.shape) + (...,)]
        else:
            parent = np.empty_like(values)
            view = parent[tuple(slice(None, None, -1) for _ in values.shape) + (...,)]
        view[...] = values
        return view, parent
    if layout == "misaligned" and values.dtype.kind != "O" and values.dtype.itemsize > 1:
        parent = np.zeros(values.nbytes + values.dtype.itemsize + 1, np.uint8)
        view = parent[1:1 + values.nbytes].view(values.dtype).reshape(values.shape)
        view[...] = values
        assert not view.flags.aligned or values.size == 0
        return view, parent
    return np.ascontiguousarray(values), None


@st.composite
def arrays(draw, shapes=MATRIX_SHAPES, dtypes=DTYPES, kinds=st.sampled_from(KINDS),
           layouts=st.sampled_from(LAYOUTS)):
    shape, dtype, kind, layout = draw(shapes), draw(dtypes), draw(kinds), draw(layouts)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    real = (dtype if dtype.kind in "biuf" else
            np.dtype(np.float32) if dtype == np.complex64 else np.dtype(np.float64))
    values, rank_bound, kind = _real_values(shape, real, kind, rng)
    if dtype.kind == "c":
        values = values + (1j * rng.standard_normal(shape) if rng.random() < 0.5 else 0j)
    values = np.asarray(values).astype(dtype)
    if layout == "broadcast" and values.ndim >= 2:
        values = np.broadcast_to(values[..., :1, :], shape)  # repeated rows: rank <= 1
        rank_bound = 1 if rank_bound is None else min(rank_bound, 1)
        array, parent = values, None
    else:
        layout = layout if layout != "broadcast" else "C"
        array, parent = _lay_out(values, layout)
    return Case(f"{kind} {dtype} {shape} {layout}", array, parent, rank_bound)


# --- what a call should do ----------------------------------------------------------


def converted(array):
    """The array as lowrank_core computes it (float32 or float64), or None for a dtype
    it rejects."""
    dtype = array.dtype
    if dtype.kind == "f" and dtype.itemsize in (2, 4):
        return array.astype(np.float32)
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize == 8):
        return array.astype(np.float64)
    return None


def input_errors(array, ndim=None, min_ndim=0):
    """The exception types the input alone calls for (empty when it is valid)."""
    errors = set()
    values = converted(array)
    if values is None:
        errors.add(TypeError)
    if (ndim is not None and array.ndim != ndim) or array.ndim < min_ndim:
        errors.add(ValueError)
    if values is not None and not np.isfinite(values).all():
        errors.add(ValueError)
    return errors


def narrowing_errors(array, dtype):
    """ValueError where a finite float64 array is converted to float32 (Bottleneck's
    dtype) and has values beyond float32's range, or all below its normal range (they
    would lose their digits or become 0)."""
    values = converted(array)
    if (values is None or values.dtype != np.float64 or np.dtype(dtype) != np.float32
            or not np.isfinite(values).all()):
        return set()
    largest = np.abs(values).max(initial=0)
    too_large = largest > float(np.finfo(np.float32).max)
    too_small = 0 < largest < float(np.finfo(np.float32).tiny)
    return {ValueError} if too_large or too_small else set()


def int_errors(value, minimum, maximum=math.inf):
    """What an integer argument calls for (bool is not an integer here)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return {TypeError}
    return {ValueError} if not minimum <= value <= maximum else set()


def k_errors(k, p):
    return int_errors(k, 1, p)


def call(case, errors, function):
    """Runs ``function``: it must raise one of ``errors`` if any, else succeed. Either
    way the input must be unchanged. Returns the result (None after an error)."""
    note(f"input: {case.description}\n{case.array!r}")
    result = None
    if errors:
        event(f"rejected with {'/'.join(sorted(e.__name__ for e in errors))}")
        with pytest.raises(tuple(errors)):
            function()
    else:
        event("accepted")
        result = function()
    case.assert_unchanged()
    return result


def eps(dtype):
    return float(np.finfo(dtype).eps)


def atol(dtype, count):
    """Absolute slack for results made of subnormals (rounded to the subnormal grid)."""
    return 64.0 * max(count, 1) * float(np.finfo(dtype).smallest_subnormal)


def reference_singular_values(values):
    """NumPy's singular values, in float64, of each matrix of a (..., m, n) array."""
    values = np.asarray(values, np.float64)
    if min(values.shape[-2:]) == 0:
        return np.zeros(values.shape[:-2] + (0,))
    return np.linalg.svd(values, compute_uv=False)


def spectral_error(values, U, S, Vh):
    """||A - U diag(S) Vh||_2 in float64, scaled so that nothing overflows."""
    A = np.asarray(values, np.float64)
    scale = float(np.abs(A).max(initial=0.0)) or 1.0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        product = (np.asarray(U, np.float64) * (np.asarray(S, np.float64) / scale)) @ \
            np.asarray(Vh, np.float64)
        return float(np.linalg.norm(A / scale - product, 2)) * scale


def assert_orthonormal(Q, dtype, rows=False):
    Q = np.asarray(Q, np.float64)
    gram = Q @ Q.T if rows else Q.T @ Q
    assert np.abs(gram - np.eye(gram.shape[0])).max(initial=0.0) <= 200 * eps(dtype), gram


def assert_svd_result(result, values, k, dtype):
    U, S, Vh = result
    m, n = values.shape
    assert U.shape == (m, k) and S.shape == (k,) and Vh.shape == (k, n)
    assert U.dtype == S.dtype == Vh.dtype == dtype
    assert np.isfinite(U).all() and np.isfinite(S).all() and np.isfinite(Vh).all()
    assert (S >= 0).all() and (np.diff(S) <= 0).all(), S
    assert_orthonormal(U, dtype)
    assert_orthonormal(Vh, dtype, rows=True)
    # The largest-magnitude entry of each column of U is positive.
    columns = np.arange(k)
    assert (U[np.abs(U).argmax(axis=0), columns] > 0).all()


# --- svd and randomized_svd ---------------------------------------------------------


def draw_k(draw, p):
    if draw(st.sampled_from([True] * 5 + [False])):  # mostly valid
        return draw(st.one_of(st.integers(1, max(p, 1)), st.sampled_from(
            [np.int64(1), np.uint8(1)])))
    return draw(st.sampled_from([0, -1, p + 1, 2**63, 2**70, 1.0, True, np.bool_(True),
                                 None, "1"]))


def draw_matrix_and_k(data):
    """A generated input case, its array, p = min(m, n) (0 unless 2-D or more) and k."""
    case = data.draw(arrays(shapes=MOSTLY_MATRIX_SHAPES), label="A")
    A = case.array
    p = min(A.shape[-2:]) if A.ndim >= 2 else 0
    k = draw_k(data.draw, p)
    note(f"k = {k!r}")
    return case, A, p, k


@given(data=st.data())
def test_svd(data):
    case, A, p, k = draw_matrix_and_k(data)
    errors = input_errors(A, ndim=2)
    if A.ndim == 2:
        errors |= {ValueError} if p == 0 else k_errors(k, p)
    result = call(case, errors, lambda: lc.svd(A, k))
    if result is None:
        return
    values = converted(A)
    dtype = values.dtype
    assert_svd_result(result, values, k, dtype)
    s = reference_singular_values(values)
    scale, slack = rtol_for(dtype) * s[0], atol(dtype, A.size)
    assert np.abs(result.S - s[:k]).max() <= 10 * scale + slack
    # Eckart-Young: the error of the truncated SVD is sigma_{k+1}, and no rank-k
    # matrix does better.
    optimum = s[k] if k < p else 0.0
    error = spectral_error(values, *result)
    assert optimum - 10 * scale - slack <= error <= optimum + 10 * scale + slack
    if case.rank_bound is not None and k >= case.rank_bound:
        event("svd: exact low rank reconstructed")
        assert error <= 10 * scale + slack


@st.composite
def sketches(draw, n, columns):
    """(sketch or None, the errors it calls for)."""
    choice = mostly(draw, ["none"] * 3 + ["valid"], ["wrong shape", "nan", "complex"], 10)
    if choice == "none":
        return None, set()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sketch = rng.standard_normal((n, columns)).astype(draw(st.sampled_from(
        [np.float64, np.float32])))
    if choice == "valid":
        return sketch, set()
    if choice == "wrong shape":
        return rng.standard_normal((n + 1, columns)), {ValueError}
    if choice == "nan":
        sketch.flat[0] = np.nan
        return sketch, {ValueError}
    return sketch.astype(np.complex128), {TypeError}


@given(data=st.data())
def test_randomized_svd(data):
    case, A, p, k = draw_matrix_and_k(data)
    oversamples = mostly(data.draw, [0, 1, 3, 10, 10**15], [-1, 1.5], one_in=10)
    power_iters = mostly(data.draw, [0, 1, 2, "auto"], [-1, "x", 2**63, None], one_in=10)
    seed = (data.draw(st.integers(0, 2**64 - 1)) if mostly(data.draw, [True], [False], 10)
            else data.draw(st.sampled_from([-1, 2**64, 1.5, "0"])))
    note(f"k = {k!r}, oversamples = {oversamples!r}, power_iters = {power_iters!r}, "
         f"seed = {seed!r}")
    errors = input_errors(A, ndim=2)
    if A.ndim == 2:
        errors |= {ValueError} if p == 0 else k_errors(k, p)
    errors |= int_errors(oversamples, 0)
    if isinstance(power_iters, str):
        errors |= set() if power_iters == "auto" else {ValueError}
    else:
        errors |= int_errors(power_iters, 0, 2**63 - 1)
    sketch = None
    if A.ndim == 2 and p > 0 and not k_errors(k, p) and not int_errors(oversamples, 0):
        columns = min(int(k) + oversamples, p)
        sketch, sketch_errors = data.draw(sketches(A.shape[-1], columns))
        errors |= sketch_errors
    if sketch is None:  # the seed is used (and checked) only without a sketch
        errors |= int_errors(seed, 0, 2**64 - 1)
    values = converted(A)
    result = call(case, errors, lambda: lc.randomized_svd(
        A, k, oversamples=oversamples, power_iters=power_iters, seed=seed, sketch=sketch))
    if result is None:
        return
    dtype = values.dtype
    assert_svd_result(result, values, k, dtype)
    s = reference_singular_values(values)
    scale, slack = rtol_for(dtype) * s[0], atol(dtype, A.size)
    # The singular values of Q^T A interlace those of A: never above them.
    assert (result.S <= s[:k] + 10 * scale + slack).all()
    optimum = s[k] if k < p else 0.0
    error = spectral_error(values, *result)
    assert error >= optimum - 10 * scale - slack
    if case.rank_bound is not None and k >= case.rank_bound:
        event("randomized_svd: exact low rank reconstructed")
        assert error <= 10 * scale + slack


# --- singular_values ----------------------------------------------------------------


@given(case=arrays(shapes=MOSTLY_STACK_SHAPES))
def test_singular_values(case):
    A = case.array
    result = call(case, input_errors(A, min_ndim=2), lambda: lc.singular_values(A))
    if result is None:
        return
    values = converted(A)
    dtype = values.dtype
    p = min(A.shape[-2:])
    assert result.shape == A.shape[:-2] + (p,) and result.dtype == dtype
    assert np.isfinite(result).all() and (result >= 0).all()
    assert (np.diff(result, axis=-1) <= 0).all()
    s = reference_singular_values(values)
    largest = s.max(axis=-1, keepdims=True, initial=0.0)
    assert (np.abs(result - s) <= 10 * rtol_for(dtype) * largest + atol(dtype, A.size)).all()


# --- rank ---------------------------------------------------------------------------

TOLERANCES = [None] * 6 + [0.0, 1e-3, 0.5, 1e300, -1.0, 1j, "x", np.float32(0.25)]
RTOLS = [None] * 6 + [0.0, 1e-6, 0.5, 1.0]


def expected_rank(values, tol, rtol, hermitian):
    """(ranks like NumPy's, whether each could round either way). Singular values
    in float64; the default rtol uses the eps of the computing dtype."""
    values64 = np.asarray(values, np.float64)
    m, n = values.shape[-2:]
    if min(m, n) == 0:
        shape = values.shape[:-2]
        return np.zeros(shape, np.int64), np.zeros(shape, bool)
    s = (np.abs(np.linalg.eigvalsh(values64, UPLO="L")) if hermitian
         else np.linalg.svd(values64, compute_uv=False))
    largest = s.max(axis=-1, keepdims=True)
    if tol is not None:
        threshold = np.asarray(tol, np.float64)[..., None]
    elif rtol is not None:
        threshold = largest * rtol
    else:
        threshold = largest * max(m, n) * eps(values.dtype)
    band = 8 * max(m, n) * eps(values.dtype) * largest + atol(values.dtype, values.size)
    ambiguous = (np.abs(s - threshold) <= band).any(axis=-1)
    return (s > threshold).sum(axis=-1), ambiguous


@given(case=arrays(shapes=MOSTLY_STACK_SHAPES), tol=st.sampled_from(TOLERANCES),
       rtol=st.sampled_from(RTOLS), hermitian=st.booleans())
def test_rank(case, tol, rtol, hermitian):
    A = case.array
    errors = input_errors(A)
    if tol is not None and rtol is not None:
        errors.add(ValueError)
    if A.ndim >= 2:
        if hermitian and A.shape[-1] != A.shape[-2]:
            errors.add(ValueError)
        if isinstance(tol, (complex, str)):
            errors.add(TypeError)
    result = call(case, errors, lambda: lc.rank(A, tol, rtol=rtol, hermitian=hermitian))
    if result is None:
        return
    values = converted(A)
    if A.ndim < 2:
        assert type(result) is int and result == int(bool(values.any()))
        return
    batch = A.shape[:-2]
    if batch == ():
        assert type(result) is int
    else:
        assert isinstance(result, np.ndarray) and result.dtype == np.int64
        assert result.shape == batch
    p = min(A.shape[-2:])
    assert (0 <= np.asarray(result)).all() and (np.asarray(result) <= p).all()
    want, ambiguous = expected_rank(values, tol, rtol, hermitian)
    mismatch = np.asarray(result) != want
    if mismatch.any():
        event("rank: differs from NumPy by rounding at the threshold")
    assert not (mismatch & ~ambiguous).any(), (result, want)
    if case.rank_bound is not None and tol is None and rtol is None and not hermitian:
        assert ((np.asarray(result) <= case.rank_bound) | ambiguous).all()


# --- erank, stable_rank, entropy_rank -----------------------------------------------


def reference_measures(values):
    """(stable, effective, entropy) ranks of each matrix from NumPy's float64
    singular values, normalised by the largest (scale-invariant)."""
    s = reference_singular_values(values)
    largest = s.max(axis=-1, keepdims=True, initial=0.0)

    def divide(a, b):  # 0 where b is 0: the zero matrix has every measure 0
        return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape)),
                         where=b > 0)

    v = divide(s, largest)
    total, squares = v.sum(axis=-1), (v * v).sum(axis=-1)
    probabilities = divide(v, total[..., None])
    logs = np.log(probabilities, out=np.zeros(probabilities.shape), where=probabilities > 0)
    entropy = np.where(total > 0, np.exp(-(probabilities * logs).sum(axis=-1)), 0.0)
    return squares, divide(total * total, squares), entropy


@given(case=arrays(shapes=MOSTLY_STACK_SHAPES))
def test_rank_measures(case):
    A = case.array
    errors = input_errors(A, min_ndim=2)
    stable = call(case, errors, lambda: lc.stable_rank(A))
    effective = call(case, errors, lambda: lc.erank(A))
    entropy = call(case, errors, lambda: lc.entropy_rank(A))
    if errors:
        return
    values = converted(A)
    batch, p = A.shape[:-2], min(A.shape[-2:])
    for got in (stable, effective, entropy):
        if batch == ():
            assert type(got) is float
        else:
            assert isinstance(got, np.ndarray) and got.dtype == np.float64
            assert got.shape == batch
    stable, effective, entropy = (np.asarray(x) for x in (stable, effective, entropy))
    assert np.isfinite(stable).all() and np.isfinite(effective).all()
    assert np.isfinite(entropy).all()
    slack = 1e-9
    assert (0 <= stable).all()
    assert (stable <= effective * (1 + slack)).all()
    assert (effective <= entropy * (1 + slack)).all()
    assert (entropy <= p * (1 + slack)).all()
    # Against the measures of NumPy's singular values. Each singular value may be
    # off by rounding relative to sigma_1 and, for subnormal input, by the spacing of
    # the subnormals (absolute); the measures move by at most ~p times that (times
    # |log p_i| <= ~40 for the entropy).
    want = reference_measures(values)
    zero = ~values.reshape(batch + (A.shape[-2] * A.shape[-1],)).any(axis=-1)
    largest = reference_singular_values(values).max(axis=-1, initial=0.0)
    relative_atol = np.divide(atol(values.dtype, A.size), largest,
                              out=np.zeros_like(largest), where=largest > 0)
    tolerance = 40 * p * (8 * p * eps(values.dtype) + relative_atol)
    for got, expected in zip((stable, effective, entropy), want):
        assert (got[zero] == 0.0).all()
        assert (np.abs(got - expected) <= tolerance).all(), (got, expected, tolerance)
    if case.rank_bound is not None:
        assert (entropy <= case.rank_bound * (1 + slack) + tolerance).all()


# --- relative_error -----------------------------------------------------------------


@given(data=st.data())
def test_relative_error(data):
    case = data.draw(arrays(shapes=MOSTLY_MATRIX_SHAPES), label="A")
    A = case.array
    same_shape = mostly(data.draw, [True], [False], one_in=10)
    other_shape = st.just(A.shape) if same_shape else MATRIX_SHAPES
    other = data.draw(arrays(shapes=other_shape), label="B")
    B = other.array
    order = mostly(data.draw, [2, "fro", 2.0, np.int64(2)], [1, "nuc", True, None], 10)
    note(f"ord = {order!r}")
    errors = input_errors(A, ndim=2) | input_errors(B, ndim=2)
    if A.ndim == B.ndim == 2 and A.shape != B.shape:
        errors.add(ValueError)
    if not (order == "fro" or (not isinstance(order, (str, bool)) and order == 2)):
        errors.add(ValueError)
    result = call(case, errors, lambda: lc.relative_error(A, B, order))
    other.assert_unchanged()
    if result is None:
        return
    assert type(result) is float and result >= 0
    a, b = converted(A), converted(B)
    dtype = np.result_type(a.dtype, b.dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if not a64.any():
        assert result == (0.0 if not b64.any() else np.inf)
        return
    scale = max(float(np.abs(a64).max()), float(np.abs(b64).max()))
    norm = "fro" if order == "fro" else 2
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a_norm = float(np.linalg.norm(a64 / scale, norm))
        difference = float(np.linalg.norm(a64 / scale - b64 / scale, norm))
        b_norm = float(np.linalg.norm(b64 / scale, norm))
    if a_norm == 0 or (difference > 0 and math.log(difference) - math.log(a_norm) >
                       math.log(float(np.finfo(np.float64).max))):
        # ||A|| underflowed after scaling, or the ratio is past float64's range
        # (A subnormal, B of order 1): inf is the correctly rounded answer.
        event("relative_error: the ratio overflows")
        assert result == np.inf or a_norm == 0
        return
    assert np.isfinite(result)
    want = difference / a_norm
    # Rounding of ||A - B|| (relative to ||A|| + ||B||) and of ||A||, and for subnormal
    # input the absolute spacing of the subnormals in both.
    tolerance = 10 * rtol_for(dtype) * (1 + b_norm / a_norm + want) + atol(dtype, A.size) * (
        1 + want) / (a_norm * scale)
    assert abs(result - want) <= tolerance, (result, want)


# --- Bottleneck ---------------------------------------------------------------------


@given(data=st.data())
def test_bottleneck(data):
    case = data.draw(arrays(shapes=MOSTLY_MATRIX_SHAPES), label="A")
    A = case.array
    p = min(A.shape) if A.ndim == 2 else 0
    rank = mostly(data.draw, [1, 1, 2, 3], [0, 41, 2.0], one_in=10)
    layers = None
    if isinstance(rank, int) and rank >= 1 and data.draw(st.booleans()):
        layers = data.draw(st.sampled_from([(rank,), (rank + 3, rank), (rank, rank + 1),
                                            (rank + 2, rank, rank + 5)]))
    options = dict(
        layers=layers, bias=data.draw(st.booleans()),
        init=data.draw(st.sampled_from(["he_normal", "glorot_uniform", "orthogonal"])),
        optimizer=data.draw(st.sampled_from(["sgd", "momentum", "adam"])),
        epochs=1, samples=data.draw(st.sampled_from([1, 16])),
        batch_size=data.draw(st.sampled_from([1, 8, 32])),
        data=data.draw(st.sampled_from(["fixed", "stream", "exact"])),
        dtype=data.draw(st.sampled_from(["float32", "float64"])),
        seed=data.draw(st.integers(0, 2**64 - 1)))
    note(f"Bottleneck({rank!r}, **{options!r})")
    if not isinstance(rank, int):
        with pytest.raises(TypeError):
            lc.Bottleneck(rank, **options)
        return
    if rank < 1:
        with pytest.raises(ValueError):
            lc.Bottleneck(rank, **options)
        return
    net = lc.Bottleneck(rank, **options)
    dtype = np.dtype(options["dtype"])
    errors = input_errors(A, ndim=2)
    if A.ndim == 2 and (p == 0 or rank > p):
        errors.add(ValueError)
    errors |= narrowing_errors(A, dtype)
    try:
        if call(case, errors, lambda: net.fit(A)) is None:
            return
    except ValueError as error:
        # Training may diverge for an lr too large for A and the optimizer: then fit
        # says so and leaves the network unfitted, and the plain-NumPy reference,
        # trained alike, diverges too.
        if errors or "training diverged" not in str(error):
            raise
        event("Bottleneck.fit: training diverged")
        case.assert_unchanged()
        with pytest.raises(lc.NotFittedError):
            net.matrix()
        with np.errstate(all="ignore"):
            W_reference = reference.Bottleneck(rank, **options).fit(A).matrix()
        assert not np.isfinite(W_reference).all()
        return
    m, n = A.shape
    W = net.matrix()
    L, R = net.factors()
    assert W.shape == (m, n) and L.shape == (m, rank) and R.shape == (rank, n)
    assert W.dtype == L.dtype == R.dtype == dtype
    assert np.isfinite(W).all() and np.isfinite(L).all() and np.isfinite(R).all()
    # Rounding bounds: the network multiplies its layers one by one, so its errors
    # scale with s * prod ||W_l|| (s the training scale), not with ||W||.
    # A result rounded to the subnormal grid after layer l is off by up to ~atol,
    # amplified by s * prod_{j > l} ||W_j|| (the sum of these is `gains`).
    weights, biases = net._network.parameters()
    training_scale = float(net._network.scale)
    map_bound, bias_bound, gains = 1.0, 0.0, 0.0
    for weight, bias in zip(weights, biases):
        norm = float(np.linalg.norm(weight.astype(np.float64)))
        map_bound, bias_bound = map_bound * norm, bias_bound * norm + float(
            np.linalg.norm(bias.astype(np.float64)))
        gains = gains * norm + 1.0
    map_bound, bias_bound = map_bound * training_scale, bias_bound * training_scale
    gains *= training_scale
    rounding = 10 * eps(dtype) * sum(net._network.widths)
    W64 = W.astype(np.float64)
    assert np.abs(L.astype(np.float64) @ R.astype(np.float64) - W64).max() <= \
        rounding * map_bound + atol(dtype, n)
    assert 0 <= net.rank_ <= rank and net.rank_ <= p
    S = net.singular_values_
    assert S.shape == (rank,) and (S >= 0).all() and (np.diff(S) <= 0).all()
    assert np.isfinite(S).all()
    history = net.loss_history_
    assert history.shape == (1,)
    # Losses are in the units of A squared: they may overflow to inf, never NaN.
    assert not np.isnan(history).any() and (history >= 0).all()
    intercept = net.intercept_
    assert intercept.shape == (m,) and np.isfinite(intercept).all()
    if not options["bias"]:
        assert not intercept.any()

    # predict on a generated batch of the right width, or the wrong width.
    width = mostly(data.draw, [n], [n + 1], one_in=10)
    X_case = data.draw(arrays(shapes=st.tuples(st.integers(0, 5), st.just(width)),
                              kinds=st.sampled_from(["gaussian", "zeros", "subnormal",
                                                     "low_rank", "nan"])), label="X")
    X = X_case.array
    x_errors = input_errors(X, ndim=2)  # NaN/Inf in X included
    x_errors |= narrowing_errors(X, dtype)
    if width != n:
        x_errors.add(ValueError)
    prediction = call(X_case, x_errors, lambda: net.predict(X))
    if prediction is None:
        return
    x = np.asarray(converted(X), np.float64)
    assert prediction.shape == (X.shape[0], m) and prediction.dtype == dtype
    with np.errstate(over="ignore"):  # an overflowing bound means: not checked, below
        row_norms = np.abs(x).max(axis=1, keepdims=True, initial=0) * math.sqrt(n)  # >= ||x||
        bound = row_norms * map_bound + bias_bound
    if not (bound < float(np.finfo(dtype).max) / 16).all():
        event("Bottleneck.predict: the output may overflow (not checked)")
        return
    assert np.isfinite(prediction).all()
    error = np.abs(prediction.astype(np.float64) - x @ W64.T - intercept.astype(np.float64))
    # W64 itself is rounded: to the subnormal grid too when the map is that small.
    subnormal = (row_norms + 1 + gains * max(net._network.widths)) * atol(dtype, n)
    assert (error <= rounding * bound + subnormal).all()


# --- every real dtype and layout accepted; NaN/Inf/complex rejected in each --------

ALL_CALLS = {
    "svd": lambda A: lc.svd(A, 1),
    "randomized_svd": lambda A: lc.randomized_svd(A, 1, seed=0),
    "singular_values": lc.singular_values,
    "rank": lc.rank,
    "erank": lc.erank,
    "stable_rank": lc.stable_rank,
    "entropy_rank": lc.entropy_rank,
    "relative_error": lambda A: lc.relative_error(A, np.ones(A.shape)),
    "relative_error B": lambda A: lc.relative_error(np.ones(A.shape), A),
    "Bottleneck.fit": lambda A: lc.Bottleneck(1, epochs=1, samples=8, seed=0).fit(A),
    "Bottleneck.predict": lambda A: lc.Bottleneck(1, epochs=1, samples=8, seed=0).fit(
        np.ones(A.shape)).predict(A),
}


def laid_out(values, layout):
    if layout == "broadcast":
        return Case(f"{values.dtype} broadcast", np.broadcast_to(values[:1], values.shape))
    array, parent = _lay_out(values, layout)
    return Case(f"{values.dtype} {layout}", array, parent)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.dtype(d) for d in ACCEPTED_DTYPES], ids=str)
def test_every_real_dtype_and_layout_is_accepted(dtype, layout):
    rng = np.random.default_rng(0)
    for shape in [(6, 4), (1, 5), (5, 1)]:
        case = laid_out(_real_values(shape, dtype, "gaussian", rng)[0], layout)
        for name, function in ALL_CALLS.items():
            function(case.array)  # never rejected: any exception fails the test
            case.assert_unchanged()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_nan_inf_complex_and_objects_are_rejected_in_every_layout(layout):
    rng = np.random.default_rng(1)
    bad = []
    for dtype, value in [(np.float64, np.nan), (np.float32, np.inf), (np.float16, -np.inf)]:
        values = np.array(rng.standard_normal((5, 4)), dtype)
        values[0, 1] = value  # in the first row, so the broadcast layout keeps it
        bad.append((values, ValueError, "contains NaN or Inf"))
    for dtype, message in [(np.complex128, "is complex"), (np.complex64, "is complex"),
                           (object, "has dtype object"), ("U8", "has dtype <U8")]:
        bad.append((rng.standard_normal((5, 4)).astype(dtype), TypeError, message))
    for values, error, message in bad:
        case = laid_out(values, layout)
        for name, function in ALL_CALLS.items():
            if name == "Bottleneck.predict" and error is ValueError:
                continue  # predict does not check X for NaN/Inf: they propagate
            with pytest.raises(error, match=message):
                function(case.array)
            case.assert_unchanged()


# --- bugs these tests found in the C++ core, fixed: the minimal reproducers ----------


def test_randomized_svd_power_iterations_survive_huge_finite_input():
    A = np.full((3, 3), 1e20, np.float32)
    result = lc.randomized_svd(A, 1, power_iters=1, seed=0)
    assert np.isfinite(result.S).all()


def test_randomized_svd_basis_survives_gram_overflow():
    rng = np.random.default_rng(0)
    A = (np.outer(rng.standard_normal(40), rng.standard_normal(10)) * 1e20).astype(np.float32)
    result = lc.randomized_svd(A, 1, oversamples=0, power_iters=0, seed=0)
    error = spectral_error(A, *result) / float(np.linalg.norm(A.astype(np.float64), 2))
    assert error < 1e-4, error


def test_randomized_svd_power_iterations_survive_tiny_input():
    A = np.outer([1.0, 2.0, 3.0], [0.0, 1.0, 2.0]) * 1e-200
    result = lc.randomized_svd(A, 1, oversamples=0, power_iters=1, seed=0)
    assert result.S[0] == pytest.approx(np.linalg.norm(A, 2), rel=1e-12, abs=0), result.S


def test_bottleneck_map_survives_a_training_scale_past_float32():
    A = np.array([[5.2048676e35]], np.float32)
    net = lc.Bottleneck(1, bias=False, optimizer="sgd", epochs=1, samples=1, batch_size=1,
                        seed=268).fit(A)
    assert np.isfinite(net.matrix()).all() and np.isfinite(net.factors()[0]).all()


def test_bottleneck_loss_of_huge_input_is_not_nan():
    net = lc.Bottleneck(1, bias=False, optimizer="sgd", epochs=1, samples=1, batch_size=1,
                        dtype="float64", seed=119).fit(np.array([[1e200]]))
    assert not np.isnan(net.loss_history_).any(), net.loss_history_


def test_relative_error_of_finite_input_whose_difference_overflows():
    A = np.full((2, 2), 1e308)
    assert lc.relative_error(A, -A) == pytest.approx(2.0)


# --- Python-side validation fixed alongside these tests ----------------------------


def test_narrowing_to_float32_past_its_range_names_the_argument():
    A = np.full((3, 3), 1e300)
    with pytest.raises(ValueError, match="A has values too large for float32"):
        lc.Bottleneck(1, epochs=1, samples=4, seed=0).fit(A)
    net = lc.Bottleneck(1, epochs=1, samples=4, seed=0).fit(np.eye(3))
    with pytest.raises(ValueError, match="X has values too large for float32"):
        net.predict(np.full((2, 3), 1e300))
    with pytest.raises(ValueError, match="sketch has values too large for float32"):
        lc.randomized_svd(np.eye(3, dtype=np.float32), 1, oversamples=0,
                          sketch=np.full((3, 1), 1e300))


@pytest.mark.parametrize("call, name", [
    (lambda: lc.randomized_svd(np.eye(3), 1, power_iters=2**63, seed=0), "power_iters"),
    (lambda: lc.Bottleneck(1, epochs=2**63), "epochs"),
    (lambda: lc.Bottleneck(1, samples=2**64), "samples"),
    (lambda: lc.Bottleneck(1, batch_size=2**63), "batch_size"),
    (lambda: lc.Bottleneck(1, layers=(2**63, 1)), r"layers\[0\]"),
])
def test_counts_beyond_int64_name_the_argument(call, name):
    # These reached the binding and failed with pybind11's "incompatible function
    # arguments" TypeError, which names no argument.
    with pytest.raises(ValueError, match=f"{name} must be <= {2**63 - 1}"):
        call()


@pytest.mark.parametrize("array, name", [
    (np.ones((3, 3), dtype=object), "A"),
    (np.array([["1", "2"], ["3", "4"]]), "A"),
])
def test_fit_and_predict_reject_object_and_string_arrays(array, name):
    # With a dtype to convert to, the input's own dtype went unchecked: astype
    # parsed object and string arrays into numbers.
    with pytest.raises(TypeError, match=f"{name} has dtype"):
        lc.Bottleneck(1, epochs=1, samples=4, seed=0).fit(array)
    net = lc.Bottleneck(1, epochs=1, samples=4, seed=0).fit(np.eye(array.shape[1]))
    with pytest.raises(TypeError, match="X has dtype"):
        net.predict(array)
    with pytest.raises(TypeError, match="sketch has dtype"):
        lc.randomized_svd(np.eye(array.shape[1]), 1, oversamples=0, sketch=array[:, :1])


@pytest.mark.parametrize("tol", [0.5 + 1j, np.array([0.5 + 1j]), "0.5", np.array([object()])])
def test_rank_rejects_a_threshold_that_is_not_real(tol):
    # A complex tol lost its imaginary part with only a ComplexWarning.
    with pytest.raises(TypeError, match="tol must be real"):
        lc.rank(np.eye(3), tol)
    with pytest.raises(TypeError, match="rtol must be real"):
        lc.rank(np.eye(3), rtol=tol)
