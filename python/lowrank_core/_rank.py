"""How much rank a matrix carries: numerical rank, effective rank and relatives,
and the relative error of an approximation."""

from __future__ import annotations

import numpy as np

from . import _checks, _core
from ._backend import backend_for

__all__ = ["entropy_rank", "erank", "rank", "relative_error", "stable_rank"]


def rank(A, tol=None, *, rtol=None, hermitian=False, method="exact", seed=None):
    """Numerical rank, with exactly the semantics of ``numpy.linalg.matrix_rank``.

    Parameters
    ----------
    A : array_like, shape (..., M, N), or 1-D, or 0-D
        Matrix or stack of matrices. 1-D (and 0-D) input has rank 1 unless all
        zero, then 0. float32 is computed in float32 (with float32's eps), other
        real dtypes in float64.
    tol : float or array_like, optional
        Absolute threshold: singular values strictly above ``tol`` count.
        Broadcast against the stack's batch shape.
    rtol : float or array_like, optional
        Relative threshold: ``tol = S.max() * rtol``. Default (neither given):
        ``rtol = max(M, N) * eps``. ``tol`` and ``rtol`` cannot both be given.
    hermitian : bool, default False
        Treat ``A`` as symmetric, reading its lower triangle; the absolute
        eigenvalues replace the singular values (cheaper).
    method : {"exact", "randomized"}, default "exact"
        ``"exact"``: all singular values, as NumPy. ``"randomized"`` (one matrix,
        not ``hermitian``), for large matrices of low rank: an orthonormal basis Q
        of A's range is grown (blocks of 16 columns, then doubling the basis) until
        the Gaussian probes of the next block certify ``||A - Q Q^T A||_2 <= bound``
        with bound plus a rounding margin (below) at most 0.9 of the threshold
        (Halko–Martinsson–Tropp, Lemma 4.1 with r probes and alpha = 10^(16/r):
        wrong with probability at most 1e-16 per check); then the exact singular
        values s_i of the small ``B = Q^T A`` bracket A's,
        ``s_i <= sigma_i(A) <= sqrt(s_i^2 + bound^2)``. The answer is returned from
        there only when every s_i lies on one side of the threshold (the default's
        ``S.max()`` bracketed the same way) with a margin of
        ``8 eps sqrt(min(M, N)) sigma_1`` for rounding: then it is the count of A's
        singular values above the threshold, which is NumPy's answer unless one of
        NumPy's own computed values lies within its rounding of the threshold.
        Otherwise (a singular value near the threshold, no gap, or a basis that
        would pass ``min(M, N) / 2`` columns) it falls back to ``"exact"``, so the
        answer is always NumPy's rule; only the time differs. A CuPy ``A`` always
        takes the exact path (the CUDA core has no randomized rank yet).
    seed : int or None, default None
        Seed of the Philox sketch for ``method="randomized"``.

    Returns
    -------
    int or numpy.ndarray of int
        A Python int for one matrix; an int64 array of the broadcast batch shape
        for a stack.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> lc.rank(np.outer([1.0, 2.0, 3.0], [1.0, 1.0]))
    1
    """
    if tol is not None and rtol is not None:
        raise ValueError("tol and rtol cannot both be given: tol is absolute, rtol relative")
    if type(A).__module__.startswith("dask"):  # never computed whole, silently
        from ._dask import not_for_dask
        raise not_for_dask("rank", A)
    method = _checks.check_choice(method, "method", ("exact", "randomized"))
    A = _checks.as_float_array(A, "A")
    if method == "randomized" and not _checks.is_cupy(A):
        found = _randomized_rank(A, tol, rtol, hermitian, seed)
        if found is not None:
            return found
    xp = _checks.array_module(A)
    if A.ndim < 2:
        if not bool(xp.isfinite(A).all()):
            raise ValueError("A contains NaN or Inf")
        return int(not bool((A == 0).all()))
    m, n = A.shape[-2:]
    if hermitian and m != n:
        raise ValueError(f"A must be square when hermitian=True, got shape {A.shape}")
    threshold, name = (tol, "tol") if tol is not None else (rtol, "rtol")
    batch_shape = A.shape[:-2]
    if threshold is not None:
        if _checks.is_cupy(threshold):  # a few numbers: read them on the host
            threshold = threshold.get()
        threshold = np.asarray(threshold)
        # Checked before converting: a complex threshold would lose its imaginary
        # part (with only a ComplexWarning), an object one be read as anything.
        if threshold.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real, got dtype {threshold.dtype}")
        threshold = threshold.astype(np.float64)
        out_shape = np.broadcast_shapes(batch_shape, threshold.shape)
        if out_shape != batch_shape:  # a threshold array widens the result: numpy's rule
            A = xp.broadcast_to(A, out_shape + (m, n))
            batch_shape = out_shape
        threshold = np.ascontiguousarray(np.broadcast_to(threshold, batch_shape).ravel())
    # rank(A) = rank(A^T) by the same singular values and threshold (max(M, N) is
    # symmetric); hermitian=True reads the lower triangle, so not there.
    stack, _ = _checks.as_stack(A, transposable=not hermitian)
    ranks = backend_for(stack).matrix_rank(stack, threshold, rtol is not None, bool(hermitian))
    return int(ranks[0]) if batch_shape == () else ranks.reshape(batch_shape)


