"""Exact and randomized truncated SVD, and singular values of stacks."""

from __future__ import annotations

import math
import numbers
import types

import numpy as np

from . import _checks, _core, _sparse
from ._checks import INDEX_MAX
from ._backend import backend_for
from ._core import RandomizedSvdOptions
from ._results import ErrorEstimate, SVDResult, ToleranceSVDResult

__all__ = ["estimate_error", "randomized_svd", "singular_values", "svd"]


def svd(A, k):
    """The best rank-k approximation of ``A``: its top-k singular triplets, exactly.

    Parameters
    ----------
    A : array_like, shape (m, n)
        Real matrix. float32 and float64 are computed in their own precision;
        integer and bool become float64. Not modified.
    k : int
        Number of singular triplets, ``1 <= k <= min(m, n)``.

    Returns
    -------
    SVDResult
        ``(U, S, Vh)`` with ``U`` (m, k), ``S`` (k,) descending, ``Vh`` (k, n).
        The largest-magnitude entry of each column of ``U`` is positive.
        ``result.to_dense()`` is the rank-k approximation ``U @ diag(S) @ Vh``.

    Notes
    -----
    LAPACK ``gesdd`` (divide and conquer) on a copy of ``A``. By Eckart–Young the
    result is the optimal rank-k approximation in the spectral and Frobenius
    norms: ``||A - A_k||_2 = sigma_{k+1}``.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag([3.0, 2.0, 1.0])
    >>> U, S, Vh = lc.svd(A, 2)
    >>> S
    array([3., 2.])
    """
    A = _checks.as_float_array(A, "A", ndim=2)
    k = _checks.check_k(k, A.shape)
    U, S, Vh = backend_for(A).svd(A, k)
    return SVDResult(U, S, Vh)


