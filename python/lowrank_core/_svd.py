"""Exact and randomized truncated SVD, and singular values of stacks."""

from __future__ import annotations

import numpy as np

from . import _checks
from ._backend import backend_for
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
                   mixed_precision=True):
    """Approximate top-k SVD of ``A`` by random sketching (Halko–Martinsson–Tropp).

    Parameters
    ----------
    A : array_like, shape (m, n)
        Real matrix; not modified. Dtype rules as in :func:`svd`.
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
    mixed_precision : bool, default True
        float64 ``A`` on the CPU: run the power iterations on a float32 copy of
        ``A`` (scaled by a power of two), about twice as fast, and everything after
        them in float64, so that U, S and Vh are float64-accurate for the subspace
        found. For C-ordered ``A`` the product after the iterations, Y = A W,
        whose span becomes the basis Q, also comes from the copy while
        ``eps32 * sigma_1 / sigma_{k+1} <= 1e-4`` as Y's own singular values
        estimate it; B = Q^T A is then formed from ``A`` in float64, the exact
        projection onto that basis (on 2000 x 1000 matrices the spectral error
        moved by at most 2.4e-8 of itself and the singular values by 3.7e-10
        sigma_1, ``benchmarks/copy_range_study.py``; 10000 x 3000, k = 100: that
        step 229 -> 174 ms). ``A`` of rank k,
        or with a noise floor far below sigma_1, gets the float64 product.
        The copy is used only where float32 cannot cost accuracy: when
        ``eps32 * (sigma_1 / sigma_k)**2 <= 3e-2``, as estimated after the first
        iteration (an upper bound on how much the k-th wanted direction moves;
        the spectral error moved by at most 1e-4 of itself in measurements up
        to that limit, as often down as up), for at least one float32 iteration
        (``power_iters >= 1``, or 2 for Fortran-ordered ``A``) and enough work to
        pay for the copy; otherwise, and with ``False``, all is float64. The copy
        needs half of ``A``'s memory more; its buffer (up to 256 MiB) is kept for
        the next call of the same size, because fresh memory costs the kernel's
        page zeroing every time. (Large inputs, 2 m n l of 4e9 and more, also keep
        one buffer of at most 64 MiB for their products' per-chunk sums.)
        On CPUs with AMX-BF16 (Intel Xeon since Sapphire Rapids; Linux), the
        power iterations of C-ordered float32 ``A`` and of float64 ``A``'s
        float32 copy go one step further: their products run on
        AMX tiles with each value split into two bfloat16 pieces (about 16
        significant bits; 1.1-1.8x faster here, more for wider sketches), when
        ``2 m n l >= 1e7`` and ``2**-16 * (sigma_1 / sigma_k)**2 <= 2`` as
        estimated from the first product (about twice the true value). That
        product runs on AMX too and is redone with the float32 products when its
        estimate is past the limit (one pass over ``A`` more; the result is then
        that of a run without AMX). Measured on 2000 x 1000 float32 matrices
        against the float32 products (3 seeds, k = 10 to 300, spectra 1/sqrt(i)
        to 1/i^2, exp(-i/10), exp(-i/5); the limit lifted;
        ``benchmarks/precision_study.py``): up to a true value of 1.4 the spectral
        error moved by at most 3.4e-4 of itself, as often down as up, and at most
        a 22nd of how much it moved between the three seeds; past the limit by up
        to 3.7e-3 at 50 to 400 and 2.4e-2 at 1500 to 7700. Where that estimate
        is at most 0.15, the iterations after the first round ``A`` to one
        bfloat16 piece instead (three tile products for five; 0.70-0.75x the time
        of a pass): the precision study with ``--pieces one`` measured changes of
        the same size as two pieces' there (at most 2.2e-4 against 1.6e-4).
        For float32 ``A`` the products after the iterations run in float32.
        No effect on the GPU.

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
    See ``mixed_precision`` for the float32 power iterations of float64 input.

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
    A = _checks.as_float_array(A, "A", ndim=2)
    k = _checks.check_k(k, A.shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, A.shape)
    columns = _checks.sketch_columns(k, oversamples, A.shape)
    if sketch is None:
        seed = _checks.check_seed(seed)
    else:
        sketch = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=A.dtype)
        expected = (A.shape[1], columns)
        if sketch.shape != expected:
            raise ValueError(
                f"sketch must have shape (n, min(k + oversamples, min(m, n))) = {expected}, "
                f"got {sketch.shape}"
            )
        seed = 0
    if not isinstance(mixed_precision, (bool, np.bool_)):
        raise TypeError(f"mixed_precision must be True or False, got "
                        f"{type(mixed_precision).__name__}")
    backend = backend_for(A) if sketch is None else backend_for(A, sketch)
    U, S, Vh = backend.randomized_svd(A, k, columns, power_iters, seed, sketch,
                                      bool(mixed_precision))
    return SVDResult(U, S, Vh)


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
    ``min(M, N)`` = 512 on, a two-stage reduction
    (blocked Householder to a band, then ``gbbrd`` and ``lasq1``, see
    ``cpp/band_reduction.hpp``) replaces ``gesdd``'s bidiagonal reduction, whose
    matrix-vector products bound it: 1.15x faster than ``gesdd`` at 500 x 500 in
    float64 and 1.9-3.7x faster than NumPy at 1000 x 1000 and 3000 x 2000 on two
    cores, with errors of the same size as ``gesdd``'s (not the same bits).
    Float32 values get their last two stages in float64: within about one eps
    sigma_1 of the exact values, where float32 ``gesdd`` misses by 10-50 (below
    512, float32 ``gesdd`` it is: up to about 20 eps sigma_1 on Gaussian matrices,
    NumPy's values within 0.3).

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
