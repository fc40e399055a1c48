"""randomized_svd(A, tol=...): the rank found against Eckart–Young's optimum, the
error it reports against the true one, the core against the reference, and the
argument rules; rank(method="randomized") against numpy.linalg.matrix_rank."""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core
from lowrank_core import reference as ref

BLOCK = 16  # the default block_size: the stated margin of the rank over the optimum


def with_spectrum(m, n, s, seed=0, dtype=np.float64):
    """U diag(s) V^T with random orthonormal U (m x p), V (n x p), p = len(s)."""
    rng = np.random.default_rng(seed)
    p = len(s)
    U, _ = np.linalg.qr(rng.standard_normal((m, p)))
    V, _ = np.linalg.qr(rng.standard_normal((n, p)))
    return ((U * s) @ V.T).astype(dtype)


def optimal_rank(s, tol, ord):
    """Eckart–Young: the smallest r with ||A - A_r|| <= tol ||A|| in the norm."""
    s = np.asarray(s, dtype=np.float64)
    if ord == "fro":
        tail = np.sqrt(np.append(np.cumsum((s**2)[::-1])[::-1], 0.0))
        ok = np.nonzero(tail[1:] <= tol * tail[0])[0]
    else:
        ok = np.nonzero(np.append(s[1:], 0.0) <= tol * s[0])[0]
    return int(ok[0]) + 1


def true_error(A, result, ord):
    R = A.astype(np.float64) - result.to_dense().astype(np.float64)
    return np.linalg.norm(R, "fro" if ord == "fro" else 2)


SPECTRA = {
    "fast": lambda p: 0.8 ** np.arange(p),
    "1/i": lambda p: 1.0 / np.arange(1, p + 1),
    "rank 20 + 1e-3": lambda p: np.concatenate([np.linspace(1, 0.5, 20), np.full(p - 20, 1e-3)]),
    "rank 20 + 1e-8": lambda p: np.concatenate([np.linspace(1, 0.5, 20), np.full(p - 20, 1e-8)]),
}


@pytest.mark.parametrize("ord", ["fro", 2])
@pytest.mark.parametrize("spectrum", list(SPECTRA))
def test_rank_found_is_the_optimal_one_within_a_block(spectrum, ord, float_dtype):
    m, n = 400, 160
    s = SPECTRA[spectrum](n)
    A = with_spectrum(m, n, s, dtype=float_dtype)
    tols = (1e-1, 1e-2, 1e-3) if float_dtype == np.float32 else (1e-1, 1e-2, 1e-4, 1e-6)
    for tol in tols:
        got = lc.randomized_svd(A, tol=tol, ord=ord, seed=5)
        best = optimal_rank(s, tol, ord)
        assert got.rank == len(got.S) == got.U.shape[1] == got.Vh.shape[0]
        if not got.tol_reached:  # only where float32 cannot resolve tol
            assert float_dtype == np.float32 and tol <= 1e-3, (tol, got)
            continue
        near = np.any((s > 0.9 * tol * s[0]) & (s <= tol * s[0]))
        if ord == 2 and near:
            # A spectral estimate is accepted only at 0.95 tol (it approaches from
            # below): singular values in (0.95 tol, tol] sigma_1 may be kept too.
            assert got.rank >= best
        else:
            assert best <= got.rank <= best + BLOCK, (tol, best, got)
        error = true_error(A, got, ord)
        norm = np.linalg.norm(A.astype(np.float64), "fro" if ord == "fro" else 2)
        slack = 1e-5 if float_dtype == np.float32 else 1e-9
        assert error <= tol * norm * (1 + 1e-3) + slack * norm, (tol, error / norm)
        if ord == "fro":  # the reported error is the true one, to rounding
            assert got.error == pytest.approx(error, rel=1e-3, abs=slack * norm)
        else:  # an estimate from below, with a bound above
            assert got.error <= error * (1 + 1e-6) + slack * norm
            assert got.error_bound >= error


def test_fixed_rank_calls_are_unchanged():
    A = with_spectrum(60, 40, 1.0 / np.arange(1, 41))
    got = lc.randomized_svd(A, 5, seed=1)
    assert type(got) is lc.SVDResult
    U, S, Vh = lc.randomized_svd(A, 5, seed=1)
    np.testing.assert_array_equal(S, got.S)


def test_result_unpacks_and_carries_what_was_found():
    A = with_spectrum(80, 50, 0.5 ** np.arange(50))
    got = lc.randomized_svd(A, tol=1e-3, seed=0)
    U, S, Vh = got
    assert isinstance(got, lc.SVDResult) and isinstance(got, lc.ToleranceSVDResult)
    assert (U.shape, S.shape, Vh.shape) == ((80, got.rank), (got.rank,), (got.rank, 50))
    assert got.tol == 1e-3 and got.ord == "fro" and got.tol_reached
    assert got.basis_columns >= got.rank
    assert got.norm == pytest.approx(np.linalg.norm(A))
    np.testing.assert_allclose(U.T @ U, np.eye(got.rank), atol=1e-12)
    assert np.all(U[np.argmax(np.abs(U), axis=0), np.arange(got.rank)] > 0)  # sign rule