def randomized_svd(A, k=None, *, tol=None, ord="fro", oversamples=10, power_iters="auto",
                   seed=None, sketch=None, mixed_precision="auto", block_size=16, center=False,
                   mean=None, compute=False):
    """Approximate top-k SVD of ``A`` by random sketching (Halko–Martinsson–Tropp),
    or, with ``tol``, the smallest rank that approximates ``A`` to within ``tol``.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or linear operator, shape (m, n)
        Real matrix; not modified. Dtype rules as in :func:`svd`. A scipy.sparse
        array or matrix (CSR and CSC read where they lie, other formats through
        CSR; int32 or int64 indices; unsorted or duplicate indices allowed,
        duplicates summed) is never densified: memory O(nnz + (m + n) l). A
        ``scipy.sparse.linalg.LinearOperator``, or any object with ``matmat``,
        ``rmatmat``, ``shape`` and ``dtype``, is called back one block of l
        columns at a time: ``matmat`` q + 1 times and ``rmatmat`` q + 1 to q + 3
        times (one more when the first product shows a spread that asks for two
        products per power iteration, one more when Cholesky-QR of A W refuses;
        and once more with ``center=True``, for the column means). Sparse and
        operator input run in ``A``'s precision (``mixed_precision`` unused);
        with ``tol``, sparse input takes ``k`` as the sketch's rank and
        ``ord="fro"`` (see Notes), an operator does not take ``tol``.
    k : int, optional
        Target rank, ``1 <= k <= min(m, n)``. With ``tol``, the largest rank
        allowed (default ``min(m, n)``). ``k`` and ``tol`` cannot both be absent
        (TypeError).
    tol : float, optional
        Relative tolerance in (0, 1): the result is the smallest rank ``r`` whose
        ``U S Vh`` from the grown basis has ``||A - U S Vh|| <= tol * ||A||`` in the
        norm ``ord`` (see Notes, "Tolerance mode"). Without it, the fixed-rank
        algorithm below, unchanged.
    ord : {"fro", 2}, default "fro"
        The norm of ``tol`` (tolerance mode only). Sparse, centred and Dask input
        take ``"fro"`` only.
    block_size : int, default 16
        Columns added to the basis per step in tolerance mode, ``>= 1``. The rank
        found exceeds the optimal one (Eckart–Young) only by what the basis misses
        of A's top singular subspace, typically a few columns (see Notes).
    oversamples : int, default 10
        Extra sketch columns, ``>= 0``. The sketch has
        ``l = min(k + oversamples, min(m, n))`` columns.
    power_iters : int or "auto", default "auto"
        Power (subspace) iterations, ``>= 0``, each followed by
        re-orthonormalisation. ``"auto"`` is 7 when ``k < 0.1 * min(m, n)`` and 4
        otherwise; at the defaults the spectral error stays within 1% of the
        optimum ``sigma_{k+1}`` on spectra decaying like ``1/i``.
    seed : int or None, default None
        Seed of the counter-based (Philox4x32-10) Gaussian sketch, in
        ``[0, 2**64)``. The same seed gives the same sketch on the CPU and the GPU,
        so the same result to rounding. ``None`` draws a fresh seed.
    sketch : array_like, shape (n, l), optional
        An explicit test matrix that replaces the random one (then ``seed`` is
        unused); converted to ``A``'s dtype.
    mixed_precision : {"auto", "fast", False}, default "auto"
        Whether the CPU core's power iterations may run below ``A``'s precision
        (float64 ``A`` on a float32 copy; C-ordered ``A`` on AMX-BF16 tiles).
        ``"auto"`` (or ``True``) does so only while each iterate's Ritz residuals
        show that it cannot change the result beyond 1e-2 of its distance to the
        exact truncated SVD: float64 in, float64-accurate out. ``"fast"`` drops
        that check (U and Vh may be only float32-accurate); ``False`` runs all in
        ``A``'s precision, as the GPU core always does. The contract and how it
        is checked: ``docs/reliability.md#accuracy-contract``.
    center : bool, default False
        Approximate ``A - 1 mu^T`` (``mu`` the column means: the SVD behind PCA)
        without forming it: each product takes a rank-one correction, and each
        power iteration is still one pass over A. Dense, sparse and operator
        input; computed in ``A``'s precision (``mixed_precision`` unused).
    mean : array_like, shape (n,), optional
        Subtract this vector from every row instead of the column means (implies
        centring; not together with ``center=True``).
    compute : bool, default False
        Dask arrays only: ``False`` returns ``U`` as a Dask array chunked like A's
        rows, ``True`` computes it (``S`` and ``Vh`` are NumPy arrays either way).
        A Dask array runs block by block under Dask's scheduler, in A's precision;
        see ``docs/dask.md``.

    Returns
    -------
    SVDResult or ToleranceSVDResult
        ``(U, S, Vh)`` as in :func:`svd`, with the same sign convention. With
        ``tol``, a :class:`ToleranceSVDResult`: it unpacks the same way and carries
        ``rank``, ``error`` (``||A - U S Vh||`` in ``ord``), ``error_bound``,
        ``norm`` and ``tol_reached``.

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, checked about every 0.05 s between blocks of A (CPU core, when
        called from the main thread); nothing is returned and the package stays
        usable.

    Notes
    -----
    1. Omega = Gaussian (n, l); 2. Q = orth(A Omega); 3. ``power_iters`` times:
    Q = orth(A orth(A^T Q)); 4. B = Q^T A (l, n) and its SVD B = Ub S Vh;
    5. U = Q Ub, truncated to k. When the entries of A are so large or so small
    that ``||A||^2`` would overflow or underflow (outside LAPACK's safe range, as
    gesdd checks it), the iterations run on a copy of A scaled by a power of two.
    See ``mixed_precision`` for the power iterations below ``A``'s precision.

    On the CPU, each power iteration is one pass over A (``A^T (A W)`` block by
    block, then one orthonormalisation: the same subspace as step 3 in exact
    arithmetic). For C-ordered A, steps 2 and 4 share one more pass: Y = A W and
    Z = A^T Y, then Q = Y R^-1 by Cholesky-QR and B^T = A^T Q = Z R^-1, when
    Y is well enough conditioned for that to be as accurate (else B takes a pass
    of its own). The products run on AVX-512 or AVX2 kernels that read A
    without packing it, where the CPU has them and the panel (n by l) fits in
    2 MiB; elsewhere on BLAS; the power iterations on AMX where that is allowed
    (``mixed_precision``). They run on as many threads as the BLAS would.

    Tolerance mode (``tol``) grows an orthonormal basis Q a block at a time
    (Yu–Gu–Li's randQB_EI): each block is ``(I - Q Q^T) A Omega_i`` for the next
    ``block_size`` columns of the Philox sketch (or of ``sketch``, shape (n, L):
    then the basis stops at L columns), ``power_iters`` power iterations on the
    residual (``"auto"``: 2), orthonormalised against Q by Cholesky-QR, then
    ``B_i = Q_i^T A``. For ``"fro"`` it stops when ``||A||_F^2 - ||B||_F^2 <= (tol
    ||A||_F)^2`` (Yu–Gu–Li's indicator, at no cost), then takes
    ``||A - Q B||_F^2`` from one pass over A (the indicator is good only to about
    ``sqrt(eps) ||A||_F``), going on if that is still above; the rank is then trimmed to
    the smallest k with ``||A - Q B||_F^2 + sum_{j>k} s_j^2 <= (tol ||A||_F)^2`` from
    the SVD of B, so ``error`` is the true error of the result, to rounding. For
    ``2`` it stops when a block's top singular value (the residual before it, from
    below) or the block's probes (HMT Lemma 4.1) fall below ``tol`` times the
    largest seen; k is then the smallest whose :func:`estimate_error` (10 probes,
    4 power steps, from below) is at most 0.95 ``tol`` ``||B||_2``; ``error_bound``
    holds except with probability 1e-10. ``oversamples`` and ``mixed_precision``
    are not used there (all in A's precision). The CUDA core has no tolerance
    mode yet: a CuPy ``A`` with ``tol`` is a TypeError.

    Sparse, centred (``center``/``mean``) and Dask input with ``tol`` have no
    adaptive basis: ``k`` is required, the fixed-rank result of rank ``k`` is
    computed as without ``tol``, and truncated to the smallest ``r`` with
    ``||A - U_r S_r Vh_r||_F^2 = ||A||_F^2 - sum_{i<=r} s_i^2 <= (tol ||A||_F)^2``
    (exact for U = Q Ub, B = Q^T A; ``||A - 1 mu^T||_F`` when centred, from the
    entries and column sums, never densified). ``error`` is then good to about
    ``eps ||A||_F^2 / error`` (the subtraction's cancellation), and ``tol_reached``
    is False below ``4 sqrt(eps)`` of A's dtype, or when rank ``k`` is not enough.
    A Dask array takes one more pass over X for ``||X||_F``.

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness:
    probabilistic algorithms for constructing approximate matrix
    decompositions", SIAM Review 53(2), 2011 (Algorithms 4.4 and 5.1).
    W. Yu, Y. Gu, Y. Li, "Efficient randomized algorithms for the fixed-precision
    low-rank matrix approximation", SIAM J. Matrix Anal. Appl. 39(4), 2018.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag(1.0 / np.arange(1, 101))
    >>> lc.randomized_svd(A, 5, seed=0).S.round(3)
    array([1.   , 0.5  , 0.333, 0.25 , 0.2  ])
    >>> lc.randomized_svd(A, tol=0.3, ord=2, seed=0).rank  # sigma_4 / sigma_1 = 0.25
    3
    """
    if type(A).__module__.startswith("dask"):  # blocks under Dask's scheduler
        if tol is not None:
            _truncation_checks(A, k, tol, ord, "a Dask array")
        if k is None:
            raise TypeError("randomized_svd needs k (a rank) or tol (a relative error); "
                            "got neither")
        from . import _dask
        result = _dask.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                      seed=seed, sketch=sketch, mixed_precision=mixed_precision,
                                      compute=compute)
        if tol is None:
            return result
        return _truncated_to_tolerance(result, _dask.frobenius_squared(A), tol, A.dtype,
                                       _checks.sketch_columns(k, oversamples, A.shape))
    by_products = _sparse.is_sparse(A) or _sparse.is_operator(A)
    if tol is not None and (by_products or center or mean is not None):
        # No adaptive range finder here: the fixed-k sketch, then the smallest rank
        # within tol by the Frobenius identity (see Notes).
        what = ("a linear operator" if _sparse.is_operator(A) else
                "a scipy.sparse matrix" if by_products else "centred input")
        _truncation_checks(A, k, tol, ord, what)
        result = randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                seed=seed, sketch=sketch, mixed_precision=mixed_precision,
                                center=center, mean=mean)
        total = _centred_frobenius_squared(A, center, mean)
        dtype = _sparse._float_dtype(A.dtype, "A")
        return _truncated_to_tolerance(result, total, tol, dtype,
                                       _checks.sketch_columns(k, oversamples, A.shape))
    if tol is not None:
        return _to_tolerance(A, k, tol, ord, power_iters, seed, sketch, block_size)
    if k is None:
        raise TypeError("randomized_svd needs k (a rank) or tol (a relative error); "
                        "got neither")
    if by_products:
        dtype = _sparse._float_dtype(A.dtype, "A")
        _sparse._check_shape(A.shape, "A")
    else:
        A = _checks.as_float_array(A, "A", ndim=2)
        dtype = A.dtype
    k = _checks.check_k(k, A.shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, A.shape)
    columns = _checks.sketch_columns(k, oversamples, A.shape)
    if not isinstance(center, (bool, np.bool_)):
        raise TypeError(f"center must be True or False, got {type(center).__name__}")
    if mean is not None:
        if center:
            raise ValueError("give center=True (the column means) or mean= (a vector of "
                             "your own), not both")
        mean = _checks.as_float_array(mean, "mean", ndim=1, dtype=dtype)
        if mean.shape != (A.shape[1],):
            raise ValueError(f"mean must have shape (n,) = ({A.shape[1]},), got {mean.shape}")
        _checks.check_finite(mean, "mean")
    if sketch is None:
        seed = _checks.check_seed(seed)
    else:
        sketch = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=dtype)
        expected = (A.shape[1], columns)
        if sketch.shape != expected:
            raise ValueError(
                f"sketch must have shape (n, min(k + oversamples, min(m, n))) = {expected}, "
                f"got {sketch.shape}"
            )
        seed = 0
    options = RandomizedSvdOptions(
        rank=k, sketch_columns=columns, power_iters=power_iters, seed=seed,
        mixed_precision=_checks.check_mixed_precision(mixed_precision))
    if by_products:
        if _sparse.is_sparse(A):
            if center:
                mean = _sparse.sparse_column_means(A, dtype)
            U, S, Vh = _sparse.sparse_randomized_svd(A, options, sketch, mean)
        else:
            if center:
                mean = _sparse.operator_column_means(A, dtype)
            U, S, Vh = _sparse.operator_randomized_svd(A, options, sketch, mean)
        return SVDResult(U, S, Vh)
    if center:
        mean = A.mean(axis=0, dtype=np.float64).astype(dtype)
    backend = backend_for(A) if sketch is None else backend_for(A, sketch)
    if mean is not None:
        if _checks.is_cupy(A):
            # The CUDA core has no centred products: the centred copy (as dense as A).
            U, S, Vh = backend.randomized_svd(A - mean[None, :], options, sketch)
        else:
            U, S, Vh = _core.centered_randomized_svd(A, mean, options, sketch)
        return SVDResult(U, S, Vh)
    U, S, Vh = backend.randomized_svd(A, options, sketch)
    return SVDResult(U, S, Vh)


