"""Sparse and operator input to randomized_svd, implicit centring and pca: against the
same matrix made dense (the same sketch gives the same result to rounding), against
the reference (plain NumPy/SciPy), against SciPy and scikit-learn."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

import lowrank_core as lc
from helpers import assert_close

FORMATS = ["csr", "csc", "coo", "bsr", "lil"]


def sparse_matrix(m, n, density, dtype, seed=0, decay=True):
    """A random sparse matrix whose leading singular values are separated: sparse
    noise plus a sparse rank-8 part with weights 2^-i, so the top singular vectors
    are well defined and two rounding paths agree on them."""
    rng = np.random.default_rng(seed)
    noise = sp.random(m, n, density=density, format="csr", random_state=rng, dtype=np.float64)
    if decay:
        rows = rng.choice(m, size=(8, max(m // 10, 2)), replace=True)
        low = sp.lil_matrix((m, n))
        for i in range(8):
            cols = rng.choice(n, size=max(n // 10, 2), replace=False)
            low[np.ix_(rows[i], cols)] = 2.0 ** (4 - i)
        noise = noise + low.tocsr()
    return noise.astype(dtype).tocsr()


def convert(A, fmt, kind="matrix", index=np.int32):
    out = A.asformat(fmt)
    if kind == "array":
        out = {"csr": sp.csr_array, "csc": sp.csc_array, "coo": sp.coo_array,
               "bsr": sp.bsr_array, "lil": sp.lil_array}[fmt](out)
    if fmt in ("csr", "csc", "bsr"):
        out.indptr = out.indptr.astype(index)
        out.indices = out.indices.astype(index)
    elif fmt == "coo":
        out.row, out.col = out.row.astype(index), out.col.astype(index)
    return out


def reconstruct(r):
    return (r.U.astype(np.float64) * r.S) @ r.Vh.astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt,index", [(f, i) for f in FORMATS for i in (np.int32, np.int64)
                                       if not (f == "lil" and i == np.int64)])  # LIL: no index arrays
@pytest.mark.parametrize("kind", ["matrix", "array"])
def test_every_format_matches_the_dense_matrix(dtype, fmt, kind, index):
    A = convert(sparse_matrix(600, 150, 0.03, dtype), fmt, kind, index)
    D = A.toarray()
    # CSC is read as the CSR of A^T: the dense path of a Fortran-ordered A is the
    # same algorithm; the others follow C-ordered A.
    dense = np.asfortranarray(D) if fmt == "csc" else np.ascontiguousarray(D)
    got = lc.randomized_svd(A, 6, seed=7, mixed_precision=False)
    want = lc.randomized_svd(dense, 6, seed=7, mixed_precision=False)
    assert got.U.dtype == got.S.dtype == got.Vh.dtype == np.dtype(dtype)
    assert_close(got.S, want.S, dtype, factor=10)
    assert_close(reconstruct(got), reconstruct(want), dtype, scale=float(want.S[0]), factor=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("center", [False, True])
def test_matches_the_reference_with_an_explicit_sketch(dtype, center):
    A = sparse_matrix(500, 120, 0.05, dtype, seed=3)
    sketch = np.random.default_rng(1).standard_normal((120, 15)).astype(dtype)
    got = lc.randomized_svd(A, 5, sketch=sketch, power_iters=2, center=center)
    want = lc.reference.randomized_svd(A, 5, sketch=sketch, power_iters=2, center=center)
    assert_close(got.S, want.S, dtype, factor=10)
    assert_close(reconstruct(got), reconstruct(want), dtype, scale=float(want.S[0]), factor=10)


def test_reaches_the_eckart_young_optimum_like_scipy_svds():
    A = sparse_matrix(2000, 400, 0.01, np.float64, seed=5)
    got = lc.randomized_svd(A, 8, seed=0)
    exact = np.linalg.svd(A.toarray(), compute_uv=False)
    from scipy.sparse.linalg import svds

    s_arpack = np.sort(svds(A, 8, random_state=0, return_singular_vectors=False))[::-1]
    np.testing.assert_allclose(got.S, exact[:8], rtol=1e-10)
    np.testing.assert_allclose(got.S, s_arpack, rtol=1e-10)
    err = np.linalg.norm(A.toarray() - reconstruct(got), 2)
    assert err <= exact[8] * (1 + 1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", ["dense-C", "dense-F", "csr", "csc", "operator"])
def test_centering_matches_the_explicitly_centred_matrix(dtype, fmt):
    A = sparse_matrix(700, 90, 0.05, dtype, seed=2)
    D = A.toarray()
    source = {"dense-C": np.ascontiguousarray(D), "dense-F": np.asfortranarray(D),
              "csr": A, "csc": A.tocsc(), "operator": aslinearoperator(A)}[fmt]
    mu = D.mean(axis=0, dtype=np.float64)
    centred = (D - mu).astype(dtype)
    got = lc.randomized_svd(source, 6, seed=4, center=True)
    want = lc.randomized_svd(centred, 6, seed=4, mixed_precision=False)
    exact = np.linalg.svd(D.astype(np.float64) - mu, compute_uv=False)
    assert_close(got.S, want.S, dtype, factor=30)
    assert_close(got.S, exact[:6], dtype, factor=30)
    assert_close(reconstruct(got), reconstruct(want), dtype, scale=float(exact[0]), factor=30)


def test_mean_vector_of_ones_own():
    A = sparse_matrix(400, 60, 0.05, np.float64, seed=8)
    mean = np.linspace(-1, 1, 60)
    got = lc.randomized_svd(A, 4, seed=1, mean=mean)
    want = lc.randomized_svd(A.toarray() - mean, 4, seed=1, mixed_precision=False)
    assert_close(got.S, want.S, np.float64, factor=10)
    with pytest.raises(ValueError, match="not both"):
        lc.randomized_svd(A, 4, center=True, mean=mean)
    with pytest.raises(ValueError, match="mean must have shape"):
        lc.randomized_svd(A, 4, mean=mean[:-1])
    with pytest.raises(TypeError, match="center"):
        lc.randomized_svd(A, 4, center="yes")


def test_operator_path_matches_the_dense_path_and_counts_its_calls():
    D = sparse_matrix(800, 200, 0.05, np.float64, seed=9).toarray()
    calls = {"matmat": 0, "rmatmat": 0}

    def matmat(X):
        calls["matmat"] += 1
        assert X.shape == (200, 20)  # one block of l = k + oversamples columns
        return D @ X

    def rmatmat(Y):
        calls["rmatmat"] += 1
        return D.T @ Y

    op = LinearOperator(D.shape, matvec=lambda x: D @ x, rmatvec=lambda y: D.T @ y,
                        matmat=matmat, rmatmat=rmatmat, dtype=np.float64)
    got = lc.randomized_svd(op, 10, seed=2, power_iters=3)
    want = lc.randomized_svd(D, 10, seed=2, power_iters=3, mixed_precision=False)
    assert_close(got.S, want.S, np.float64, factor=10)
    assert_close(reconstruct(got), reconstruct(want), np.float64, scale=float(want.S[0]))
    # q + 1 products each way on this well-conditioned case (the documented bound
    # allows up to q + 3 for rmatmat).
    assert calls == {"matmat": 4, "rmatmat": 4}


def test_duck_typed_operator():
    D = np.random.default_rng(0).standard_normal((300, 50))

    class Op:
        shape = D.shape
        dtype = np.dtype(np.float32)

        def matmat(self, X):
            return (D @ X).astype(np.float32)

        def rmatmat(self, Y):
            return (D.T @ Y).astype(np.float32)

    got = lc.randomized_svd(Op(), 5, seed=0)
    assert got.S.dtype == np.float32
    want = lc.randomized_svd(D.astype(np.float32), 5, seed=0, mixed_precision=False)
    assert_close(got.S, want.S, np.float32, factor=10)


def test_operator_errors_name_the_call_and_propagate():
    D = np.random.default_rng(0).standard_normal((100, 30))

    wrong_shape = LinearOperator(D.shape, matvec=lambda x: D @ x, rmatvec=lambda y: D.T @ y,
                                 matmat=lambda X: D[:50] @ X, dtype=np.float64)
    with pytest.raises(ValueError, match="matmat returned shape"):
        lc.randomized_svd(wrong_shape, 3, seed=0)

    class Complex:
        shape = D.shape
        dtype = np.dtype(np.float64)

        def matmat(self, X):
            return (D @ X).astype(complex)

        def rmatmat(self, Y):
            return D.T @ Y

    with pytest.raises(ValueError, match="matmat returned dtype complex"):
        lc.randomized_svd(Complex(), 3, seed=0)

    class NaNs(Complex):
        def matmat(self, X):
            return np.full((100, X.shape[1]), np.nan)

    with pytest.raises(ValueError, match="NaN"):
        lc.randomized_svd(NaNs(), 3, seed=0)

    class Boom(Complex):
        def matmat(self, X):
            return D @ X

        def rmatmat(self, Y):
            raise KeyError("the caller's own error")

    with pytest.raises(KeyError, match="the caller's own error"):
        lc.randomized_svd(Boom(), 3, seed=0)
    # The package stays usable after an operator raised.
    assert lc.randomized_svd(D, 3, seed=0).S.shape == (3,)


def test_bad_sparse_input():
    A = sparse_matrix(100, 40, 0.1, np.float64)
    bad = A.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="A has NaN or Inf"):
        lc.randomized_svd(bad, 3)
    bad.data[3] = np.inf
    with pytest.raises(ValueError, match="A has NaN or Inf"):
        lc.randomized_svd(bad, 3)
    with pytest.raises(TypeError, match="complex"):
        lc.randomized_svd(A.astype(complex), 3)
    with pytest.raises(ValueError, match="k"):
        lc.randomized_svd(A, 41)


def test_unsorted_and_duplicate_indices_are_handled_and_input_untouched():
    rng = np.random.default_rng(3)
    rows = np.sort(rng.integers(0, 200, size=3000))
    cols = rng.integers(0, 50, size=3000)  # random order within a row, with repeats
    vals = rng.standard_normal(3000)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=200))]
    raw = sp.csr_matrix((vals, cols, indptr), shape=(200, 50))  # taken as given
    assert not raw.has_sorted_indices
    assert raw.nnz > sp.coo_matrix((vals, (rows, cols)), shape=(200, 50)).tocsr().nnz
    before = (raw.data.copy(), raw.indices.copy(), raw.indptr.copy())
    got = lc.randomized_svd(raw, 5, seed=0)
    summed = sp.coo_matrix((vals, (rows, cols)), shape=(200, 50)).toarray()  # SciPy's meaning
    want = lc.randomized_svd(summed, 5, seed=0, mixed_precision=False)
    assert_close(got.S, want.S, np.float64, factor=10)
    for after, original in zip((raw.data, raw.indices, raw.indptr), before):
        np.testing.assert_array_equal(after, original)


def test_same_bits_whatever_the_thread_count():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    A = sparse_matrix(30000, 300, 0.02, np.float64, seed=11)  # many chunks of rows
    results = []
    for threads in (1, 2, 3):
        with threadpoolctl.threadpool_limits(threads):
            results.append(lc.randomized_svd(A, 10, seed=5, center=True))
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            np.testing.assert_array_equal(a, b)


def test_dense_only_functions_refuse_sparse_input_clearly():
    A = sp.eye(5, format="csr")
    for f in (lc.rank, lc.erank, lc.stable_rank, lc.entropy_rank, lc.singular_values):
        with pytest.raises(TypeError, match="randomized_svd and lowrank_core.pca take sparse"):
            f(A)
    with pytest.raises(TypeError, match="linear operator"):
        lc.singular_values(aslinearoperator(np.eye(3)))


def test_pca_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 40)) @ np.diag(np.geomspace(1e3, 1e-6, 40)) + 3.0
    got = lc.pca(X, 5, seed=0)  # randomized, against scikit-learn's exact solver
    want = sklearn.PCA(5, svd_solver="full").fit(X)
    np.testing.assert_allclose(got.explained_variance_, want.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(got.explained_variance_ratio_, want.explained_variance_ratio_,
                               rtol=1e-8)
    np.testing.assert_allclose(got.singular_values_, want.singular_values_, rtol=1e-8)
    np.testing.assert_allclose(got.mean_, want.mean_, rtol=1e-12)
    # Components agree up to sign.
    signs = np.sign(np.sum(got.components_ * want.components_, axis=1))
    np.testing.assert_allclose(got.components_ * signs[:, None], want.components_, atol=1e-7)
    np.testing.assert_allclose(np.abs(got.transform(X)), np.abs(want.transform(X)), atol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "sparse", "operator"])
def test_pca_matches_the_reference(kind):
    A = sparse_matrix(900, 70, 0.05, np.float64, seed=6)
    X = {"dense": A.toarray(), "sparse": A, "operator": aslinearoperator(A)}[kind]
    got, want = lc.pca(X, 4, seed=2), lc.reference.pca(X, 4, seed=2)
    for field in ("singular_values_", "explained_variance_", "mean_", "components_"):
        assert_close(getattr(got, field), getattr(want, field), np.float64, factor=100)
    np.testing.assert_allclose(got.explained_variance_ratio_, want.explained_variance_ratio_,
                               rtol=1e-9, equal_nan=kind == "operator")


def test_pca_of_sparse_data_without_densifying():
    A = sparse_matrix(3000, 200, 0.02, np.float64, seed=4)
    got = lc.pca(A, 6, seed=1)
    D = A.toarray()
    C = D - D.mean(axis=0)
    s = np.linalg.svd(C, compute_uv=False)
    np.testing.assert_allclose(got.singular_values_, s[:6], rtol=1e-9)
    np.testing.assert_allclose(got.explained_variance_ratio_, s[:6] ** 2 / np.sum(s ** 2),
                               rtol=1e-9)
    np.testing.assert_allclose(got.transform(A), C @ got.components_.T, atol=1e-9)
    with pytest.raises(ValueError, match="at least 2 rows"):
        lc.pca(np.ones((1, 3)), 1)


def test_import_does_not_import_scipy_sparse_for_dense_work():
    code = ("import sys, numpy as np, lowrank_core as lc; "
            "lc.randomized_svd(np.eye(20), 2, seed=0); "
            "print('scipy.sparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_matrix_larger_than_memory_when_dense():
    # 10^6 x 10^5 float64 would take 800 GB dense; with 10^7 stored values the call
    # needs O(nnz + (m + n) l) memory.
    rng = np.random.default_rng(0)
    m, n, nnz = 10**6, 10**5, 10**7
    rows = np.sort(rng.integers(0, m, size=nnz, dtype=np.int64)).astype(np.int32)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=m))].astype(np.int32)
    cols = rng.integers(0, n, size=nnz, dtype=np.int64).astype(np.int32)
    values = rng.standard_normal(nnz)
    values[:n] += 50.0 * (np.arange(n) < 10)  # a few heavy entries: a clear top
    A = sp.csr_matrix((values, cols, indptr), shape=(m, n))
    got = lc.randomized_svd(A, 5, seed=0, power_iters=2)
    assert got.U.shape == (m, 5) and got.Vh.shape == (5, n)
    assert np.all(np.isfinite(got.S)) and np.all(np.diff(got.S) <= 0)
    # The singular values are those of A: A^T U = Vh^T S for the top triplet.
    top = A.T @ got.U[:, 0]
    np.testing.assert_allclose(np.linalg.norm(top), got.S[0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["csr", "coo-duplicates", "operator"])
def test_estimate_error_of_sparse_and_operator_input(kind):
    A = sparse_matrix(1500, 120, 0.05, np.float64, seed=12)
    D = A.toarray()
    approx = lc.randomized_svd(D, 6, seed=0)
    if kind == "csr":
        source = A
    elif kind == "coo-duplicates":  # each value split in two stored halves
        coo = A.tocoo()
        source = sp.coo_matrix((np.r_[coo.data / 2, coo.data / 2], (np.r_[coo.row, coo.row],
                                np.r_[coo.col, coo.col])), shape=A.shape)
    else:
        source = aslinearoperator(A)
    dense = lc.estimate_error(D, approx, ord=2, seed=3)
    got = lc.estimate_error(source, approx, ord=2, seed=3)
    true = np.linalg.norm(D - reconstruct(approx), 2)
    np.testing.assert_allclose(float(got), float(dense), rtol=1e-9)  # same probes and steps
    assert float(got) <= true * (1 + 1e-10) and got.bound >= true
    if kind == "operator":
        with pytest.raises(ValueError, match="needs A's entries"):
            lc.estimate_error(source, approx, ord="fro")
    else:
        fro = lc.estimate_error(source, approx, ord="fro")
        np.testing.assert_allclose(float(fro), np.linalg.norm(D - reconstruct(approx)),
                                   rtol=1e-10)
    # An approximation whose error is tiny next to ||A||: the exact summation.
    exact = lc.svd(D, 120)
    tiny = lc.estimate_error(A, exact, ord="fro")
    assert float(tiny) <= 1e-12 * np.linalg.norm(D)


def test_gpu_sparse_input_is_a_clear_type_error():
    class FakeCupyxCsr:  # what cupyx.scipy.sparse's types look like to the check
        shape, dtype = (3, 3), np.dtype(np.float64)

    FakeCupyxCsr.__module__ = "cupyx.scipy.sparse._csr"
    with pytest.raises(TypeError, match=r"cupyx.scipy.sparse matrix .*A.get\(\)"):
        lc.randomized_svd(FakeCupyxCsr(), 2)