def test_results_pickle_with_what_they_found():
    import pickle

    A = with_spectrum(40, 30, 0.5 ** np.arange(30))
    got = lc.randomized_svd(A, tol=1e-3, seed=0)
    back = pickle.loads(pickle.dumps(got))
    assert type(back) is lc.ToleranceSVDResult and back.rank == got.rank
    assert back.error == got.error and back.tol_reached
    np.testing.assert_array_equal(back.S, got.S)
    e = lc.estimate_error(A, got, seed=0)
    again = pickle.loads(pickle.dumps(e))
    assert again == e and again.bound == e.bound and again.probes == 10


def test_k_caps_the_rank_and_the_result_says_tol_was_not_reached():
    s = 1.0 / np.arange(1, 61)
    A = with_spectrum(120, 60, s)
    got = lc.randomized_svd(A, 5, tol=1e-6, seed=0)
    assert got.rank == 5 and not got.tol_reached
    assert got.error == pytest.approx(true_error(A, got, "fro"), rel=1e-8)
    spectral = lc.randomized_svd(A, 5, tol=1e-6, ord=2, seed=0)
    assert spectral.rank == 5 and not spectral.tol_reached


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("ord", ["fro", 2])
def test_core_matches_the_reference(layout, ord, float_dtype):
    s = 0.7 ** np.arange(70)
    A = np.asarray(with_spectrum(200, 70, s, seed=3, dtype=float_dtype), order=layout)
    tol = 1e-2 if float_dtype == np.float32 else 1e-5
    sketch = np.random.default_rng(4).standard_normal((70, 64))
    for kwargs in ({"seed": 11}, {"sketch": sketch, "seed": 2}):
        got = lc.randomized_svd(A, tol=tol, ord=ord, **kwargs)
        want = ref.randomized_svd(A, tol=tol, ord=ord, **kwargs)
        assert got.rank == want.rank and got.basis_columns == want.basis_columns
        scale = float(s[0])
        rtol = 1e-4 if float_dtype == np.float32 else 1e-10
        np.testing.assert_allclose(got.S, want.S, atol=rtol * scale)
        np.testing.assert_allclose(got.to_dense(), want.to_dense(), atol=10 * rtol * scale)
        assert got.error == pytest.approx(want.error, rel=1e-2, abs=rtol * scale)
        assert got.S.dtype == A.dtype


def test_a_given_sketch_caps_the_basis():
    A = with_spectrum(100, 50, 1.0 / np.arange(1, 51))
    sketch = np.random.default_rng(0).standard_normal((50, 20))
    got = lc.randomized_svd(A, tol=1e-6, sketch=sketch)
    assert got.basis_columns == 20 and not got.tol_reached


def test_the_philox_blocks_are_the_fixed_rank_sketchs_columns():
    A = with_spectrum(90, 40, 0.6 ** np.arange(40))
    sketch = lc._core.gaussian_sketch(40, 48, 7)
    a = lc.randomized_svd(A, tol=1e-4, seed=7)
    b = lc.randomized_svd(A, tol=1e-4, sketch=sketch, seed=7)
    assert a.rank == b.rank
    np.testing.assert_allclose(a.S, b.S, rtol=0, atol=1e-14)


def test_input_is_not_modified_and_zero_and_extreme_scales():
    A = with_spectrum(70, 30, 0.5 ** np.arange(30))
    before = A.copy()
    lc.randomized_svd(A, tol=1e-3, seed=0)
    lc.randomized_svd(A, tol=1e-3, ord=2, seed=0)
    np.testing.assert_array_equal(A, before)
    zero = lc.randomized_svd(np.zeros((20, 10)), tol=0.5, seed=0)
    assert zero.rank == 1 and zero.S[0] == 0 and zero.error == 0
    for scale in (2.0**600, 2.0**-600):
        got = lc.randomized_svd(A * scale, tol=1e-3, seed=0)
        plain = lc.randomized_svd(A, tol=1e-3, seed=0)
        assert got.rank == plain.rank
        np.testing.assert_allclose(got.S / scale, plain.S, rtol=1e-12)
        assert got.error / scale == pytest.approx(plain.error, rel=1e-6)


