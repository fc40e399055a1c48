"""``scipy.sparse.linalg.svds`` on lowrank_core's core, for dense, sparse and
matrix-free input.

Change ``from scipy.sparse.linalg import svds`` to
``from lowrank_core.compat.scipy import svds``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import _checks, _sparse
from .._interop import dlpack_io
from .._svd import randomized_svd as _randomized_svd
from .._svd import svd as _svd

__all__ = ["svds"]

_SOLVERS = ("arpack", "lobpcg", "propack")
# Power iterations of the first randomized attempt, and the most a second may take
# before the exact SVD is taken instead.
_FIRST_ATTEMPT = 8
_MOST_POWER_ITERS = 64


def _seed(random_state) -> int:
    if random_state is None:
        return _checks.check_seed(None)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
            random_state, bool):
        return _checks.check_int(int(random_state), "random_state", minimum=0,
                                 maximum=2**64 - 1)
    raise ValueError(f"'{random_state}' is neither a NumPy Generator nor an integer seed "
                     "to instantiate one.")


@dlpack_io
def svds(A, k=6, ncv=None, tol=0, which="LM", v0=None, maxiter=None,
         return_singular_vectors=True, solver="arpack", random_state=None, options=None,
         *, rng=None):
    """The largest (or smallest) ``k`` singular triplets, with SciPy's signature and
    semantics.

    Parameters
    ----------
    A : array_like, sparse matrix or LinearOperator, shape (M, N)
        A real matrix: dense (NumPy, CuPy, or any DLPack array such as a torch
        tensor; results in its kind), ``scipy.sparse`` (any format), or a
        ``LinearOperator`` (or any object with ``matmat``, ``rmatmat``, ``shape`` and
        ``dtype``); sparse and operator input is never densified. Integer input is
        computed in float64. ``cupyx.scipy.sparse`` is a ``TypeError``.
    k : int, default 6
        ``1 <= k <= min(M, N) - 1`` (``<= min(M, N)`` for ``solver="propack"``), as
        in SciPy.
    ncv, v0, maxiter, options
        ARPACK's/PROPACK's/LOBPCG's knobs, validated as SciPy validates them. They
        steer a Krylov iteration the core does not run, and do not change what is
        returned (the tolerance below decides that), so they are otherwise unused.
        There is no non-convergence error: the exact SVD is the fallback.
    tol : float, default 0
        Accuracy of the singular values: the triplets are accepted when each
        residual ``max(||A v - s u||, ||A^T u - s v||) <= tol * s_1`` (then a
        singular value of ``A`` lies within ``tol * s_1`` of each ``s``); 0 means
        machine precision (``16 sqrt(max(M, N)) eps``, eps of ``A``'s dtype).
    which : {"LM", "SM"}, default "LM"
        Largest or smallest singular values.
    return_singular_vectors : {True, False, "u", "vh"}, default True
        As in SciPy: ``(u, s, vh)``, ``s`` alone, or ``(u, s, None)`` /
        ``(None, s, vh)``.
    solver : {"arpack", "propack", "lobpcg"}, default "arpack"
        Decides only the range of ``k`` (as in SciPy); the computation is the same.
    random_state, rng : int, numpy.random.Generator or RandomState, optional
        Becomes the seed of the core's Philox sketch. ``rng`` is SciPy's newer
        name; give at most one.

    Returns
    -------
    u : (M, k), s : (k,) ascending, vh : (k, N)
        Singular values in ascending order, as SciPy's solvers return them; the
        vectors in the same order.

    Notes
    -----
    ``which="LM"``: randomized subspace iteration (:func:`lowrank_core.randomized_svd`
    with ``max(k, 10)`` extra sketch columns) with 8 power iterations, its result
    checked by its residuals; if they miss ``tol``, a second attempt with as many
    iterations as the first one's rate of convergence says are needed (a quarter
    more, at least 16), when that is at most 64; else, or if that misses too, the
    exact truncated SVD (:func:`lowrank_core.svd`, LAPACK ``gesdd``). A fast
    decaying spectrum takes the randomized path, a flat one the exact SVD. ``which="SM"``:
    the exact SVD.

    Sparse and operator input take the same randomized attempts (the residuals by
    products); where they miss ``tol``, and for ``which="SM"``, the answer is SciPy's
    own ``scipy.sparse.linalg.svds`` with every argument as given (its Krylov
    solvers need no dense copy, where the exact SVD would), so its convergence
    errors are SciPy's.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.compat.scipy import svds
    >>> u, s, vh = svds(np.diag([1.0, 4.0, 3.0, 2.0]), k=2, random_state=0)
    >>> s.round(12)
    array([3., 4.])
    """
    if rng is not None and random_state is not None:
        raise ValueError("random_state and rng cannot both be given (rng is SciPy's newer "
                         "name for random_state)")
    random_state = rng if rng is not None else random_state
    solver = str(solver).lower()
    if solver not in _SOLVERS:
        raise ValueError(f"solver must be one of {set(_SOLVERS)}.")
    if type(A).__module__.startswith("cupyx.scipy.sparse"):
        _sparse.refuse_sparse(A, "A")
    if _sparse.is_sparse(A) or _sparse.is_operator(A):
        return _svds_by_products(A, k, ncv, tol, which, v0, maxiter, return_singular_vectors,
                                 solver, random_state, options,
                                 rng_name="rng" if rng is not None else "random_state")
    if isinstance(A, str):
        raise TypeError(f"A must be an array, got a str ({A!r}): type not understood")
    dtype_kind = np.asarray(A).dtype.kind if not _checks.is_cupy(A) else A.dtype.kind
    if dtype_kind not in "biufc":
        raise ValueError("`A` must be of numeric data type.")
    A = _checks.as_float_array(A, "A")
    if A.ndim != 2:
        raise ValueError(f"A must be 2-D: array must have ndim <= 2 (got shape {A.shape})")
    if math.prod(A.shape) == 0:
        raise ValueError("`A` must not be empty.")
    m, n = A.shape
    kmax = min(m, n) if solver == "propack" else min(m, n) - 1
    if int(k) != k or not (0 < k <= kmax):
        raise ValueError("`k` must be an integer satisfying `0 < k < min(A.shape)`.")
    k = int(k)
    if solver == "arpack" and ncv is not None:
        if int(ncv) != ncv or not (k < ncv < min(A.shape)):
            raise ValueError("`ncv` must be an integer satisfying `k < ncv < min(A.shape)`.")
    if tol < 0 or not np.isfinite(tol):
        raise ValueError("`tol` must be a non-negative floating point value.")
    tol = float(tol)
    which = str(which).upper()
    if which not in ("LM", "SM"):
        raise ValueError("`which` must be in {'LM', 'SM'}.")
    if v0 is not None:
        v0 = np.atleast_1d(v0)
        if v0.dtype.kind not in "fc":
            raise ValueError("`v0` must be of floating or complex floating data type.")
        shape = (m,) if solver == "propack" else (min(m, n),)
        if v0.shape != shape:
            raise ValueError(f"`v0` must have shape {shape}.")
    if maxiter is not None and (int(maxiter) != maxiter or maxiter <= 0):
        raise ValueError("`maxiter` must be a positive integer.")
    if return_singular_vectors not in (True, False, "u", "vh"):
        raise ValueError("`return_singular_vectors` must be in {True, False, 'vh', 'u'}.")
    seed = _seed(random_state)

    if which == "SM":
        U, s, Vh = _svd(A, min(m, n))
        U, s, Vh = U[:, -k:], s[-k:], Vh[-k:]
    else:
        U, s, Vh = _largest(A, k, tol, seed)
    return _ascending(U, s, Vh, return_singular_vectors, _checks.array_module(A))


def _svds_by_products(A, k, ncv, tol, which, v0, maxiter, return_singular_vectors, solver,
                      random_state, options, rng_name):
    """:func:`svds` of sparse or operator input: the randomized attempts where they meet
    ``tol`` (largest values), else SciPy's svds with the caller's arguments."""
    import scipy.sparse.linalg as splinalg

    m, n = _sparse._check_shape(A.shape, "A")
    kmax = min(m, n) if str(solver).lower() == "propack" else min(m, n) - 1
    if isinstance(k, bool) or int(k) != k or not (0 < k <= kmax):
        raise ValueError("`k` must be an integer satisfying `0 < k < min(A.shape)`.")
    k = int(k)
    if tol < 0 or not np.isfinite(tol):
        raise ValueError("`tol` must be a non-negative floating point value.")
    which_upper = str(which).upper()
    if return_singular_vectors not in (True, False, "u", "vh"):
        raise ValueError("`return_singular_vectors` must be in {True, False, 'vh', 'u'}.")
    if which_upper == "LM" and m * n > 0:
        dtype = _sparse._float_dtype(A.dtype, "A")
        eps = float(np.finfo(dtype).eps)
        target = float(tol) if tol > 0 else 16 * math.sqrt(max(m, n)) * eps
        found = _randomized_attempts(A, k, target, _seed(random_state))
        if found is not None:
            return _ascending(*found, return_singular_vectors, np)
    operator = A if _sparse.is_sparse(A) or isinstance(A, splinalg.LinearOperator) \
        else _as_linear_operator(A)
    return splinalg.svds(operator, k=k, ncv=ncv, tol=tol, which=which, v0=v0, maxiter=maxiter,
                         return_singular_vectors=return_singular_vectors, solver=solver,
                         options=options, **{rng_name: random_state})


def _as_linear_operator(A):
    """A ``LinearOperator`` over an object with ``matmat``/``rmatmat`` only."""
    from scipy.sparse.linalg import LinearOperator

    return LinearOperator(
        A.shape, dtype=A.dtype, matmat=A.matmat, rmatmat=A.rmatmat,
        matvec=lambda x: np.asarray(A.matmat(np.reshape(x, (-1, 1)))).reshape(-1),
        rmatvec=lambda y: np.asarray(A.rmatmat(np.reshape(y, (-1, 1)))).reshape(-1))


def _ascending(U, s, Vh, return_singular_vectors, xp):
    """Descending triplets in SciPy's order and form (ascending; see ``svds``)."""
    s = xp.ascontiguousarray(s[::-1])
    if return_singular_vectors is False:
        return s
    U = xp.ascontiguousarray(U[:, ::-1]) if return_singular_vectors in (True, "u") else None
    Vh = xp.ascontiguousarray(Vh[::-1]) if return_singular_vectors in (True, "vh") else None
    return U, s, Vh


