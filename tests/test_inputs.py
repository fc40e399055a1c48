"""Bad input gets a clear ValueError/TypeError naming the argument; inputs are
never modified; every layout and integer/bool dtype is accepted."""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import reference

IMPLEMENTATIONS = [lc, reference]
MATRIX_FUNCTIONS = {
    "svd": lambda mod, A: mod.svd(A, 1),
    "randomized_svd": lambda mod, A: mod.randomized_svd(A, 1, seed=0),
    "singular_values": lambda mod, A: mod.singular_values(A),
    "rank": lambda mod, A: mod.rank(A),
    "erank": lambda mod, A: mod.erank(A),
    "stable_rank": lambda mod, A: mod.stable_rank(A),
    "entropy_rank": lambda mod, A: mod.entropy_rank(A),
    "relative_error": lambda mod, A: mod.relative_error(A, np.ones_like(A)),
}


def nan_matrix():
    A = np.ones((4, 3))
    A[2, 1] = np.nan
    return A


@pytest.mark.parametrize("mod", IMPLEMENTATIONS, ids=["core", "reference"])
@pytest.mark.parametrize("name", list(MATRIX_FUNCTIONS))
def test_nan_inf_and_complex_are_rejected(name, mod):
    call = MATRIX_FUNCTIONS[name]
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(mod, nan_matrix())
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(mod, np.full((3, 3), np.inf))
    with pytest.raises(TypeError, match="A is complex"):
        call(mod, np.ones((3, 3), dtype=np.complex128))
    with pytest.raises(TypeError, match="A has dtype"):
        call(mod, np.array([["a", "b"], ["c", "d"]]))