def test_bad_arguments():
    A = np.ones((6, 5))
    with pytest.raises(TypeError, match="k .* or tol"):
        lc.randomized_svd(A)
    with pytest.raises(TypeError, match="k .* or tol"):
        ref.randomized_svd(A)
    for tol in (0, 1, -0.5, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tol"):
            lc.randomized_svd(A, tol=tol)
    for tol in ("0.1", True, 1j):
        with pytest.raises(TypeError, match="tol"):
            lc.randomized_svd(A, tol=tol)
    with pytest.raises(ValueError, match="ord"):
        lc.randomized_svd(A, tol=0.1, ord=1)
    with pytest.raises(ValueError, match="ord"):
        lc.randomized_svd(A, tol=0.1, ord="2")
    with pytest.raises(ValueError, match="block_size"):
        lc.randomized_svd(A, tol=0.1, block_size=0)
    with pytest.raises(ValueError, match="k"):
        lc.randomized_svd(A, 6, tol=0.1)
    with pytest.raises(ValueError, match="sketch"):
        lc.randomized_svd(A, tol=0.1, sketch=np.ones((4, 3)))
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lc.randomized_svd(bad, tol=0.1)
    with pytest.raises(TypeError, match="complex"):
        lc.randomized_svd(A.astype(complex), tol=0.1)


# ---- rank(method="randomized") ----------------------------------------------------------


def low_rank(shape, r, seed=0, dtype=np.float64, order="C"):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((shape[0], r)) @ rng.standard_normal((r, shape[1]))
    return np.asarray(A.astype(dtype), order=order)


def certified(A, **kwargs):
    threshold = kwargs.get("tol", kwargs.get("rtol"))
    rank, ok, _, _ = _core.randomized_rank(A, threshold, "rtol" in kwargs, 16, 0, 3)
    return ok, rank


@pytest.mark.parametrize("shape", [(600, 200), (200, 600), (1000, 300), (301, 400)], ids=str)
@pytest.mark.parametrize("r", [1, 7, 40])
@pytest.mark.parametrize("layout", ["C", "F"])
def test_randomized_rank_is_numpys_on_exactly_low_rank_matrices(shape, r, layout, float_dtype):
    A = low_rank(shape, r, seed=r, dtype=float_dtype, order=layout)
    want = np.linalg.matrix_rank(A)
    assert want == r
    assert lc.rank(A, method="randomized", seed=1) == want
    ok, found = certified(A)
    # From the basis, not the fallback: certain where the threshold max(M, N) eps sigma_1
    # stands well above the probes' rounding floor (about 8 eps sqrt(N) sigma_1); a
    # float32 matrix of 400 columns is near it and may fall back (still NumPy's answer).
    if float_dtype == np.float64 or max(shape) >= 600:
        assert ok
    assert found == want or not ok
    # The reference's float32 rounding (Householder QR) may leave its bound just short of
    # certifying: then it says so (None), never a different rank.
    assert ref.randomized_rank(A, seed=3)[0] in ((want,) if float_dtype == np.float64
                                                 else (want, None))


def test_small_matrices_fall_back_and_agree():
    for shape in [(1, 1), (3, 2), (10, 12), (30, 5)]:
        A = low_rank(shape, 1, seed=2)
        assert lc.rank(A, method="randomized") == np.linalg.matrix_rank(A)
    assert lc.rank(np.zeros((50, 40)), method="randomized") == 0
    assert lc.rank(np.zeros((500, 400)), tol=0.0, method="randomized") == 0


def test_thresholds_tol_and_rtol():
    s = np.concatenate([np.linspace(1, 0.1, 30), np.full(170, 1e-8)])
    A = with_spectrum(800, 200, s, seed=1)
    for kwargs in ({"tol": 1e-4}, {"rtol": 1e-5}, {"tol": 1e-9}):
        want = np.linalg.matrix_rank(A, **kwargs)
        assert lc.rank(A, method="randomized", **kwargs) == want
    ok, found = certified(A, tol=1e-4)
    assert ok and found == 30
    assert not certified(A, tol=1e-9)[0]  # the noise is above: no gap to stop at


def test_borderline_singular_values_fall_back():
    # A singular value within 0.1% of the default threshold either side: the
    # bracket cannot settle it, so the exact path answers, and it is NumPy's answer.
    m, n = 900, 300
    eps = np.finfo(np.float64).eps
    for factor in (1.001, 0.999):
        s = np.concatenate([np.linspace(1, 0.5, 10), [factor * max(m, n) * eps]])
        A = with_spectrum(m, n, s, seed=2)
        assert not certified(A)[0]
        assert lc.rank(A, method="randomized") == np.linalg.matrix_rank(A)
    # No gap at all: a full-rank 1/i spectrum.
    A = with_spectrum(600, 200, 1.0 / np.arange(1, 201))
    assert not certified(A)[0]
    assert lc.rank(A, method="randomized") == np.linalg.matrix_rank(A) == 200


def test_randomized_rank_core_matches_reference():
    for seed in range(5):
        A = low_rank((500, 300), 5 + 10 * seed, seed=seed)
        got = _core.randomized_rank(A, None, False, 16, 0, seed)
        want = ref.randomized_rank(A, seed=seed)
        assert (got[0] if got[1] else None) == want[0]
        assert got[2] == want[1]


def test_randomized_rank_bad_arguments():
    A = low_rank((40, 30), 3)
    with pytest.raises(ValueError, match="method"):
        lc.rank(A, method="fast")
    with pytest.raises(ValueError, match="2-D"):
        lc.rank(np.stack([A, A]), method="randomized")
    with pytest.raises(ValueError, match="hermitian"):
        lc.rank(A[:30], hermitian=True, method="randomized")
    with pytest.raises(ValueError, match="tol and rtol"):
        lc.rank(A, tol=1, rtol=1, method="randomized")
    bad = A.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        lc.rank(bad, method="randomized")
    assert lc.rank(A, tol=-1.0, method="randomized") == np.linalg.matrix_rank(A, tol=-1.0)
