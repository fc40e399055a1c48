"""Principal component analysis by the randomized SVD of the implicitly centred matrix."""

from __future__ import annotations

import numpy as np

from . import _checks, _sparse
from ._sparse import PCAResult
from ._svd import randomized_svd

__all__ = ["PCAResult", "pca"]


def pca(X, k, *, oversamples=10, power_iters="auto", seed=None):
    """The top-k principal components of the rows of ``X``, never centring a copy.

    Parameters
    ----------
    X : array_like, scipy.sparse matrix or linear operator, shape (m, n)
        Samples as rows; not modified. Sparse input is never densified (see
        :func:`randomized_svd`); an operator costs one more ``rmatmat`` call (the
        column means).
    k : int
        Number of components, ``1 <= k <= min(m, n)``.
    oversamples, power_iters, seed
        As in :func:`randomized_svd`, which computes the SVD of ``X - 1 mu^T``
        (``center=True``) in ``X``'s precision.

    Returns
    -------
    PCAResult
        ``components_`` (k, n), ``explained_variance_`` (``S**2 / (m - 1)``),
        ``explained_variance_ratio_`` (over the total variance, computed exactly
        without densifying; not available for an operator, where it is NaN),
        ``singular_values_``, ``mean_``, ``n_samples_``: scikit-learn's names and
        meanings (``PCA(svd_solver="randomized")``), with components signed by this
        package's convention (the largest entry of each column of U positive)
        rather than scikit-learn's ``svd_flip``.
    """
    if _sparse.is_sparse(X) or _sparse.is_operator(X):
        dtype = _sparse._float_dtype(X.dtype, "X")
        m = _sparse._check_shape(X.shape, "X")[0]
        mean = (_sparse.sparse_column_means(X, dtype) if _sparse.is_sparse(X)
                else _sparse.operator_column_means(X, dtype))
        dense = None
    else:
        dense = _checks.as_float_array(X, "X", ndim=2)
        if _checks.is_cupy(dense):
            raise TypeError("pca takes NumPy arrays, scipy.sparse matrices and operators; "
                            "for CuPy use randomized_svd(X, k, center=True)")
        dtype, m = dense.dtype, dense.shape[0]
        mean = dense.mean(axis=0, dtype=np.float64).astype(dtype)
    if m < 2:
        raise ValueError(f"X must have at least 2 rows (samples) for variances, got {m}")
    source = dense if dense is not None else X
    _, S, Vh = randomized_svd(source, k, oversamples=oversamples, power_iters=power_iters,
                              seed=seed, mean=mean)
    variance = S.astype(np.float64) ** 2 / (m - 1)
    if _sparse.is_operator(X):
        ratio = np.full(variance.shape, np.nan)
    else:
        total = _sparse.total_variance(source, mean)
        ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCAResult(components_=Vh, explained_variance_=variance.astype(dtype),
                     explained_variance_ratio_=ratio.astype(dtype), singular_values_=S,
                     mean_=mean, n_samples_=m)
