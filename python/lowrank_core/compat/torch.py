"""``torch.svd_lowrank`` and ``torch.pca_lowrank`` on lowrank_core's core.

Change ``torch.svd_lowrank(A, q, niter)`` to
``lowrank_core.compat.torch.svd_lowrank(A, q, niter)``: tensors in, tensors out,
on the tensor's device (CPU tensors on the C++ core, CUDA tensors on the CUDA
core through CuPy). NumPy, CuPy and other DLPack arrays work too and come back in
their own kind. This module does not import torch; it reads the tensor through
DLPack (see :mod:`lowrank_core._interop`).
"""

from __future__ import annotations

import sys

import numpy as np

from .. import _checks
from .._interop import dlpack_io
from .._svd import randomized_svd as _randomized_svd

__all__ = ["pca_lowrank", "svd_lowrank"]


def _seed() -> int:
    """A seed from torch's global generator when torch is loaded, so that
    ``torch.manual_seed`` makes calls repeatable as it does torch's own; else a
    fresh one."""
    torch = sys.modules.get("torch")
    if torch is None:
        return _checks.check_seed(None)
    return int(torch.randint(0, 2**62, (1,), dtype=torch.int64).item())


def _lowrank(A, q, niter, M=None):
    """The (U, S, V) of ``A - M`` for NumPy/CuPy ``A`` of shape (*, m, n)."""
    A = _checks.as_float_array(A, "A", min_ndim=2)
    if M is not None:
        M = _checks.as_float_array(M, "M")
        try:
            A = A - M  # torch broadcasts M to A's shape; this is that subtraction
        except ValueError as error:
            raise ValueError(f"M of shape {M.shape} does not broadcast to A's shape "
                             f"{A.shape}") from error
    xp = _checks.array_module(A)
    m, n = A.shape[-2:]
    q = 6 if q is None else _checks.check_int(q, "q", minimum=0)
    niter = 2 if niter is None else _checks.check_int(niter, "niter", minimum=0)
    # torch's basis has min(q, m, n) columns (a QR of fewer rows than columns).
    k = min(q, m, n)
    batch_shape = A.shape[:-2]
    if k == 0 or 0 in batch_shape:
        return (xp.zeros(batch_shape + (m, k), A.dtype), xp.zeros(batch_shape + (k,), A.dtype),
                xp.zeros(batch_shape + (n, k), A.dtype))
    seed = _seed()
    stack = A.reshape((-1, m, n))
    parts = [_randomized_svd(stack[i], k, oversamples=0, power_iters=niter,
                             seed=(seed + i) % 2**64)
             for i in range(stack.shape[0])]
    U = xp.stack([p.U for p in parts]).reshape(batch_shape + (m, k))
    S = xp.stack([p.S for p in parts]).reshape(batch_shape + (k,))
    V = xp.stack([p.Vh.T for p in parts]).reshape(batch_shape + (n, k))
    return U, S, V


@dlpack_io
def svd_lowrank(A, q=6, niter=2, M=None):
    """``(U, S, V)`` with ``A - M ~= U @ diag(S) @ V.T``, as ``torch.svd_lowrank``.

    Parameters
    ----------
    A : tensor or array, shape (*, m, n)
        Dense real matrix or batch of matrices (a torch tensor on the CPU or a CUDA
        GPU, a NumPy or CuPy array, any DLPack array). float16 and bfloat16 are
        computed in float32 and returned in float32. Sparse tensors and complex
        input are a ``TypeError``. A tensor that requires grad is computed on its
        data; the result is not differentiable.
    q : int, default 6
        Columns of the random sketch (a slightly overestimated rank); ``min(q, m,
        n)`` triplets are returned, as torch does.
    niter : int, default 2
        Subspace (power) iterations, >= 0; each is followed by an
        orthonormalisation, as in torch.
    M : tensor or array, optional
        The mean, broadcast to ``A``'s shape; ``A - M`` is decomposed. It is
        subtracted explicitly (a copy of ``A``): the core does not yet centre
        implicitly.

    Returns
    -------
    U : (*, m, q), S : (*, q) descending, V : (*, n, q)
        ``V`` is not transposed, as in torch. In the input's library and device.
        The largest-magnitude entry of each column of ``U`` is positive (torch
        leaves the signs as they come).

    Notes
    -----
    torch's algorithm (Halko et al. 2011, Algorithm 4.4 with ``q`` columns and no
    oversampling) on the core, with the core's Philox Gaussian sketch. Its seed is
    drawn from torch's global generator when torch is loaded, so
    ``torch.manual_seed`` makes calls repeatable; the sketch is not torch's, so
    results differ from torch's bitwise but have the same accuracy. Batches run one
    matrix at a time.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.compat.torch import svd_lowrank
    >>> U, S, V = svd_lowrank(np.diag([3.0, 2.0, 1.0, 0.0]), q=3)
    >>> S.round(12), V.shape
    (array([3., 2., 1.]), (4, 3))
    """
    return _lowrank(A, q, niter, M)


@dlpack_io
def pca_lowrank(A, q=None, center=True, niter=2):
    """``(U, S, V)`` of the centred ``A``, as ``torch.pca_lowrank``.

    Parameters
    ----------
    A : tensor or array, shape (*, m, n)
        Data: m samples of n features (kinds and dtypes as in :func:`svd_lowrank`).
    q : int, optional
        Sketch columns and triplets, ``0 <= q <= min(m, n)``; default
        ``min(6, m, n)``.
    center : bool, default True
        Subtract the column means (``A.mean(-2)``) first; False assumes ``A`` is
        centred.
    niter : int, default 2
        Subspace iterations, >= 0.

    Returns
    -------
    U : (*, m, q), S : (*, q), V : (*, n, q)
        ``V``'s columns are the principal directions; ``S**2 / (m - 1)`` the
        variances along them.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.compat.torch import pca_lowrank
    >>> A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, -0.5]]) + 7
    >>> pca_lowrank(A, q=2)[1].round(12)
    array([1.41421356, 0.70710678])
    """
    A = _checks.as_float_array(A, "A", min_ndim=2)
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    else:
        q = _checks.check_int(q, "q", minimum=0, maximum=min(m, n))
    niter = _checks.check_int(niter, "niter", minimum=0)
    if not isinstance(center, (bool, np.bool_)):
        raise TypeError(f"center must be True or False, got {type(center).__name__}")
    if center:
        A = A - A.mean(axis=-2, keepdims=True)
    return _lowrank(A, q, niter)
