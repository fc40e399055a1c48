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


def randomized_svd(A, k, *, oversamples=10, power_iters="auto", seed=None, sketch=None):
    """Halko–Martinsson–Tropp; see :func:`lowrank_core.randomized_svd`."""
    A = _checks.as_float_array(A, "A", ndim=2)
    k = _checks.check_k(k, A.shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, A.shape)
    columns = _checks.sketch_columns(k, oversamples, A.shape)
    _finite(A)
    if sketch is None:
        omega = gaussian_sketch(A.shape[1], columns, _checks.check_seed(seed), A.dtype)
    else:
        omega = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=A.dtype)
        if omega.shape != (A.shape[1], columns):
            raise ValueError(f"sketch must have shape {(A.shape[1], columns)}, got {omega.shape}")
        _finite(omega, "sketch")
    Q, _ = np.linalg.qr(A @ omega)  # 2. range sample, orthonormalised
    for _ in range(power_iters):  # 3. power iterations
        Z, _ = np.linalg.qr(A.T @ Q)
        Q, _ = np.linalg.qr(A @ Z)
    Ub, S, Vh = np.linalg.svd(Q.T @ A, full_matrices=False)  # 4. small SVD
    U, Vh = sign_convention(Q @ Ub[:, :k], Vh[:k])  # 5. lift back
    return SVDResult(U, S[:k], Vh)


def singular_values(A):
    """``numpy.linalg.svd(A, compute_uv=False)``; see :func:`lowrank_core.singular_values`."""
    A = _checks.as_float_array(A, "A", min_ndim=2)
    _finite(A)
    return np.linalg.svd(A, compute_uv=False)
