"""Rank measures in plain NumPy: the readable ground truth for the core."""

from __future__ import annotations

import numpy as np

from .. import _checks
from ._svd import _finite, _sketch_columns, grow_block, singular_values

__all__ = ["entropy_rank", "erank", "randomized_rank", "rank", "relative_error",
           "stable_rank"]


def rank(A, tol=None, *, rtol=None, hermitian=False, method="exact", seed=None):
    """``numpy.linalg.matrix_rank``'s algorithm; see :func:`lowrank_core.rank`."""
    if tol is not None and rtol is not None:
        raise ValueError("tol and rtol cannot both be given: tol is absolute, rtol relative")
    method = _checks.check_choice(method, "method", ("exact", "randomized"))
    A = _checks.as_float_array(A, "A")
    if method == "randomized":
        found = randomized_rank(A, tol, rtol, seed)[0]
        if found is not None:
            return found
    if not np.isfinite(A).all():
        raise ValueError("A contains NaN or Inf")
    if A.ndim < 2:
        return int(not np.all(A == 0))
    if hermitian and A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square when hermitian=True, got shape {A.shape}")
    if hermitian:
        S = np.abs(np.linalg.eigvalsh(A))
    else:
        S = np.linalg.svd(A, compute_uv=False)
    if tol is None:
        if rtol is None:
            rtol = max(A.shape[-2:]) * np.finfo(S.dtype).eps
        else:
            rtol = np.asarray(rtol)[..., np.newaxis]
        tol = S.max(axis=-1, keepdims=True) * rtol
    else:
        tol = np.asarray(tol)[..., np.newaxis]
    ranks = np.count_nonzero(S > tol, axis=-1)
    return int(ranks) if np.ndim(ranks) == 0 else ranks.astype(np.int64)


def randomized_rank(A, tol=None, rtol=None, seed=None, block_size=16):
    """``(rank or None, basis columns, bound)``: the randomized rank where certified.

    A basis Q grows (blocks of ``block_size``, then doubling) until the probes of the
    next block bound ``||A - Q Q^T A||_2`` with the rounding margin by 0.9 of the threshold; then the
    singular values s_i of ``B = Q^T A`` bracket A's,
    ``s_i <= sigma_i(A) <= sqrt(s_i^2 + bound^2)``, and the count is certified when
    every s_i clears the threshold, either way, by a margin for rounding.
    """
    if A.ndim != 2:
        raise ValueError(f"method='randomized' takes one matrix (2-D A), got shape {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError("A contains NaN or Inf")
    m, n = A.shape
    seed = _checks.check_seed(seed)
    cap = min(m, n) // 2
    eps = float(np.finfo(A.dtype).eps)
    if tol is not None:
        threshold = lambda sigma: float(tol)  # noqa: E731
    else:
        ratio = max(m, n) * eps if rtol is None else float(rtol)
        threshold = lambda sigma: ratio * sigma  # noqa: E731
    def margin(sigma):  # rounding of the s_i and of NumPy's own singular values
        return 8 * eps * np.sqrt(min(m, n)) * sigma

    if cap < 1 or (tol is not None and float(tol) < 0):
        return None, 0, np.inf
    draw, _ = _sketch_columns(A, seed, None)
    Q, B = np.zeros((m, 0), A.dtype), np.zeros((0, n), A.dtype)
    largest = 0.0
    while True:
        width = min(block_size if Q.shape[1] == 0 else max(block_size, Q.shape[1]),
                    min(m, n) - Q.shape[1])
        before = Q.shape[1]
        Q, B, bound, stopped = grow_block(
            A, Q, B, draw(width), 0,
            lambda b: b + margin(largest) <= 0.9 * threshold(largest)
            or (tol is not None and b == 0))
        if stopped:
            break
        largest = max(largest, float(np.linalg.norm(B[before:].astype(np.float64), 2)))
        if Q.shape[1] >= cap:
            return None, Q.shape[1], bound
    s = np.linalg.svd(B, compute_uv=False).astype(np.float64)
    s1 = s[0] if s.size else 0.0
    high_sigma = np.hypot(s1, bound)
    low, high = threshold(s1), threshold(high_sigma)
    slack = margin(high_sigma)
    if tol is None and not s1 > 0:
        return None, Q.shape[1], bound
    above = s > high + slack
    below = np.hypot(s, bound) + slack < low
    if not np.all(above | below) or not bound + slack < low:
        return None, Q.shape[1], bound
    return int(np.count_nonzero(above)), Q.shape[1], bound


def _normalised_spectrum(A):
    """Singular values divided by the largest (every measure is scale-invariant, and
    this keeps squares from overflowing or underflowing), and a mask of the
    matrices that are not zero."""
    s = singular_values(A).astype(np.float64)
    largest = s.max(axis=-1, keepdims=True, initial=0.0)
    nonzero = largest[..., 0] > 0
    return s / np.where(largest > 0, largest, 1.0), nonzero


def _scalar(values):
    return float(values) if np.ndim(values) == 0 else values


def erank(A):
    """``(sum s)^2 / sum s^2``, 0 for a zero matrix; see :func:`lowrank_core.erank`."""
    s, nonzero = _normalised_spectrum(A)
    squares = np.where(nonzero, (s**2).sum(axis=-1), 1.0)
    return _scalar(np.where(nonzero, s.sum(axis=-1) ** 2 / squares, 0.0))


def stable_rank(A):
    """``||A||_F^2 / sigma_1^2``, 0 for a zero matrix; see :func:`lowrank_core.stable_rank`."""
    s, nonzero = _normalised_spectrum(A)
    return _scalar(np.where(nonzero, (s**2).sum(axis=-1), 0.0))


def entropy_rank(A):
    """``exp(-sum p log p)``, ``p = s / sum s``; see :func:`lowrank_core.entropy_rank`."""
    s, nonzero = _normalised_spectrum(A)
    total = np.where(nonzero, s.sum(axis=-1), 1.0)[..., np.newaxis]
    p = s / total
    terms = p * np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
    return _scalar(np.where(nonzero, np.exp(-terms.sum(axis=-1)), 0.0))


def relative_error(A, B, ord=2):
    """``||A - B|| / ||A||`` with ``numpy.linalg.norm``; see :func:`lowrank_core.relative_error`."""
    if ord not in (2, "fro") or isinstance(ord, bool):
        raise ValueError(f"ord must be 2 or 'fro', got {ord!r}")
    A = _checks.as_float_array(A, "A", ndim=2)
    B = _checks.as_float_array(B, "B", ndim=2)
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A {A.shape}, got {B.shape}")
    _finite(A, "A")
    _finite(B, "B")
    common = np.result_type(A, B)
    A, B = A.astype(common), B.astype(common)
    if A.size == 0:
        return 0.0
    numerator = float(np.linalg.norm(A - B, ord))
    denominator = float(np.linalg.norm(A, ord))
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else float("inf")
    return numerator / denominator
