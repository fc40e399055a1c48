"""Exact and randomized truncated SVD, and singular values of stacks."""

from __future__ import annotations

import numpy as np

from . import _checks, _sparse
from ._backend import backend_for
from ._core import RandomizedSvdOptions
from ._results import SVDResult

__all__ = ["randomized_svd", "singular_values", "svd"]


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


def randomized_svd(A, k, *, oversamples=10, power_iters="auto", seed=None, sketch=None,
                   mixed_precision="auto", center=False, mean=None):
    """Approximate top-k SVD of ``A`` by random sketching (Halko–Martinsson–Tropp).

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
        operator input run in ``A``'s precision (``mixed_precision`` unused).
    k : int
        Target rank, ``1 <= k <= min(m, n)``.
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

    Returns
    -------
    SVDResult
        ``(U, S, Vh)`` as in :func:`svd`, with the same sign convention.

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

    References
    ----------
    N. Halko, P.-G. Martinsson, J. A. Tropp, "Finding structure with randomness:
    probabilistic algorithms for constructing approximate matrix
    decompositions", SIAM Review 53(2), 2011 (Algorithms 4.4 and 5.1).

    Examples
    --------
    >>> import numpy as np, lowrank_core as lc
    >>> A = np.diag(1.0 / np.arange(1, 101))
    >>> lc.randomized_svd(A, 5, seed=0).S.round(3)
    array([1.   , 0.5  , 0.333, 0.25 , 0.2  ])
    """
    by_products = _sparse.is_sparse(A) or _sparse.is_operator(A)
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
            U, S, Vh = _core_centered(A, mean, options, sketch)
        return SVDResult(U, S, Vh)
    U, S, Vh = backend.randomized_svd(A, options, sketch)
    return SVDResult(U, S, Vh)


def _core_centered(A, mean, options, sketch):
    from ._core import centered_randomized_svd

    return centered_randomized_svd(A, mean, options, sketch)


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
    A = _checks.as_float_array(A, "A", min_ndim=2)
    stack, batch_shape = _checks.as_stack(A, transposable=True)
    values = backend_for(stack).singular_values(stack)
    return values.reshape(batch_shape + values.shape[-1:])
