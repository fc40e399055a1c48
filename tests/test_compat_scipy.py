"""lowrank_core.compat.scipy.svds against SciPy's own tests, for dense input.

The tests marked "ported" follow SciPy's
scipy/sparse/linalg/_eigen/tests/test_svds.py (BSD-3-Clause), for its dense, real
cases, keeping the assertions and tolerances of its checks (``_check_svds``:
atol 1e-10, rtol 1e-7 unless a test says otherwise). Sparse, LinearOperator and
complex cases are not ported: they are refused here (tested below).
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal, assert_equal
from scipy.linalg import null_space, svd

from lowrank_core.compat.scipy import svds

SOLVERS = ["arpack", "propack", "lobpcg"]


def sorted_svd(m, k, which="LM"):
    u, s, vh = svd(m)
    ii = np.argsort(s)[-k:] if which == "LM" else np.argsort(s)[:k]
    return u[:, ii], s[ii], vh[ii]


def _check_svds(A, k, u, s, vh, which="LM", check_usvh_A=False, check_svd=True,
                atol=1e-10, rtol=1e-7):
    n, m = A.shape
    assert_equal(u.shape, (n, k))
    assert_equal(s.shape, (k,))
    assert_equal(vh.shape, (k, m))
    A_rebuilt = (u * s).dot(vh)
    assert_equal(A_rebuilt.shape, A.shape)
    if check_usvh_A:
        assert_allclose(A_rebuilt, A, atol=atol, rtol=rtol)
    assert_allclose(u.T @ u, np.identity(k), atol=atol, rtol=rtol)
    assert_allclose(vh @ vh.T, np.identity(k), atol=atol, rtol=rtol)
    if check_svd:
        u2, s2, vh2 = sorted_svd(A, k, which)
        assert_allclose(np.abs(u), np.abs(u2), atol=atol, rtol=rtol)
        assert_allclose(s, s2, atol=atol, rtol=rtol)
        assert_allclose(np.abs(vh), np.abs(vh2), atol=atol, rtol=rtol)


def _check_svds_n(A, k, u, s, vh, atol, rtol):
    n, m = A.shape
    assert_equal((u.shape, s.shape, vh.shape), ((n, k), (k,), (k, m)))
    assert_allclose(np.sum(np.abs(u.T @ u - np.identity(k))) / (k * k), 0.0, atol=atol, rtol=rtol)
    assert_allclose(np.sum(np.abs(vh @ vh.T - np.identity(k))) / (k * k), 0.0, atol=atol,
                    rtol=rtol)
    ru = A.T @ u - vh.T * s
    rvh = A @ vh.T - u * s
    assert_allclose(np.sum(np.abs(ru)) / (n * k), 0.0, atol=atol, rtol=rtol)
    assert_allclose(np.sum(np.abs(rvh)) / (m * k), 0.0, atol=atol, rtol=rtol)


# --- input validation (ported: test_svds_input_validation_*) ---------------------------


@pytest.mark.parametrize("A, error, message", [
    (np.asarray([[]]), ValueError, "`A` must not be empty."),
    (np.array([["a", "b"], ["c", "d"]], dtype="object"), ValueError,
     "`A` must be of numeric data type"),
    ("hi", TypeError, "type not understood"),
    (np.asarray([[[1., 2.], [3., 4.]]]), ValueError, "array must have ndim <= 2"),
])
def test_input_validation_A(A, error, message):
    with pytest.raises(error, match=message):
        svds(A, k=1, rng=0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("k", [-1, 0, 3, 4, 5, 1.5, "1"])
def test_input_validation_k(solver, k):
    A = np.random.default_rng(0).random((4, 3))
    if solver == "propack" and k == 3:  # PROPACK's range includes the complete SVD
        _check_svds(A, k, *svds(A, k=k, solver=solver, rng=0), check_usvh_A=True)
        return
    with pytest.raises(ValueError, match="`k` must be an integer satisfying"):
        svds(A, k=k, solver=solver, rng=0)


def test_input_validation_k_and_maxiter_conversions():
    for option in ("k", "maxiter"):
        with pytest.raises(TypeError, match=re.escape("int() argument must be a")):
            svds(np.eye(10), **{option: []}, rng=0)
        with pytest.raises(ValueError, match="invalid literal for int()"):
            svds(np.eye(10), **{option: "hi"}, rng=0)


@pytest.mark.parametrize("tol", (-1, np.inf, np.nan))
def test_input_validation_tol(tol):
    with pytest.raises(ValueError, match="`tol` must be a non-negative floating point value."):
        svds(np.eye(10), tol=tol, rng=0)
    for bad in ([], "hi"):
        with pytest.raises(TypeError, match="'<' not supported between instances"):
            svds(np.eye(10), tol=bad, rng=0)


@pytest.mark.parametrize("which", ("LA", "SA", "ekki", 0))
def test_input_validation_which(which):
    with pytest.raises(ValueError, match="`which` must be in"):
        svds(np.eye(10), which=which, rng=0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("transpose", (True, False))
@pytest.mark.parametrize("n", range(4, 9))
def test_input_validation_v0(solver, transpose, n):
    rng = np.random.default_rng(0)
    A = rng.random((5, 7))
    v0 = rng.random(n)
    A = A.T if transpose else A
    required = A.shape[0] if solver == "propack" else min(A.shape)
    if n != required:
        with pytest.raises(ValueError, match="`v0` must have shape"):
            svds(A, k=2, v0=v0, solver=solver, rng=0)
    else:
        _check_svds(A, 2, *svds(A, k=2, v0=v0, solver=solver, rng=0))
    with pytest.raises(ValueError, match="`v0` must have shape"):
        svds(np.ones((10, 10)), k=1, v0=np.ones((1, 10)), rng=0)
    for v0 in ("hi", 1, np.ones(10, dtype=int)):
        with pytest.raises(ValueError, match="`v0` must be of floating or complex floating"):
            svds(np.ones((10, 10)), k=1, v0=v0, rng=0)


@pytest.mark.parametrize("maxiter", (-1, 0, 5.5))
def test_input_validation_maxiter(maxiter):
    with pytest.raises(ValueError, match="`maxiter` must be a positive integer."):
        svds(np.eye(10), maxiter=maxiter, rng=0)


@pytest.mark.parametrize("rsv", ("ekki", 10))
def test_input_validation_return_singular_vectors(rsv):
    with pytest.raises(ValueError, match="`return_singular_vectors` must be in"):
        svds(np.eye(10), return_singular_vectors=rsv, rng=0)


def test_input_validation_solver():
    for solver in ("ekki", 1):
        with pytest.raises(ValueError, match="solver must be one of"):
            svds(np.ones((3, 4)), k=2, solver=solver)


# --- results (ported) ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["LM", "SM"])
def test_int_A(which):  # ported: test_svds_int_A
    A = np.asarray([[1, 2], [3, 4]])
    res = svds(A, k=1, which=which, rng=0)
    assert res[1].dtype == np.float64
    _check_svds(A, 1, *res, which=which, atol=8e-10)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("which", ["LM", "SM"])
def test_parameter_k_which(k, which):  # ported: test_svds_parameter_k_which
    A = np.random.default_rng(0).random((10, 10))
    _check_svds(A, k, *svds(A, k=k, which=which, rng=0), which=which, atol=1e-9, rtol=2e-13)


def test_rng():  # ported: test_svd_rng (its first two parts)
    A = np.random.default_rng(0).random((100, 100))
    for seed in (0, 1):
        first, second = svds(A, 1, rng=seed), svds(A, 1, rng=seed)
        for idx in range(3):
            assert_allclose(first[idx], second[idx], rtol=1e-15, atol=2e-16)
        _check_svds(A, 1, *first)


def test_rng_2():  # ported: test_svd_rng_2
    rng = np.random.default_rng(234981)
    A = rng.random((100, 100))
    rng_2 = copy.deepcopy(rng)
    res1, res2 = svds(A, 1, rng=rng), svds(A, 1, rng=rng_2)
    for idx in range(3):
        assert_allclose(res1[idx], res2[idx], rtol=1e-15, atol=2e-16)
    _check_svds(A, 1, *res1)


def test_rng_3():  # ported: test_svd_rng_3 (accuracy part)
    rng1, rng2 = np.random.default_rng(0), np.random.default_rng(234832)
    A = rng1.random((100, 100))
    _check_svds(A, 5, *svds(A, 5, rng=rng1, maxiter=1000), atol=2e-7)
    _check_svds(A, 5, *svds(A, 5, rng=rng2, maxiter=1000), atol=2e-7)


@pytest.mark.parametrize("rsv", (True, False, "u", "vh"))
@pytest.mark.parametrize("shape", ((5, 7), (6, 6), (7, 5)))
def test_return_singular_vectors(rsv, shape):  # ported: test_svd_return_singular_vectors
    rng = np.random.default_rng(0)
    A = rng.random(shape)
    u, s, vh = sorted_svd(A, 2)
    if rsv is False:
        assert_allclose(svds(A, 2, return_singular_vectors=rsv, rng=rng), s)
        return
    u2, s2, vh2 = svds(A, 2, return_singular_vectors=rsv, rng=rng)
    assert_allclose(s2, s)
    # Here every request is respected (as PROPACK does): no vectors that were not
    # asked for.
    assert (u2 is None) == (rsv == "vh") and (vh2 is None) == (rsv == "u")
    if u2 is not None:
        assert_allclose(np.abs(u2), np.abs(u))
    if vh2 is not None:
        assert_allclose(np.abs(vh2), np.abs(vh))


@pytest.mark.parametrize("A", ([[1, 2, 3], [3, 4, 3], [1, 0, 2], [0, 0, 1]],
                               [[1, 2, 3, 8], [3, 4, 3, 5], [1, 0, 2, 3], [0, 0, 1, 0]]))
@pytest.mark.parametrize("k", range(1, 5))
@pytest.mark.parametrize("transpose", (False, True))
@pytest.mark.parametrize("solver", ["arpack", "propack"])
def test_simple(A, k, transpose, solver):  # ported: test_svd_simple (real, dense)
    A = np.asarray(A, dtype=float)
    A = A.T if transpose else A
    if k > min(A.shape) or (solver != "propack" and k >= min(A.shape)):
        pytest.skip("k out of the solver's range (checked by test_input_validation_k)")
    _check_svds(A, k, *svds(A, k, solver=solver, rng=0), atol=3e-10)


@pytest.mark.parametrize("shape", ((6, 5), (5, 5), (5, 6)))
def test_LM_ones_matrix(shape):  # ported: test_svd_LM_ones_matrix
    n, m = shape
    A = np.ones((n, m))
    U, s, VH = svds(A, 3, rng=0)
    _check_svds(A, 3, U, s, VH, check_usvh_A=True, check_svd=False)
    assert_allclose(np.max(s), np.sqrt(n * m))
    assert_allclose(np.array(sorted(s)[:-1]) + 1, np.ones(2))


@pytest.mark.parametrize("shape", ((3, 4), (4, 4), (4, 3), (4, 2)))
def test_zero_matrix(shape):  # ported: test_zero_matrix
    A = np.zeros(shape)
    U, s, VH = svds(A, 1, rng=0)
    _check_svds(A, 1, U, s, VH, check_usvh_A=True, check_svd=False)
    assert_array_equal(s, 0)


@pytest.mark.parametrize("shape", ((20, 20), (20, 21), (21, 20)))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_small_sigma(shape, dtype):  # ported: test_small_sigma
    rng = np.random.default_rng(179847540)
    A = rng.random(shape).astype(dtype)
    u, _, vh = svd(A, full_matrices=False)
    e = 10.0 if dtype == np.float32 else 100.0
    t = e ** (-np.arange(len(vh))).astype(dtype)
    A = (u * t).dot(vh)
    u, s, vh = svds(A, 4, maxiter=100, rng=0)
    assert_equal(np.sum(s > 0), 4)
    assert s.dtype == dtype
    _check_svds_n(A, 4, u, s, vh, atol=1e-3, rtol=1e0)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_small_sigma2(dtype):  # ported: test_small_sigma2 (dense instead of csc_array)
    rng = np.random.default_rng(179847540)
    dim, size = 4, 10
    x = rng.random((size, size - dim))
    y = x[:, :dim] * rng.random(dim)
    mat = np.hstack((x, y)).astype(dtype)
    assert_equal(null_space(mat).shape[1], dim)
    su, ss, svh = svds(mat, k=dim, which="SM", rng=0)
    assert_allclose(ss, 0, atol=1e-5, rtol=1e0)
    assert_allclose(mat @ svh.T, 0, atol=1e-5, rtol=1e0)


# --- beyond the port -------------------------------------------------------------------


def test_tol_bounds_the_residuals_on_the_randomized_path(monkeypatch):
    def no_exact_svd(*args):
        raise AssertionError("the exact SVD was taken: the randomized attempts failed")

    monkeypatch.setattr("lowrank_core.compat.scipy._svd", no_exact_svd)
    rng = np.random.default_rng(3)
    m, n, k = 400, 300, 8
    U0, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = 0.7 ** np.arange(n)  # fast decay: the randomized attempts converge
    A = (U0 * sigma) @ V0.T
    for tol in (0, 1e-6):
        u, s, vh = svds(A, k, tol=tol, rng=0)
        residual = np.maximum(np.linalg.norm(A @ vh.T - u * s, axis=0),
                              np.linalg.norm(A.T @ u - vh.T * s, axis=0))
        bound = tol if tol > 0 else 16 * np.sqrt(m) * np.finfo(float).eps
        assert residual.max() <= bound * s.max()
        assert_allclose(s, sigma[:k][::-1], rtol=0, atol=max(bound, 1e-13))


def test_as_scipy_on_a_flat_spectrum():
    scipy_svds = pytest.importorskip("scipy.sparse.linalg").svds
    A = np.random.default_rng(4).standard_normal((120, 80))
    ours = svds(A, 6, rng=0)
    theirs = scipy_svds(A, 6, rng=0)
    assert_allclose(ours[1], theirs[1], rtol=1e-12)
    assert_allclose(np.abs(ours[0]), np.abs(theirs[0]), atol=1e-9)


def test_random_state_and_rng_cannot_both_be_given():
    with pytest.raises(ValueError, match="random_state and rng"):
        svds(np.eye(5), 2, random_state=0, rng=0)
    assert_array_equal(svds(np.eye(5) * 2, 2, random_state=3)[1], [2.0, 2.0])


class _Products:
    """Only matmat, rmatmat, shape and dtype: the duck-typed operator."""

    def __init__(self, A):
        self.A, self.shape, self.dtype = A, A.shape, A.dtype

    def matmat(self, X):
        return self.A @ X

    def rmatmat(self, Y):
        return self.A.T @ Y


def _decaying(m, n, seed=3):
    rng = np.random.default_rng(seed)
    U0, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (U0 * 0.7 ** np.arange(n)) @ V0.T


SPARSE_AND_OPERATORS = ["csr_array", "csc_matrix", "coo_array", "LinearOperator", "products"]


def _as(kind, A):
    from scipy import sparse
    from scipy.sparse.linalg import aslinearoperator

    if kind == "LinearOperator":
        return aslinearoperator(A)
    if kind == "products":
        return _Products(A)
    return getattr(sparse, kind)(A)


@pytest.mark.parametrize("kind", SPARSE_AND_OPERATORS)
def test_sparse_and_operators_by_the_randomized_attempts(kind, monkeypatch):
    # A fast-decaying spectrum: the randomized attempts meet tol by products alone,
    # neither the exact SVD nor SciPy's solver is called, and A is never densified.
    import scipy.sparse.linalg

    def not_called(*args, **kwargs):
        raise AssertionError("a fallback was taken: the randomized attempts failed")

    monkeypatch.setattr("lowrank_core.compat.scipy._svd", not_called)
    monkeypatch.setattr(scipy.sparse.linalg, "svds", not_called)
    A = _decaying(300, 200)
    X = _as(kind, A)
    if hasattr(X, "toarray"):
        monkeypatch.setattr(type(X), "toarray", not_called)
    u, s, vh = svds(X, 6, rng=0)
    _check_svds(A, 6, u, s, vh, atol=1e-10)
    assert svds(X, 6, rng=0, return_singular_vectors=False).shape == (6,)
    u_only, s_u, vh_none = svds(X, 6, rng=0, return_singular_vectors="u")
    assert vh_none is None and u_only.shape == (300, 6)


@pytest.mark.parametrize("kind", SPARSE_AND_OPERATORS)
@pytest.mark.parametrize("which", ["LM", "SM"])
def test_sparse_and_operators_as_scipy_where_the_attempts_cannot(kind, which):
    # A flat spectrum (LM) and the smallest values (SM): SciPy's own svds answers,
    # with the caller's arguments, so the results are SciPy's.
    from scipy import sparse
    from scipy.sparse.linalg import aslinearoperator, svds as scipy_svds

    F = sparse.random(120, 80, density=0.2, random_state=1, format="csr")
    dense = F.toarray()
    ours = svds(_as(kind, dense), 4, which=which, rng=0, return_singular_vectors=False)
    theirs = scipy_svds(aslinearoperator(dense), 4, which=which, rng=0,
                        return_singular_vectors=False)
    assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    _, exact, _ = sorted_svd(dense, 4, which)
    assert_allclose(ours, exact, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_small_sigma2_sparse(dtype):  # ported: test_small_sigma2, with its csc_array
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(179847540)
    dim, size = 4, 10
    x = rng.random((size, size - dim))
    y = x[:, :dim] * rng.random(dim)
    mat = np.hstack((x, y)).astype(dtype)
    sp_mat = sparse.csc_array(mat)
    su, ss, svh = svds(sp_mat, k=dim, which="SM", rng=0)
    assert_allclose(ss, 0, atol=1e-5, rtol=1e0)
    assert_allclose(sp_mat @ svh.T, 0, atol=1e-5, rtol=1e0)


def test_sparse_bad_input_is_refused_as_scipy_refuses_it():
    sparse = pytest.importorskip("scipy.sparse")
    A = sparse.csr_array(_decaying(30, 20))
    for k in (0, 20, 2.5, True):
        with pytest.raises(ValueError, match="`k` must be an integer"):
            svds(A, k)
    with pytest.raises(ValueError, match="`tol` must be"):
        svds(A, 2, tol=-1)
    with pytest.raises(ValueError, match="return_singular_vectors"):
        svds(A, 2, return_singular_vectors="x")
    with pytest.raises(ValueError, match="finite|NaN|nan|inf"):
        svds(sparse.csr_array(np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]])), 1)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    A = torch.randn(30, 20, dtype=torch.float64)
    u, s, vh = svds(A, 3, rng=0)
    assert all(isinstance(x, torch.Tensor) for x in (u, s, vh))
    assert_allclose(s.numpy(), np.sort(np.linalg.svd(A.numpy(), compute_uv=False))[-3:],
                    rtol=1e-12)


def test_a_slower_spectrum_converges_in_the_second_attempt(monkeypatch):
    # sigma_i = 1/i: 8 power iterations miss machine precision, the second attempt
    # (its iterations predicted from the first's rate) meets it; no exact SVD.
    import lowrank_core.compat.scipy as module

    attempts = []
    original = module._randomized_svd

    def counting(*args, **kwargs):
        attempts.append(kwargs["power_iters"])
        return original(*args, **kwargs)

    def no_exact_svd(*args):
        raise AssertionError("the exact SVD was taken")

    monkeypatch.setattr(module, "_randomized_svd", counting)
    monkeypatch.setattr(module, "_svd", no_exact_svd)
    rng = np.random.default_rng(5)
    m, n, k = 600, 400, 10
    U0, _ = np.linalg.qr(rng.standard_normal((m, n)))
    V0, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = 1.0 / np.arange(1, n + 1)
    A = (U0 * sigma) @ V0.T
    u, s, vh = svds(A, k, rng=0)
    assert len(attempts) == 2 and 16 <= attempts[1] <= 64, attempts
    assert_allclose(s, sigma[:k][::-1], rtol=0, atol=1e-13)
    _check_svds(A, k, u, s, vh)
