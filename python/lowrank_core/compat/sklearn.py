"""``sklearn.utils.extmath.randomized_svd`` on lowrank_core's core.

Change ``from sklearn.utils.extmath import randomized_svd`` to
``from lowrank_core.compat.sklearn import randomized_svd``. scikit-learn itself is
not needed.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import _checks, _sparse
from .._interop import dlpack_io
from .._svd import randomized_svd as _randomized_svd

__all__ = ["randomized_svd"]

_NORMALIZERS = ("auto", "QR", "LU", "none")
_DRIVERS = ("gesdd", "gesvd")


def seed_from_random_state(random_state) -> int:
    """A seed for the core's Philox sketch from scikit-learn's ``random_state``.

    An int in ``[0, 2**32)`` is the seed itself; a ``numpy.random.RandomState``
    draws one (advancing its state, as scikit-learn's draws would); ``None`` draws
    one from NumPy's global RandomState (so ``np.random.seed`` makes calls
    repeatable, as in scikit-learn)."""
    if random_state is None:
        random_state = np.random.mtrand._rand
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return _checks.check_int(random_state, "random_state", minimum=0, maximum=2**32 - 1)
    raise ValueError(f"random_state must be None, an int in [0, 2**32) or a "
                     f"numpy.random.RandomState, got {random_state!r}")


def flip_u_based(U, Vh):
    """Signs such that the largest-magnitude entry of each column of ``U`` is
    positive (scikit-learn's ``svd_flip(U, Vh, u_based_decision=True)``)."""
    xp = _checks.array_module(U)
    if U.shape[1] == 0:
        return U, Vh
    rows = xp.argmax(xp.abs(U), axis=0)
    signs = xp.sign(U[rows, xp.arange(U.shape[1])])
    signs = xp.where(signs == 0, 1, signs).astype(U.dtype)
    return U * signs, Vh * signs[:, None]


@dlpack_io
def randomized_svd(M, n_components, *, n_oversamples=10, n_iter="auto",
                   power_iteration_normalizer="auto", transpose="auto", flip_sign=True,
                   random_state=None, svd_lapack_driver="gesdd"):
    """Truncated randomized SVD with scikit-learn's signature, defaults and semantics.

    Parameters
    ----------
    M : array_like or scipy.sparse matrix, shape (n_samples, n_features)
        Real matrix (NumPy, CuPy, any DLPack array such as a torch tensor, with
        results in its kind; or a ``scipy.sparse`` matrix, read without densifying,
        as :func:`lowrank_core.randomized_svd` reads it). Integer input is computed
        in float64, float32 in float32, as in scikit-learn. ``cupyx`` sparse
        matrices are a ``TypeError`` (no GPU sparse products yet).
    n_components : int
        Number of singular triplets, >= 1. As in scikit-learn, a value above
        ``min(M.shape)`` returns ``min(M.shape)`` triplets.
    n_oversamples : int, default 10
        Extra sketch columns (the core's ``oversamples``).
    n_iter : int or "auto", default "auto"
        Power iterations; ``"auto"`` is 7 when ``n_components < 0.1 * min(M.shape)``
        and 4 otherwise (scikit-learn's rule).
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default "auto"
        All four run the core's orthonormalisation after every power iteration,
        which is ``"QR"`` (one pass over ``M`` per iteration; see
        :func:`lowrank_core.randomized_svd`). ``"LU"`` and ``"none"`` span the same
        subspace in exact arithmetic, so the choice changes only rounding, except
        that ``"none"`` here does not lose accuracy with many iterations as
        scikit-learn's unnormalised iterations do.
    transpose : bool or "auto", default "auto"
        Whether to work on ``M.T`` (``"auto"``: when ``n_samples < n_features``);
        the factors are transposed back, as in scikit-learn.
    flip_sign : bool, default True
        True: the largest-magnitude entry of each column of ``U`` is positive
        (scikit-learn's ``svd_flip``, u-based, also when transposed). False: the
        signs are left as they come, which here is that same convention (the core
        always fixes it); scikit-learn leaves LAPACK's arbitrary signs.
    random_state : int, numpy.random.RandomState or None, default None
        Becomes the seed of the core's Philox sketch (see
        :func:`seed_from_random_state`). The sketch is not scikit-learn's, so the
        results differ from scikit-learn's bitwise but have the same accuracy.
    svd_lapack_driver : {"gesdd", "gesvd"}, default "gesdd"
        scikit-learn's LAPACK driver for the small SVD. The core always uses
        ``gesdd``; ``"gesvd"`` is accepted and changes only rounding.

    Returns
    -------
    U : array, shape (n_samples, n_components)
    s : array, shape (n_components,)
        Descending.
    Vt : array, shape (n_components, n_features)

    References
    ----------
    scikit-learn, ``sklearn.utils.extmath.randomized_svd``; N. Halko, P.-G.
    Martinsson, J. A. Tropp, SIAM Review 53(2), 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.compat.sklearn import randomized_svd
    >>> U, s, Vt = randomized_svd(np.diag([3.0, 2.0, 1.0]), 2, random_state=0)
    >>> s.round(12)
    array([3., 2.])
    """
    if type(M).__module__.startswith("cupyx.scipy.sparse"):
        raise TypeError(
            f"M is a cupyx.scipy.sparse matrix ({type(M).__name__}); lowrank_core has no "
            "GPU sparse products yet: pass M.get() (scipy.sparse, on the host)")
    n_components = _checks.check_int(n_components, "n_components", minimum=1)
    n_oversamples = _checks.check_int(n_oversamples, "n_oversamples", minimum=0)
    if not (isinstance(n_iter, str) and n_iter == "auto"):
        n_iter = _checks.check_int(n_iter, "n_iter", minimum=0)
    _checks.check_choice(power_iteration_normalizer, "power_iteration_normalizer",
                         _NORMALIZERS)
    if not (isinstance(transpose, (bool, np.bool_)) or transpose == "auto"):
        raise ValueError(f"transpose must be True, False or 'auto', got {transpose!r}")
    if not isinstance(flip_sign, (bool, np.bool_)):
        raise TypeError(f"flip_sign must be True or False, got {type(flip_sign).__name__}")
    _checks.check_choice(svd_lapack_driver, "svd_lapack_driver", _DRIVERS)
    seed = seed_from_random_state(random_state)

    if not _sparse.is_sparse(M):  # scipy.sparse M is read as it is, never densified
        M = _checks.as_float_array(M, "M", ndim=2)
    n_samples, n_features = M.shape
    k = min(n_components, n_samples, n_features)
    if n_iter == "auto":  # scikit-learn decides on n_components, not on the clamped k
        n_iter = 7 if n_components < 0.1 * min(M.shape) else 4
    if transpose == "auto":
        transpose = n_samples < n_features
    if transpose:
        V, s, Ut = _randomized_svd(M.T, k, oversamples=n_oversamples, power_iters=n_iter,
                                   seed=seed)
        U, Vt = Ut.T, V.T
        # The core fixed the signs of M.T's left vectors; scikit-learn fixes U's.
        U, Vt = flip_u_based(U, Vt)
        return U, s, Vt
    U, s, Vt = _randomized_svd(M, k, oversamples=n_oversamples, power_iters=n_iter,
                               seed=seed)
    return U, s, Vt