def _truncation_checks(A, k, tol, ord, what):
    """The arguments of the tolerance mode by truncation (sparse, centred and Dask
    input): tol in (0, 1), ord "fro", k given (the sketch's rank)."""
    _check_tol(tol)
    if _check_ord(ord) != "fro":
        raise ValueError(f"randomized_svd with tol of {what} takes ord='fro' (its error is "
                         "exact by the Frobenius identity); for ord=2 pass a dense NumPy "
                         "array without centring, or give k and use estimate_error")
    if k is None:
        raise TypeError(f"randomized_svd with tol of {what} needs k, the largest rank "
                        "allowed: the sketch of that rank is taken once and truncated to "
                        "the smallest rank within tol")
    if _sparse.is_operator(A):
        raise TypeError("randomized_svd with tol of a linear operator is not supported: "
                        "its Frobenius norm needs n products; give k (and estimate_error "
                        "for the error of the result)")


def _centred_frobenius_squared(A, center, mean) -> float:
    """||A - 1 mu^T||_F^2 in float64, mu the column means (center), the given mean, or
    0; sparse A without densifying (duplicates summed), dense A a block of rows at a
    time. ||A||^2 - 2 mu.c + m ||mu||^2, c the column sums of A."""
    xp = _checks.array_module(A) if not _sparse.is_sparse(A) else np
    m = A.shape[0]
    if _sparse.is_sparse(A):
        B = A.tocsr()
        if not B.has_canonical_format:
            B = B.copy()
            B.sum_duplicates()
        data = np.asarray(B.data, dtype=np.float64)
        total = float(data @ data)
        sums = np.asarray(B.sum(axis=0, dtype=np.float64)).reshape(-1) \
            if (center or mean is not None) else None
    else:
        A = _checks.as_float_array(A, "A", ndim=2)
        total, sums = 0.0, xp.zeros(A.shape[1], dtype=xp.float64)
        for start in range(0, m, 1024):
            rows = A[start:start + 1024].astype(xp.float64)
            total += float((rows * rows).sum())
            sums += rows.sum(axis=0)
    if center:
        mu = sums / m
    elif mean is not None:
        mu = xp.asarray(mean, dtype=xp.float64)
    else:
        return total
    return max(total - 2 * float(mu @ sums) + m * float(mu @ mu), 0.0)


