"""PCA as the randomized SVD of the centred matrix; see :func:`lowrank_core.pca`."""

from __future__ import annotations

import numpy as np

from .._sparse import PCAResult, is_operator, is_sparse
from ._svd import randomized_svd


def pca(X, k, *, oversamples=10, power_iters="auto", seed=None):
    """:func:`lowrank_core.pca` with the centring and the variances written out."""
    if is_sparse(X) or is_operator(X):
        dtype = np.dtype(np.float32 if np.dtype(X.dtype) == np.float32 else np.float64)
        m = X.shape[0]
        ones = np.ones((m, 1))
        mean64 = (np.asarray(X.T @ ones) if is_sparse(X) else X.rmatmat(ones)).ravel() / m
    else:
        X = np.asarray(X)
        dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
        m = X.shape[0]
        mean64 = X.mean(axis=0, dtype=np.float64)
    if m < 2:
        raise ValueError(f"X must have at least 2 rows (samples) for variances, got {m}")
    mean = mean64.astype(dtype)
    _, S, Vh = randomized_svd(X, k, oversamples=oversamples, power_iters=power_iters,
                              seed=seed, mean=mean)
    variance = S.astype(np.float64) ** 2 / (m - 1)
    if is_operator(X):
        ratio = np.full(variance.shape, np.nan)
    else:
        dense = X.toarray() if is_sparse(X) else X  # the reference may densify
        total = float(np.var(np.asarray(dense, dtype=np.float64), axis=0, ddof=1).sum())
        ratio = variance / total if total > 0 else np.zeros_like(variance)
    return PCAResult(components_=Vh, explained_variance_=variance.astype(dtype),
                     explained_variance_ratio_=ratio.astype(dtype), singular_values_=S,
                     mean_=mean, n_samples_=m)