@pytest.mark.parametrize("mod", IMPLEMENTATIONS, ids=["core", "reference"])
def test_bad_arguments_name_the_argument(mod):
    A = np.ones((5, 4))
    cases = [
        (ValueError, "k must be >= 1", lambda: mod.svd(A, 0)),
        (ValueError, "k must be <= 4", lambda: mod.svd(A, 5)),
        (TypeError, "k must be an integer", lambda: mod.svd(A, 2.0)),
        (TypeError, "k must be an integer", lambda: mod.svd(A, True)),
        (ValueError, "A must be 2-D", lambda: mod.svd(np.ones(3), 1)),
        (ValueError, "A must be 2-D", lambda: mod.randomized_svd(np.ones((2, 3, 3)), 1)),
        (ValueError, "A is empty", lambda: mod.svd(np.ones((0, 3)), 1)),
        (ValueError, "k must be <= 4", lambda: mod.randomized_svd(A, 9)),
        (ValueError, "oversamples must be >= 0", lambda: mod.randomized_svd(A, 1, oversamples=-1)),
        (ValueError, "power_iters must be 'auto'", lambda: mod.randomized_svd(A, 1, power_iters="x")),
        (ValueError, "power_iters must be >= 0", lambda: mod.randomized_svd(A, 1, power_iters=-2)),
        (ValueError, "seed must be >= 0", lambda: mod.randomized_svd(A, 1, seed=-1)),
        (ValueError, "seed must be <=", lambda: mod.randomized_svd(A, 1, seed=2**64)),
        (TypeError, "seed must be an integer", lambda: mod.randomized_svd(A, 1, seed=1.5)),
        (ValueError, "sketch must have shape", lambda: mod.randomized_svd(A, 1, sketch=np.ones((4, 3)))),
        (ValueError, "sketch must be 2-D", lambda: mod.randomized_svd(A, 1, sketch=np.ones(4))),
        (TypeError, "sketch is complex",
         lambda: mod.randomized_svd(A, 1, sketch=np.ones((4, 4), complex))),
        (ValueError, "A must have at least 2 dimensions", lambda: mod.singular_values(np.ones(3))),
        (ValueError, "A must have at least 2 dimensions", lambda: mod.erank(np.ones(3))),
        (ValueError, "A must be square", lambda: mod.rank(np.ones((3, 4)), hermitian=True)),
        (ValueError, "tol and rtol", lambda: mod.rank(A, 1.0, rtol=0.1)),
        (ValueError, "ord must be 2 or 'fro'", lambda: mod.relative_error(A, A, 1)),
        (ValueError, "ord must be 2 or 'fro'", lambda: mod.relative_error(A, A, "nuc")),
        (ValueError, "B must have the shape of A", lambda: mod.relative_error(A, A.T)),
        (ValueError, "B contains NaN or Inf", lambda: mod.relative_error(A, np.full_like(A, np.nan))),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()


def test_sketch_nan_is_rejected():
    with pytest.raises(ValueError, match="sketch contains NaN or Inf"):
        lc.randomized_svd(np.ones((4, 4)), 1, sketch=np.full((4, 4), np.nan))


@pytest.mark.parametrize("name", list(MATRIX_FUNCTIONS))
def test_inputs_are_never_modified(name):
    rng = np.random.default_rng(0)
    for A in (rng.standard_normal((7, 5)), np.asfortranarray(rng.standard_normal((5, 7))),
              rng.standard_normal((9, 8))[::2, 1::2], rng.standard_normal((6, 6)).astype(np.float32)):
        before = A.copy()
        flags = (A.flags.c_contiguous, A.flags.f_contiguous)
        MATRIX_FUNCTIONS[name](lc, A)
        assert np.array_equal(A, before)
        assert (A.flags.c_contiguous, A.flags.f_contiguous) == flags
    sketch = rng.standard_normal((5, 5))
    kept = sketch.copy()
    lc.randomized_svd(rng.standard_normal((7, 5)), 2, sketch=sketch, oversamples=3)
    assert np.array_equal(sketch, kept)


def test_lists_ints_and_bools_become_float64():
    assert lc.svd([[1, 2], [3, 4]], 1).S.dtype == np.float64
    assert lc.singular_values(np.eye(3, dtype=bool)).dtype == np.float64
    assert lc.randomized_svd(np.arange(12).reshape(4, 3), 1, seed=0).U.dtype == np.float64
    assert lc.svd(np.eye(3, dtype=np.float16), 1).S.dtype == np.float32


@pytest.mark.parametrize("name", ["singular_values", "rank", "erank", "stable_rank",
                                  "entropy_rank"])
def test_nan_in_one_matrix_of_a_stack_is_rejected(name):
    # Stacks are split across threads; an error in any matrix reaches the caller.
    stack = np.stack([np.ones((4, 3))] * 5 + [nan_matrix()] + [np.ones((4, 3))] * 2)
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        MATRIX_FUNCTIONS[name](lc, stack)


def misaligned(A):
    """A copy of A in a view at an odd byte offset (not aligned for its dtype)."""
    raw = np.zeros(A.nbytes + 1, dtype=np.uint8)
    view = raw[1:].view(A.dtype).reshape(A.shape)
    view[...] = A
    assert not view.flags.aligned
    return view


@pytest.mark.parametrize("name", list(MATRIX_FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_views_are_read_correctly(name, dtype):
    # The core reads T directly; a view at an odd byte offset is copied first (found
    # by UBSan under the fuzzer: tools/fuzz_bindings.py).
    A = np.random.default_rng(1).standard_normal((7, 5)).astype(dtype)
    odd = misaligned(A)
    got, want = MATRIX_FUNCTIONS[name](lc, odd), MATRIX_FUNCTIONS[name](lc, A)
    if isinstance(got, lc.SVDResult):
        got, want = got.to_dense(), want.to_dense()
    assert np.array_equal(np.asarray(got), np.asarray(want))
    assert np.array_equal(odd, A)


def test_the_bindings_refuse_misaligned_views():
    odd = misaligned(np.ones((4, 3)))
    with pytest.raises(ValueError, match="A is not aligned"):
        lc._core.svd(odd, 1)
    with pytest.raises(ValueError, match="A is not aligned"):
        lc._core.singular_values(odd.reshape(1, 4, 3))


class _Unreadable:
    """Stands in for a torch bfloat16 tensor: np.asarray of it raises TypeError."""

    def __array__(self, *args, **kwargs):
        raise TypeError("Got unsupported ScalarType BFloat16")


@pytest.mark.parametrize("mod", IMPLEMENTATIONS, ids=["core", "reference"])
@pytest.mark.parametrize("name", list(MATRIX_FUNCTIONS))
def test_masked_arrays_are_refused_not_read_without_their_mask(name, mod):
    A = np.ma.masked_array(np.ones((4, 3)), mask=np.eye(4, 3, dtype=bool))
    with pytest.raises(TypeError, match=r"A is a masked array.*A\.filled"):
        MATRIX_FUNCTIONS[name](mod, A)


@pytest.mark.parametrize("name", [n for n in MATRIX_FUNCTIONS if n != "relative_error"])
def test_an_array_numpy_cannot_read_gets_a_message_naming_a(name):
    with pytest.raises(TypeError, match="A cannot be read as a NumPy array.*BFloat16"):
        MATRIX_FUNCTIONS[name](lc, _Unreadable())
    with pytest.raises(TypeError, match="B cannot be read as a NumPy array"):
        lc.relative_error(np.ones((2, 2)), _Unreadable())
    with pytest.raises(TypeError, match="A cannot be read as a NumPy array"):
        lc.Bottleneck(1).fit(_Unreadable())


# --- NumPy or CuPy --------------------------------------------------------------------
# On either device (the xp fixture): CuPy input runs on the CUDA core and must give
# the CPU core's answers, in arrays of the input's kind.


def _relative_error_to_ones(A):
    with np.errstate(invalid="ignore"):  # Inf * 0 warns in NumPy: B is NaN there too
        B = A * 0 + 1  # on A's device
    return lc.relative_error(A, B)


ROUTINES = {
    "svd": lambda A: lc.svd(A, 1),
    "randomized_svd": lambda A: lc.randomized_svd(A, 1, seed=0),
    "singular_values": lambda A: lc.singular_values(A),
    "rank": lambda A: lc.rank(A),
    "erank": lambda A: lc.erank(A),
    "stable_rank": lambda A: lc.stable_rank(A),
    "entropy_rank": lambda A: lc.entropy_rank(A),
    "relative_error": _relative_error_to_ones,
}


@pytest.mark.parametrize("name", list(ROUTINES))
def test_bad_inputs_are_the_cpu_errors(xp, name):
    call = ROUTINES[name]
    A = xp.ones((4, 3))
    A[2, 1] = xp.nan
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(A)
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(xp.full((3, 3), xp.inf))
    with pytest.raises(TypeError, match="A is complex"):
        call(xp.ones((3, 3), dtype=xp.complex128))
    # Integer and bool input become float64, computed on the input's device.
    out = call(xp.arange(12).reshape(4, 3))
    leaves = out if isinstance(out, tuple) else (out,)
    for leaf in leaves:
        assert isinstance(leaf, (int, float, xp.ndarray))
        if isinstance(leaf, xp.ndarray):
            assert leaf.dtype in (np.float64, np.int64)


def test_argument_errors_match_cpu(xp):
    A = xp.ones((5, 4))
    for bad_k in (0, 5):
        with pytest.raises(ValueError, match="k must be"):
            lc.svd(A, bad_k)
        with pytest.raises(ValueError, match="k must be"):
            lc.randomized_svd(A, bad_k)
    with pytest.raises(ValueError, match="must be 2-D"):
        lc.svd(xp.ones(3), 1)
    with pytest.raises(ValueError, match="shape"):
        lc.relative_error(A, xp.ones((4, 5)))
    with pytest.raises(ValueError, match="sketch must have shape"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=xp.ones((4, 3)))
    with pytest.raises(ValueError, match="tol and rtol"):
        lc.rank(A, tol=1.0, rtol=1.0)
    bad_sketch = xp.ones((4, 2))
    bad_sketch[3, 1] = xp.inf
    with pytest.raises(ValueError, match="sketch contains NaN or Inf"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=bad_sketch)
    with pytest.raises(ValueError, match="B contains NaN or Inf"):
        lc.relative_error(A, A * xp.nan)