def _truncated_to_tolerance(result, total_squared, tol, dtype, columns):
    """The smallest rank r <= k of ``result`` with ||A - U_r S_r Vh_r||_F <= tol ||A||_F,
    where ||A - U_r S_r Vh_r||_F^2 = ||A||_F^2 - sum_{i<=r} s_i^2 (U = Q Ub with B = Q^T A
    exact; Vh from B): the error, good to about sqrt(eps) ||A||_F (cancellation)."""
    U, S, Vh = result
    s = np.asarray(S.get() if _checks.is_cupy(S) else S, dtype=np.float64)
    remaining = np.maximum(total_squared - np.cumsum(s * s), 0.0)
    norm = math.sqrt(total_squared)
    within = np.flatnonzero(remaining <= (tol * norm) ** 2)
    r = int(within[0]) + 1 if within.size else len(s)  # k >= 1, so r >= 1
    error = math.sqrt(remaining[r - 1])
    resolved = tol >= 4 * math.sqrt(float(np.finfo(dtype).eps))
    return ToleranceSVDResult(U[:, :r], S[:r], Vh[:r], error=error, error_bound=error,
                              norm=norm, tol=tol, ord="fro",
                              tol_reached=bool(within.size) and resolved,
                              basis_columns=columns)


def _check_tol(tol) -> float:
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a real number in (0, 1), got {type(tol).__name__}")
    tol = float(tol)
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1) (a relative error), got {tol}")
    return tol


