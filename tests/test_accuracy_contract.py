"""The accuracy contract of randomized_svd's mixed precision (docs/reliability.md,
"Accuracy contract").

For every input, the default (``mixed_precision="auto"``) is as accurate as the
working-precision algorithm with the same sketch and the same number of power
iterations (``mixed_precision=False``): the two differ by at most 1e-2 of the
working-precision result's own distance to the exact truncated SVD, or by rounding
where that distance is itself at rounding. float64 is held to float64, float32 to
the float32 products (the AMX bfloat16 pieces below them). Only
``mixed_precision="fast"`` may give a looser answer.
"""

from __future__ import annotations

import numpy as np
import pytest

import lowrank_core as lc

M, N = 1000, 600  # large enough for the float32 copy and the AMX products to run
K = 10

SPECTRA = {
    "inv-sqrt": lambda i: 1.0 / np.sqrt(i),
    "inverse": lambda i: 1.0 / i,
    "exp": lambda i: np.exp(-(i - 1) / 10),
    "0.3^i": lambda i: 0.3 ** (i - 1),
    # A gap after the k-th value: the iterations converge, and any rounding of the
    # lower precision would be all that is left.
    "gap": lambda i: np.where(i <= K, 1.0 / i, 1e-2 / i),
}


def _factors(seed):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((M, N)))
    V, _ = np.linalg.qr(rng.standard_normal((N, N)))
    return U, V


_FACTORS = _factors(7)
_CACHE: dict = {}


def _matrix(spectrum, floor, dtype):
    """A, its exact rank-K truncation (of A as stored) and sigma_1."""
    key = (spectrum, floor, np.dtype(dtype).name)
    if key not in _CACHE:
        U, V = _FACTORS
        s = np.maximum(SPECTRA[spectrum](np.arange(1, N + 1, dtype=np.float64)), floor)
        A = ((U * s) @ V.T).astype(dtype)
        Ue, Se, Vhe = np.linalg.svd(A.astype(np.float64), full_matrices=False)
        _CACHE[key] = (A, (Ue[:, :K] * Se[:K]) @ Vhe[:K], Se)
    return _CACHE[key]


def _dense(r):
    return (r.U.astype(np.float64) * r.S.astype(np.float64)) @ r.Vh.astype(np.float64)


