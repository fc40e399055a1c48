"""SVD routines in plain NumPy: the readable ground truth for the core."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .._results import SVDResult
from ._philox import gaussian_sketch

__all__ = ["randomized_svd", "sign_convention", "singular_values", "svd"]


def sign_convention(U, Vh):
    """Flip each triplet so the largest-magnitude entry of U's column is positive."""
    rows = np.argmax(np.abs(U), axis=0)  # first index on ties, as the core
    signs = np.where(U[rows, np.arange(U.shape[1])] < 0, -1, 1).astype(U.dtype)
    return U * signs, Vh * signs[:, None]


def _finite(A, name="A"):
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or Inf")


def svd(A, k):
    """Top-k SVD from ``numpy.linalg.svd``; see :func:`lowrank_core.svd`."""
    A = _checks.as_float_array(A, "A", ndim=2)
    k = _checks.check_k(k, A.shape)
    _finite(A)
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    U, Vh = sign_convention(U[:, :k], Vh[:k])
    return SVDResult(U, S[:k], Vh)


def randomized_svd(A, k, *, oversamples=10, power_iters="auto", seed=None, sketch=None,
                   center=False, mean=None):
    """Halko–Martinsson–Tropp; see :func:`lowrank_core.randomized_svd`. Sparse and
    operator ``A`` and the centring by their products, as SciPy computes them."""
    from .._sparse import is_operator, is_sparse

    if is_sparse(A) or is_operator(A):
        from scipy.sparse.linalg import aslinearoperator

        dtype = np.dtype(np.float32 if np.dtype(A.dtype) == np.float32 else np.float64)
        op = aslinearoperator(A)
        matmat, rmatmat = op.matmat, op.rmatmat
        if is_sparse(A):
            _finite(np.asarray(A.tocsr().data), "A")
    else:
        A = _checks.as_float_array(A, "A", ndim=2)
        _finite(A)
        dtype = A.dtype
        matmat, rmatmat = (lambda X: A @ X), (lambda Y: A.T @ Y)
    shape = A.shape
    k = _checks.check_k(k, shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, shape)
    columns = _checks.sketch_columns(k, oversamples, shape)
    if center:
        mean = (rmatmat(np.ones((shape[0], 1), dtype=dtype))[:, 0] / shape[0]).astype(dtype)
    if mean is not None:  # A - 1 mean^T by its products
        mean = np.asarray(mean, dtype=dtype)
        plain_matmat, plain_rmatmat = matmat, rmatmat
        matmat = lambda X: plain_matmat(X) - np.outer(np.ones(shape[0], dtype), mean @ X)  # noqa: E731
        rmatmat = lambda Y: plain_rmatmat(Y) - np.outer(mean, Y.sum(axis=0))  # noqa: E731
    if sketch is None:
        omega = gaussian_sketch(shape[1], columns, _checks.check_seed(seed), dtype)
    else:
        omega = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=dtype)
        if omega.shape != (shape[1], columns):
            raise ValueError(f"sketch must have shape {(shape[1], columns)}, got {omega.shape}")
        _finite(omega, "sketch")
    Q, _ = np.linalg.qr(matmat(omega))  # 2. range sample, orthonormalised
    for _ in range(power_iters):  # 3. power iterations
        Z, _ = np.linalg.qr(rmatmat(Q))
        Q, _ = np.linalg.qr(matmat(Z))
    Ub, S, Vh = np.linalg.svd(rmatmat(Q).T, full_matrices=False)  # 4. small SVD of Q^T A
    U, Vh = sign_convention(Q @ Ub[:, :k], Vh[:k])  # 5. lift back
    return SVDResult(U, S[:k], Vh)


def singular_values(A):
    """``numpy.linalg.svd(A, compute_uv=False)``; see :func:`lowrank_core.singular_values`."""
    A = _checks.as_float_array(A, "A", min_ndim=2)
    _finite(A)
    return np.linalg.svd(A, compute_uv=False)