def _check_ord(ord) -> str:
    """The core's name of a norm: "fro" or "2"."""
    if isinstance(ord, str) and ord == "fro":
        return "fro"
    if not isinstance(ord, (str, bool, np.bool_)) and ord == 2:
        return "2"
    raise ValueError(f"ord must be 2 or 'fro', got {ord!r}")


def _cpu_only(A, what):
    if _checks.is_cupy(A):
        raise TypeError(f"{what} runs on the CPU core only in this version (the CUDA core "
                        "has no tolerance mode yet); pass a NumPy array (cupy.asnumpy(A))")


def _to_tolerance(A, k, tol, ord, power_iters, seed, sketch, block_size):
    A = _checks.as_float_array(A, "A", ndim=2)
    tol = _check_tol(tol)
    norm = _check_ord(ord)
    max_rank = 0 if k is None else _checks.check_k(k, A.shape)
    if min(A.shape) == 0:
        raise ValueError(f"A is empty (shape {A.shape}); it has no approximation")
    block_size = _checks.check_int(block_size, "block_size", minimum=1, maximum=INDEX_MAX)
    if isinstance(power_iters, str) and power_iters == "auto":
        power_iters = 2
    else:
        power_iters = _checks.resolve_power_iters(power_iters, 1, A.shape)
    _cpu_only(A, "randomized_svd with tol")
    if sketch is None:
        seed = _checks.check_seed(seed)
    else:
        sketch = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=A.dtype)
        if sketch.shape[0] != A.shape[1] or sketch.shape[1] < 1:
            raise ValueError(f"sketch must have shape (n, L) = ({A.shape[1]}, L >= 1), got "
                             f"{sketch.shape}")
        _cpu_only(sketch, "randomized_svd with tol")
        seed = 0 if seed is None else _checks.check_seed(seed)
    U, S, Vh, info = _core.randomized_svd_to_tolerance(
        A, tol, norm, max_rank, block_size, power_iters, seed, _ERROR_PROBES, _ERROR_STEPS,
        sketch)
    return ToleranceSVDResult(U, S, Vh, error=info["error"], error_bound=info["error_bound"],
                              norm=info["norm"], tol=tol, ord="fro" if norm == "fro" else 2,
                              tol_reached=info["reached"], basis_columns=info["basis_columns"])


