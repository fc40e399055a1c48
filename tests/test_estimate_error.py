"""estimate_error: the Frobenius norm of A - approx exactly, the spectral norm from
below with a bound above that holds as often as stated, for every kind of approx."""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import reference as ref


def with_spectrum(m, n, s, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n, len(s))))
    return ((U * s) @ V.T).astype(dtype)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_frobenius_is_the_norm_of_the_residual(layout, float_dtype):
    A = np.asarray(with_spectrum(300, 120, 1.0 / np.arange(1, 121), dtype=float_dtype),
                   order=layout)
    approx = lc.svd(A, 10)
    want = np.linalg.norm(A.astype(np.float64) - approx.to_dense().astype(np.float64))
    got = lc.estimate_error(A, approx, "fro")
    rtol = 1e-4 if float_dtype == np.float32 else 1e-10
    assert isinstance(got, float) and isinstance(got, lc.ErrorEstimate)
    assert got == pytest.approx(want, rel=rtol) and got.bound == float(got)
    assert got.ord == "fro"
    assert ref.estimate_error(A, approx, "fro") == pytest.approx(want, rel=rtol)


def test_every_kind_of_approximation():
    A = with_spectrum(120, 80, 0.8 ** np.arange(80))
    U, S, Vh = lc.svd(A, 6)
    L, R = U * S, Vh
    want = np.linalg.norm(A - L @ R, 2)
    for approx in ((U, S, Vh), lc.SVDResult(U, S, Vh), (L, R)):
        got = lc.estimate_error(A, approx, seed=1)
        assert float(got) == pytest.approx(want, rel=1e-6)
    net = lc.Bottleneck(4, epochs=3, samples=200, seed=0).fit(A.astype(np.float32))
    L, R = net.factors()
    want = np.linalg.norm(A - L.astype(np.float64) @ R.astype(np.float64), "fro")
    assert lc.estimate_error(A, net, "fro") == pytest.approx(want, rel=1e-6)


def test_spectral_estimate_from_below_and_core_matches_reference(float_dtype):
    A = with_spectrum(400, 150, 1.0 / np.arange(1, 151), seed=2, dtype=float_dtype)
    approx = lc.randomized_svd(A, 12, seed=0)
    true = np.linalg.norm(A.astype(np.float64) - approx.to_dense().astype(np.float64), 2)
    got = lc.estimate_error(A, approx, 2, seed=9)
    want = ref.estimate_error(A, approx, 2, seed=9)
    rtol = 1e-4 if float_dtype == np.float32 else 1e-9
    assert float(got) == pytest.approx(float(want), rel=rtol)
    assert got.bound == pytest.approx(want.bound, rel=rtol)
    assert 0.9 * true <= got <= true * (1 + rtol)
    assert got.bound >= true and got.probes == 10 and got.ord == 2
    # Without power steps: sigma_1 of E times orthonormal probes, still from below.
    zero_steps = lc.estimate_error(A, approx, 2, seed=9, power_steps=0)
    assert zero_steps <= true * (1 + rtol)
    assert float(zero_steps) == pytest.approx(float(ref.estimate_error(A, approx, 2, seed=9,
                                                                       power_steps=0)), rel=rtol)


def test_the_bound_fails_no_more_often_than_stated():
    # With r probes the bound fails with probability at most 10^-r (HMT Lemma 4.1).
    # One probe: at most 10%; count the failures over a seeded sweep of residuals
    # whose spectrum is flat (the hardest case for a single probe).
    rng = np.random.default_rng(0)
    trials, failures, below = 300, 0, 0
    for trial in range(trials):
        m, n = int(rng.integers(20, 60)), int(rng.integers(10, 40))
        A = rng.standard_normal((m, n)) * rng.random(n) ** 3
        approx = lc.svd(A, 1)
        true = np.linalg.norm(A - approx.to_dense(), 2)
        e = lc.estimate_error(A, approx, 2, seed=trial, probes=1, power_steps=2)
        failures += e.bound < true
        below += float(e) <= true * (1 + 1e-12)
    assert below == trials  # the estimate never exceeds the norm
    # Binomial(300, 0.1): mean 30, sd 5.2; the bound allows six sd above the mean.
    assert failures <= 62, failures
    # With ten probes (the default) a failure would be a 1e-10 event.
    for trial in range(60):
        A = rng.standard_normal((50, 30))
        approx = lc.svd(A, 3)
        assert lc.estimate_error(A, approx, 2, seed=trial).bound >= np.linalg.norm(
            A - approx.to_dense(), 2)


def test_zero_residual_and_input_untouched():
    A = with_spectrum(50, 30, np.array([3.0, 2.0, 1.0]))
    approx = lc.svd(A, 3)
    before = A.copy()
    e = lc.estimate_error(A, approx, 2, seed=0)
    assert float(e) < 1e-13 and e.bound < 1e-12
    np.testing.assert_array_equal(A, before)


def test_bad_arguments():
    A = np.ones((6, 5))
    U, S, Vh = lc.svd(A, 2)
    with pytest.raises(ValueError, match="ord"):
        lc.estimate_error(A, (U, S, Vh), ord=1)
    with pytest.raises(TypeError, match="approx"):
        lc.estimate_error(A, U)
    with pytest.raises(TypeError, match="approx"):
        lc.estimate_error(A, [U, S, Vh])
    with pytest.raises(ValueError, match="shapes"):
        lc.estimate_error(A, (U[:5], S, Vh))
    with pytest.raises(ValueError, match="shapes"):
        lc.estimate_error(A, (U, S[:1], Vh))
    with pytest.raises(ValueError, match="probes"):
        lc.estimate_error(A, (U, S, Vh), probes=0)
    with pytest.raises(ValueError, match="power_steps"):
        lc.estimate_error(A, (U, S, Vh), power_steps=-1)
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lc.estimate_error(bad, (U, S, Vh))
    with pytest.raises(ValueError, match="NaN"):
        lc.estimate_error(A, (U, S * np.nan, Vh))
    from lowrank_core import NotFittedError

    with pytest.raises(NotFittedError):
        lc.estimate_error(A, lc.Bottleneck(2))
