"""Matrices known by their nonzeros or their products: scipy.sparse input and
LinearOperator-like input to :func:`randomized_svd`, implicit centring, and :func:`pca`.

scipy.sparse is recognised by its module, so that dense calls never import it. The
CPU core reads CSR (and CSC as the CSR of the transpose) where the arrays lie: other
formats (COO, BSR, DOK, LIL, DIA) are converted to CSR, a copy of O(nnz) memory,
never a dense one.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from . import _checks


def is_sparse(A) -> bool:
    """Whether ``A`` is a scipy.sparse array or matrix (without importing SciPy)."""
    module = type(A).__module__
    return module.startswith("scipy.sparse") and hasattr(A, "tocsr") and hasattr(A, "nnz")


def is_operator(A) -> bool:
    """Whether ``A`` is a matrix known only by its products: a
    ``scipy.sparse.linalg.LinearOperator``, or any object with ``matmat``, ``rmatmat``,
    ``shape`` and ``dtype`` that is not an array."""
    if isinstance(A, np.ndarray) or _checks.is_cupy(A) or is_sparse(A):
        return False
    return all(hasattr(A, name) for name in ("matmat", "rmatmat", "shape", "dtype"))


def refuse_sparse(A, name: str) -> None:
    """The TypeError of the functions that need a dense array, for sparse or operator
    input, saying which functions take it."""
    if type(A).__module__.startswith("cupyx.scipy.sparse"):
        raise TypeError(
            f"{name} is a cupyx.scipy.sparse matrix ({type(A).__name__}): the CUDA core has "
            "no sparse products yet; pass "
            f"{name}.get() (a scipy.sparse copy on the host) to randomized_svd or pca")
    if is_sparse(A) or is_operator(A):
        kind = "a scipy.sparse matrix" if is_sparse(A) else "a linear operator"
        raise TypeError(
            f"{name} is {kind} ({type(A).__name__}), and this function needs a dense "
            "array: lowrank_core.randomized_svd and lowrank_core.pca take sparse "
            "matrices and operators without densifying; pass "
            f"{name}.toarray() to densify (memory m * n)")


def _float_dtype(dtype, name: str):
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    if dtype.kind == "f" and dtype.itemsize == 8:
        return np.dtype(np.float64)
    raise TypeError(f"{name} has dtype {dtype}; expected a real floating, integer or bool "
                    "matrix")


def _check_shape(shape, name: str):
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def _csr_arrays(matrix, dtype):
    """(indptr, indices, data) of a CSR (or CSC) matrix, read where they lie when they
    already have the core's types, else converted copies; the caller's arrays are
    never modified. Both index arrays get one width (int32 or int64)."""
    index_type = np.int64 if (matrix.indptr.dtype == np.int64 or
                              matrix.indices.dtype == np.int64) else np.int32
    indptr = np.ascontiguousarray(matrix.indptr, dtype=index_type)
    indices = np.ascontiguousarray(matrix.indices, dtype=index_type)
    data = np.ascontiguousarray(matrix.data, dtype=dtype)
    return indptr, indices, data


def sparse_randomized_svd(A, options, sketch, mean):
    """The core's randomized SVD of scipy.sparse ``A`` (checked by the caller's
    options): CSR as it is, CSC as the CSR of A^T, other formats through CSR."""
    from ._core import sparse_randomized_svd as core

    m, n = _check_shape(A.shape, "A")
    dtype = _float_dtype(A.dtype, "A")
    fmt = getattr(A, "format", None)
    of_a = fmt != "csc"
    matrix = A if fmt in ("csr", "csc") else A.tocsr()
    indptr, indices, data = _csr_arrays(matrix, dtype)
    rows, cols = (m, n) if of_a else (n, m)
    try:
        return core(indptr, indices, data, rows, cols, of_a, options, sketch, mean)
    except ValueError as error:
        if "NaN or Inf" in str(error):
            raise ValueError("A has NaN or Inf among its stored values (or mean has); "
                             "lowrank_core needs finite values") from None
        raise


def sparse_column_means(A, dtype):
    """Column means of scipy.sparse ``A`` in float64, then ``dtype``."""
    sums = np.asarray(A.sum(axis=0, dtype=np.float64)).ravel()
    return (sums / max(A.shape[0], 1)).astype(dtype)


class _CheckedProducts:
    """The operator's products as the core calls them: each result checked (shape,
    finite values) and converted to the operator's float dtype, Fortran order, with
    a ValueError naming the operator and the call when it is wrong. Counts the calls."""

    def __init__(self, op, shape, dtype):
        self.op, self.shape, self.dtype = op, shape, dtype
        self.calls = {"matmat": 0, "rmatmat": 0}

    def _call(self, which, X, rows):
        self.calls[which] += 1
        out = getattr(self.op, which)(X)
        if hasattr(out, "toarray") and is_sparse(out):
            out = out.toarray()
        try:
            out = np.asarray(out)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the operator's {which} returned {type(out).__name__}, which is "
                             f"not an array ({error})") from None
        expected = (rows, X.shape[1])
        if out.ndim == 1 and X.shape[1] == 1:
            out = out.reshape(rows, 1)
        if out.shape != expected:
            raise ValueError(f"the operator's {which} returned shape {out.shape} for a block of "
                             f"{X.shape[1]} columns; expected {expected}")
        if out.dtype.kind not in "fiub":
            raise ValueError(f"the operator's {which} returned dtype {out.dtype}; expected a "
                             f"real array ({self.dtype.name})")
        out = np.asfortranarray(out, dtype=self.dtype)
        if not np.isfinite(out).all():
            raise ValueError(f"the operator's {which} returned NaN or Inf")
        return out

    def matmat(self, X):
        return self._call("matmat", X, self.shape[0])

    def rmatmat(self, Y):
        return self._call("rmatmat", Y, self.shape[1])


def operator_randomized_svd(A, options, sketch, mean):
    """The core's randomized SVD of an operator ``A`` (matmat/rmatmat), calling it
    back one block of l columns at a time."""
    from ._core import operator_randomized_svd as core

    m, n = _check_shape(A.shape, "A")
    dtype = _float_dtype(A.dtype, "A")
    products = _CheckedProducts(A, (m, n), dtype)
    result = core(products.matmat, products.rmatmat, m, n, dtype.name, options, sketch, mean)
    operator_randomized_svd.last_calls = dict(products.calls)
    return result


operator_randomized_svd.last_calls = {}


def operator_column_means(A, dtype):
    """Column means of an operator: A^T 1 / m, one rmatmat call."""
    m, n = _check_shape(A.shape, "A")
    ones = np.ones((m, 1), dtype=dtype, order="F")
    sums = _CheckedProducts(A, (m, n), dtype).rmatmat(ones)
    return (sums[:, 0].astype(np.float64) / max(m, 1)).astype(dtype)


@dataclass(frozen=True)
class PCAResult:
    """The principal components of ``X`` as scikit-learn's PCA names them.

    ``components_`` (k, n): the principal axes, rows of Vh; ``explained_variance_``
    (k,): ``S**2 / (m - 1)``; ``explained_variance_ratio_`` (k,): each over the total
    variance ``sum_j var(X[:, j])`` (computed exactly, without densifying);
    ``singular_values_`` (k,); ``mean_`` (n,): the column means subtracted;
    ``n_samples_``: m. ``transform(X)`` gives ``(X - mean_) @ components_.T``.
    """

    components_: np.ndarray
    explained_variance_: np.ndarray
    explained_variance_ratio_: np.ndarray
    singular_values_: np.ndarray
    mean_: np.ndarray
    n_samples_: int

    def transform(self, X):
        """``(X - mean_) @ components_.T`` for dense or sparse X, without densifying."""
        projected = X @ self.components_.T
        projected = np.asarray(projected)
        return projected - (self.mean_ @ self.components_.T)[None, :]


def total_variance(X, mean):
    """``sum_j var(X[:, j])`` with ddof=1, for dense or sparse X, in float64."""
    m = X.shape[0]
    if m < 2:
        return 0.0
    if is_sparse(X):
        squares = float(X.multiply(X).sum(dtype=np.float64)) if hasattr(X, "multiply") else \
            float((X.data.astype(np.float64) ** 2).sum())
        mean64 = np.asarray(mean, dtype=np.float64)
        return max(squares - m * float(mean64 @ mean64), 0.0) / (m - 1)
    return float(np.var(X, axis=0, ddof=1, dtype=np.float64).sum())


def estimate_error_by_products(A, U, S, Vh, spectral, probes, power_steps, seed):
    """:func:`lowrank_core.estimate_error` for sparse or operator ``A``: the same
    estimate by products with ``A`` (never densified), in float64.

    ``ord=2``: the same probes (Philox stream 4 of the seed) and power steps as the
    dense path, each step one product with A and one with A^T. ``"fro"`` (sparse
    only: it needs A's entries): ``||A||_F^2 - 2 <A, U S Vh> + ||U S Vh||_F^2`` from
    one product with A; where that leaves less than a thousandth of ``||A||_F``
    (cancellation would cost digits), the residual is summed exactly instead, a block
    of rows at a time (O(rows n) memory)."""
    from ._results import ErrorEstimate
    from .reference._philox import gaussian_stream
    from .reference._svd import ERROR_PROBE_STREAM, PROBE_FACTOR

    m, n = A.shape
    U = U.astype(np.float64)
    SVh = S.astype(np.float64)[:, None] * Vh.astype(np.float64)
    if is_sparse(A):
        A = A.tocsr()
        matmat, rmatmat = (lambda X: np.asarray(A @ X)), (lambda Y: np.asarray(A.T @ Y))
    else:
        products = _CheckedProducts(A, (m, n), np.dtype(np.float64))
        matmat, rmatmat = products.matmat, products.rmatmat
    if not spectral:
        if not is_sparse(A):
            raise ValueError("estimate_error with ord='fro' needs A's entries; for a linear "
                             "operator use ord=2")
        A = A.copy()
        A.sum_duplicates()
        data = A.data.astype(np.float64)
        if not np.isfinite(data).all():
            raise ValueError("A has NaN or Inf among its stored values")
        a2 = float(data @ data)
        cross = float(np.sum(matmat(SVh.T) * U))
        b2 = float(np.sum((U.T @ U) * (SVh @ SVh.T)))
        squared = a2 - 2 * cross + b2
        if squared < 1e-6 * a2:
            squared, rows = 0.0, max(1, (1 << 22) // max(n, 1))
            for r0 in range(0, m, rows):
                block = A[r0:r0 + rows].toarray().astype(np.float64) - U[r0:r0 + rows] @ SVh
                squared += float(np.sum(block * block))
        value = float(np.sqrt(max(squared, 0.0)))
        return ErrorEstimate(value, bound=value, ord="fro", probes=probes)

    def residual(X):
        return matmat(X) - U @ (SVh @ X)

    def residual_t(Y):
        return rmatmat(Y) - SVh.T @ (U.T @ Y)

    r = min(probes, n)
    W = gaussian_stream(seed, 0, n * r, ERROR_PROBE_STREAM).reshape(r, n).T.astype(np.float64)
    Y = residual(W)
    bound = PROBE_FACTOR * float(np.linalg.norm(Y, axis=0).max())
    if power_steps == 0:
        Y = residual(np.linalg.qr(W)[0])
    for _ in range(power_steps):
        if not np.any(Y):
            break
        Y = residual(np.linalg.qr(residual_t(Y))[0])
    value = float(np.linalg.norm(Y, 2))
    return ErrorEstimate(value, bound=max(bound, value), ord=2, probes=probes)