# The spectral estimate's probes (its bound fails with probability 10^-probes) and
# power steps (each two passes over A).
_ERROR_PROBES, _ERROR_STEPS = 10, 4


def estimate_error(A, approx, ord=2, *, seed=None, probes=_ERROR_PROBES,
                   power_steps=_ERROR_STEPS):
    """``||A - approx||`` without forming the (m, n) residual.

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or linear operator, shape (m, n)
        Real matrix; not modified. Dtype rules as in :func:`svd`. Sparse and
        operator input are never densified: their estimate runs on their products
        in float64 (``"fro"`` needs a sparse A's entries: not for an operator).
    approx : SVDResult, (U, S, Vh), (L, R) or a fitted Bottleneck
        A factored approximation of ``A``: ``U @ diag(S) @ Vh`` (U (m, k), S (k,),
        Vh (k, n)), ``L @ R`` (L (m, k), R (k, n)), or an object with a
        ``factors()`` method returning ``(L, R)`` (a fitted :class:`Bottleneck`:
        its learned map W, without the bias). Converted to ``A``'s dtype.
    ord : {2, "fro"}, default 2
        ``"fro"``: computed exactly (to rounding) in one pass over ``A``, a block of
        rows at a time. ``2``: estimated by power steps on the residual operator
        ``E = A - approx``, as fbpca's ``diffsnorm``: ``probes`` Gaussian vectors
        W, then ``power_steps`` times W <- orth(E^T E W); the value is the largest
        singular value of ``E W``.
    seed : int or None, default None
        Seed of the Gaussian probes (Philox, stream 4: never the sketch's draws of
        the same seed). ``None`` draws a fresh one.
    probes : int, default 10
        Gaussian probes, ``>= 1`` (spectral norm only).
    power_steps : int, default 4
        Power steps, ``>= 0`` (spectral norm only); each reads A twice.

    Returns
    -------
    ErrorEstimate
        A float: the norm (``"fro"``) or its estimate (``2``). For ``2`` it never
        exceeds ``||E||_2`` beyond rounding, since W is orthonormal; its ``bound``
        attribute is ``max(value, 10 sqrt(2/pi) max_i ||E w_i||)`` over the initial
        probes, and ``||E||_2 <= bound`` except with probability at most
        ``10**-probes`` (Halko–Martinsson–Tropp 2011, Lemma 4.1 with alpha = 10).
        For ``"fro"``, ``bound`` is the value.

    Notes
    -----
    :func:`relative_error` keeps its meaning: ``||A - B|| / ||A||`` for a dense B,
    exactly. This function is its factored, matrix-free counterpart (absolute,
    not relative). CPU core only in this version (a CuPy ``A`` is a TypeError).

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, SIAM Review 53(2), 2011, Section 4.3.

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag([4.0, 2.0, 1.0])
    >>> float(lc.estimate_error(A, lc.svd(A, 1), ord="fro"))  # sqrt(2^2 + 1^2)
    2.23606797749979
    """
    by_products = _sparse.is_sparse(A) or _sparse.is_operator(A)
    if by_products:
        dtype = _sparse._float_dtype(A.dtype, "A")
        _sparse._check_shape(A.shape, "A")
    else:
        A = _checks.as_float_array(A, "A", ndim=2)
    norm = _check_ord(ord)
    probes = _checks.check_int(probes, "probes", minimum=1, maximum=INDEX_MAX)
    power_steps = _checks.check_int(power_steps, "power_steps", minimum=0, maximum=INDEX_MAX)
    seed = _checks.check_seed(seed)
    if by_products:
        U, S, Vh = _factors(approx, types.SimpleNamespace(dtype=dtype, shape=A.shape))
        return _sparse.estimate_error_by_products(A, U, S, Vh, norm == "2", probes, power_steps,
                                                  seed)
    U, S, Vh = _factors(approx, A)
    _cpu_only(A, "estimate_error")
    value, bound = _core.estimate_error(A, U, S, Vh, norm, probes, power_steps, seed)
    return ErrorEstimate(value, bound=bound, ord="fro" if norm == "fro" else 2, probes=probes)