def _randomized_attempts(A, k, target, seed):
    """The top-k triplets (descending) from at most two randomized attempts whose
    residuals meet ``target`` (relative to ``s_1``), or None (see :func:`svds`)."""
    power_iters = _FIRST_ATTEMPT
    for _ in range(2):
        U, s, Vh = _randomized_svd(A, k, oversamples=max(k, 10), power_iters=power_iters,
                                   seed=seed, mixed_precision=False)
        if not float(s[0]) > 0:
            return U, s, Vh  # A is zero: any orthonormal vectors are singular vectors
        residual = _residual(A, U, s, Vh) / float(s[0])
        if residual <= target:
            return U, s, Vh
        if power_iters != _FIRST_ATTEMPT or not 0 < residual < 1:
            return None
        # Subspace iteration shrinks the residual geometrically: as many iterations as
        # the first attempt's rate says reach the target, and a quarter more.
        needed = math.ceil(1.25 * power_iters * math.log(target) / math.log(residual))
        if needed > _MOST_POWER_ITERS:
            return None  # converging too slowly: a Krylov or exact solver is cheaper
        power_iters = max(needed, 2 * power_iters)
    return None


def _largest(A, k, tol, seed):
    """The top-k triplets to ``tol`` (see :func:`svds`), descending."""
    m, n = A.shape
    eps = float(np.finfo(A.dtype).eps)
    target = tol if tol > 0 else 16 * math.sqrt(max(m, n)) * eps
    found = _randomized_attempts(A, k, target, seed)
    return found if found is not None else _svd(A, k)


def _residual(A, U, s, Vh) -> float:
    """``max_i max(||A v_i - s_i u_i||, ||A^T u_i - s_i v_i||)``."""
    if _sparse.is_operator(A):  # by its products (any object with matmat/rmatmat)
        AV, AtU = A.matmat(np.ascontiguousarray(Vh.T)), A.rmatmat(U)
        xp = np
    else:  # dense or scipy.sparse
        AV, AtU = A @ Vh.T, A.T @ U
        xp = np if _sparse.is_sparse(A) else _checks.array_module(A)
    left = xp.linalg.norm(xp.asarray(AV) - U * s, axis=0)
    right = xp.linalg.norm(xp.asarray(AtU) - Vh.T * s, axis=0)
    return float(xp.maximum(left, right).max())