def _randomized_rank(A, tol, rtol, hermitian, seed):
    """The certified randomized rank, or None where the exact path must answer."""
    if A.ndim != 2:
        raise ValueError(f"method='randomized' takes one matrix (2-D A), got shape {A.shape}")
    if hermitian:
        raise ValueError("method='randomized' does not take hermitian=True")
    seed = _checks.check_seed(seed)
    threshold = tol if tol is not None else rtol
    if threshold is not None:
        name = "tol" if tol is not None else "rtol"
        value = np.asarray(threshold)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real, got dtype {value.dtype}")
        if value.ndim != 0:
            raise ValueError(f"{name} must be a number with method='randomized', got shape "
                             f"{value.shape}")
        threshold = float(value)
        if np.isnan(threshold) or (tol is not None and threshold < 0):
            return None  # NaN or a negative tol: the exact path answers as NumPy
    if min(A.shape) == 0:
        return None
    found, certified, _, _ = _core.randomized_rank(A, threshold, rtol is not None, 16, 0, seed)
    return int(found) if certified else None


def _measure(A, which: str):
    if type(A).__module__.startswith("dask"):  # never computed whole, silently
        from ._dask import not_for_dask
        raise not_for_dask(which, A)
    A = _checks.as_float_array(A, "A", min_ndim=2)
    stack, batch_shape = _checks.as_stack(A, transposable=True)
    values = getattr(backend_for(stack), which)(stack)
    return float(values[0]) if batch_shape == () else values.reshape(batch_shape)


def erank(A):
    """Effective rank ``(sum_i sigma_i)^2 / sum_i sigma_i^2``.

    Parameters
    ----------
    A : array_like, shape (..., M, N)

    Returns
    -------
    float or array of float64, shape (...)
        Between :func:`stable_rank` and :func:`entropy_rank`; 0.0 for a zero
        matrix (never NaN).

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> lc.erank(np.eye(4))
    4.0
    """
    return _measure(A, "erank")


def stable_rank(A):
    """Stable rank ``||A||_F^2 / sigma_1^2`` (0.0 for a zero matrix).

    Parameters
    ----------
    A : array_like, shape (..., M, N)

    Returns
    -------
    float or array of float64, shape (...)

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> lc.stable_rank(np.diag([2.0, 1.0]))
    1.25
    """
    return _measure(A, "stable_rank")


def entropy_rank(A):
    """Roy–Vetterli entropy rank ``exp(-sum p_i log p_i)``, ``p = sigma / sum sigma``.

    Parameters
    ----------
    A : array_like, shape (..., M, N)

    Returns
    -------
    float or array of float64, shape (...)
        At least :func:`erank`, at most the rank; 0.0 for a zero matrix.

    References
    ----------
    O. Roy, M. Vetterli, "The effective rank: a measure of effective
    dimensionality", EUSIPCO 2007.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> round(lc.entropy_rank(np.eye(3)), 12)
    3.0
    """
    return _measure(A, "entropy_rank")


def relative_error(A, B, ord=2):
    """``||A - B|| / ||A||``: how far an approximation ``B`` is from ``A``.

    Parameters
    ----------
    A, B : array_like, shape (m, n)
        Same shape; computed in the wider of their two precisions.
    ord : {2, "fro"}, default 2
        Spectral norm (largest singular value) or Frobenius norm.

    Returns
    -------
    float
        0.0 when ``A`` and ``B`` are both zero, ``inf`` when only ``A`` is.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag([4.0, 2.0, 1.0])
    >>> lc.relative_error(A, lc.svd(A, 1).to_dense())  # sigma_2 / sigma_1
    0.5
    """
    if not (isinstance(ord, str) and ord == "fro") and not (
        not isinstance(ord, (str, bool)) and ord == 2
    ):
        raise ValueError(f"ord must be 2 or 'fro', got {ord!r}")
    A = _checks.as_float_array(A, "A", ndim=2)
    B = _checks.as_float_array(B, "B", ndim=2)
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A {A.shape}, got {B.shape}")
    common = np.result_type(A.dtype, B.dtype)
    A = _checks.as_float_array(A, "A", dtype=common)
    B = _checks.as_float_array(B, "B", dtype=common)
    return float(backend_for(A, B).relative_error(A, B, "fro" if ord == "fro" else "2"))