def _factors(approx, A):
    """(U, S, Vh) in A's dtype, checked against A's shape."""
    if hasattr(approx, "factors") and callable(approx.factors):
        approx = approx.factors()
    if not isinstance(approx, tuple) or len(approx) not in (2, 3):
        raise TypeError("approx must be an SVDResult, a tuple (U, S, Vh) or (L, R), or a "
                        f"fitted Bottleneck; got {type(approx).__name__}")
    if len(approx) == 3:
        U, S, Vh = approx
        U = _checks.as_float_array(U, "U", ndim=2, dtype=A.dtype)
        S = _checks.as_float_array(S, "S", ndim=1, dtype=A.dtype)
        Vh = _checks.as_float_array(Vh, "Vh", ndim=2, dtype=A.dtype)
        names = ("U", "Vh")
    else:
        U = _checks.as_float_array(approx[0], "L", ndim=2, dtype=A.dtype)
        Vh = _checks.as_float_array(approx[1], "R", ndim=2, dtype=A.dtype)
        S = np.ones(U.shape[1], dtype=A.dtype)
        names = ("L", "R")
    m, n = A.shape
    if U.shape[0] != m or Vh.shape[1] != n or U.shape[1] != Vh.shape[0] or \
            S.shape[0] != U.shape[1]:
        raise ValueError(f"approx's factors must have shapes ({m}, k), (k,) and (k, {n}) "
                         f"for A of shape {A.shape}; got {names[0]} {U.shape}, "
                         f"{names[1]} {Vh.shape}" + (f", S {S.shape}" if len(approx) == 3 else ""))
    for name, X in zip(("U", "S", "Vh"), (U, S, Vh)):
        _checks.check_finite(X, name)
    return U, np.ascontiguousarray(S), Vh


def singular_values(A):
    """All singular values of ``A``, descending; stacks ``(..., M, N)`` supported.

    Parameters
    ----------
    A : array_like, shape (..., M, N)
        Real matrix or stack of matrices; dtype rules as in :func:`svd`.

    Returns
    -------
    array, shape (..., min(M, N))
        As ``numpy.linalg.svd(A, compute_uv=False)``, in ``A``'s precision.

    Notes
    -----
    On the CPU, small matrices go to LAPACK ``gesdd`` as in NumPy. From
    ``min(M, N)`` = 512 on, a two-stage reduction (blocked Householder to a band,
    then ``gbbrd`` and ``lasq1``) replaces ``gesdd``'s bidiagonal reduction, whose
    matrix-vector products bound its speed; its errors are of the size of
    ``gesdd``'s (not the same bits). There, float32 values get their last two
    stages in float64, which keeps them within about one eps sigma_1 of the exact
    values. Measurements: ``docs/benchmarks-history.md`` (Rank and singular values).

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> lc.singular_values(np.diag([1.0, 3.0]))
    array([3., 1.])
    """
    if type(A).__module__.startswith("dask"):  # never computed whole, silently
        from ._dask import not_for_dask
        raise not_for_dask("singular_values", A)
    A = _checks.as_float_array(A, "A", min_ndim=2)
    stack, batch_shape = _checks.as_stack(A, transposable=True)
    values = backend_for(stack).singular_values(stack)
    return values.reshape(batch_shape + values.shape[-1:])