def _projector_distance(X, Y):
    """||X X^T - Y Y^T||_2 for orthonormal columns: the sine of the largest angle."""
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    return np.linalg.norm(X @ (X.T @ Y) - Y, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("floor", [1e-3, 1e-8, 1e-14])
@pytest.mark.parametrize("spectrum", sorted(SPECTRA))
def test_default_is_as_accurate_as_the_working_precision(spectrum, floor, layout, dtype):
    A, exact, Se = _matrix(spectrum, floor, dtype)
    if Se[K - 1] - Se[K] <= 1e-6 * Se[0]:
        pytest.skip("sigma_k = sigma_(k+1): the truncated SVD is not unique")
    A = np.asfortranarray(A) if layout == "F" else A
    eps = np.finfo(dtype).eps
    # Rounding: what the working precision itself cannot resolve.
    rounding = 200 * eps * Se[0]
    gap = (Se[K - 1] - Se[K]) / Se[0]
    for q in (0, 1, 3, 8, 30):
        default = lc.randomized_svd(A, K, seed=3, power_iters=q)
        working = lc.randomized_svd(A, K, seed=3, power_iters=q, mixed_precision=False)
        case = f"q={q}"
        # The rank-k approximations, in the spectral norm.
        own = np.linalg.norm(_dense(working) - exact, 2)
        moved = np.linalg.norm(_dense(default) - _dense(working), 2)
        assert moved <= 1e-2 * own + rounding, case
        # The singular values.
        own_s = np.abs(working.S.astype(np.float64) - Se[:K]).max()
        moved_s = np.abs(default.S.astype(np.float64) - working.S).max()
        assert moved_s <= 1e-2 * own_s + rounding, case
        # The singular subspaces (where a gap makes them well defined).
        ue = np.linalg.svd(exact, full_matrices=False)[0][:, :K]
        own_u = _projector_distance(working.U, ue)
        moved_u = _projector_distance(default.U, working.U)
        assert moved_u <= 1e-2 * own_u + 200 * eps / gap, case


@pytest.mark.parametrize("layout", ["C", "F"])
def test_a_converged_gapped_spectrum_is_float64_accurate(layout):
    # A gapped spectrum on which the float32 copy's iterations had left U at 5.7e-7
    # (and the rank-5 approximation at 9.6e-9) in C order.
    rng = np.random.default_rng(5)
    U, _ = np.linalg.qr(rng.standard_normal((1000, 60)))
    V, _ = np.linalg.qr(rng.standard_normal((600, 60)))
    A = (U * np.maximum(0.3 ** np.arange(60), 1e-3)) @ V.T
    A = np.asfortranarray(A) if layout == "F" else A
    Ue, Se, Vhe = np.linalg.svd(A, full_matrices=False)
    exact = (Ue[:, :5] * Se[:5]) @ Vhe[:5]
    for mp in ("auto", True, False):
        r = lc.randomized_svd(A, 5, seed=0, power_iters=20, mixed_precision=mp)
        assert np.abs(np.abs(r.U) - np.abs(Ue[:, :5])).max() < 1e-13
        assert np.abs(r.to_dense() - exact).max() < 1e-15


def test_steep_exponential_singular_values_are_float64_accurate():
    # exp(-i/5), k = 20, q = 4: 2.2e-10 relative error in S before.
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.standard_normal((2000, 1000)))
    V, _ = np.linalg.qr(rng.standard_normal((1000, 1000)))
    s = np.exp(-np.arange(1000) / 5)
    A = (U * s) @ V.T
    r = lc.randomized_svd(A, 20, seed=0, power_iters=4)
    np.testing.assert_allclose(r.S, s[:20], rtol=0, atol=50 * np.finfo(float).eps)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_float32_one_iteration_on_a_gapped_spectrum_reaches_the_optimum(layout):
    # Ten singular values at 1, ten at 1e-3, a tail at 1e-5 (k = 20, one power
    # iteration): the single product A^T (A Omega) loses the second group to float32
    # rounding, so the iteration is split (HMT) where the spread asks for it
    # (docs/reliability.md, "One product or two per power iteration").
    m, n = 2000, 1000
    s = np.concatenate([np.ones(10), np.full(10, 1e-3), np.full(n - 20, 1e-5)])
    for seed in range(3):
        rng = np.random.default_rng(seed)
        U, _ = np.linalg.qr(rng.standard_normal((m, n)))
        V, _ = np.linalg.qr(rng.standard_normal((n, n)))
        A = ((U * s) @ V.T).astype(np.float32)
        A = np.asfortranarray(A) if layout == "F" else A
        optimum = np.linalg.svd(A.astype(np.float64), compute_uv=False)[20]
        for mp in ("auto", False):
            r = lc.randomized_svd(A, 20, seed=seed, power_iters=1, mixed_precision=mp)
            error = np.linalg.norm(A.astype(np.float64) - _dense(r), 2)
            assert error <= 1.005 * optimum, (seed, mp)


@pytest.mark.parametrize("spectrum", ["gap", "exp", "0.3^i"])
@pytest.mark.parametrize("q", [2, 6])
def test_same_sketch_as_scikit_learn(spectrum, q):
    # scikit-learn's randomized_svd draws its sketch as RandomState(seed).normal and
    # runs the same power iterations (QR-normalised): with that sketch passed in,
    # float64 results agree to 1e-10, converged or not.
    extmath = pytest.importorskip("sklearn.utils.extmath")
    A, _, Se = _matrix(spectrum, 1e-14, np.float64)
    l = K + 10
    sketch = np.random.RandomState(11).normal(size=(N, l))
    U, S, Vh = extmath.randomized_svd(A, K, n_oversamples=10, n_iter=q,
                                      power_iteration_normalizer="QR", random_state=11,
                                      transpose=False)
    ours = lc.randomized_svd(A, K, power_iters=q, sketch=sketch)
    theirs = (U * S) @ Vh
    np.testing.assert_allclose(ours.S, S, rtol=1e-10)
    assert np.linalg.norm(_dense(ours) - theirs, 2) <= 1e-10 * Se[0]
