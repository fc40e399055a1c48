"""``TruncatedSVD`` and ``PCA`` with scikit-learn's interface, on lowrank_core's core."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.utils.validation import check_is_fitted, validate_data

from .._svd import randomized_svd as _randomized_svd
from .._svd import svd as _exact_svd
from ..compat.sklearn import randomized_svd, seed_from_random_state

__all__ = ["PCA", "TruncatedSVD"]

_NORMALIZERS = ("auto", "QR", "LU", "none")


def _flip_v_based(U, Vt):
    """Signs such that the largest-magnitude entry of each row of ``Vt`` is positive
    (scikit-learn's ``svd_flip(U, Vt, u_based_decision=False)``): the components
    then do not depend on the order of the samples."""
    if Vt.shape[0] == 0:
        return U, Vt
    columns = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), columns])
    signs = np.where(signs == 0, 1, signs).astype(Vt.dtype)
    return U * signs, Vt * signs[:, None]


def _check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")


def _check_count(value, name, minimum, allow_auto=False):
    if allow_auto and isinstance(value, str) and value == "auto":
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}"
                         f"{' or “auto”' if allow_auto else ''}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class _LowRankTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What TruncatedSVD and PCA share: the projection and its inverse."""

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # float32 is computed in float32 by the core, float64 in float64.
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X, y=None):
        """Fit the model on ``X`` (n_samples, n_features); ``y`` is ignored.

        Returns ``self``."""
        self.fit_transform(X)
        return self


class TruncatedSVD(_LowRankTransformer):
    """Dimensionality reduction by truncated SVD (LSA), as
    ``sklearn.decomposition.TruncatedSVD``, on lowrank_core's core.

    The data are not centred. Dense input only (the core has no sparse products
    yet): scipy.sparse input is a ``TypeError``.

    Parameters
    ----------
    n_components : int, default 2
        Output dimensions, ``1 <= n_components <= n_features``.
    algorithm : {"randomized", "arpack"}, default "randomized"
        ``"randomized"``: :func:`lowrank_core.compat.sklearn.randomized_svd`.
        ``"arpack"``: the exact truncated SVD (:func:`lowrank_core.svd`, LAPACK
        ``gesdd``), which ARPACK approximates to ``tol``; then ``n_components``
        must be below ``min(n_samples, n_features)``, as for ARPACK.
    n_iter : int, default 5
        Power iterations of the randomized solver.
    n_oversamples : int, default 10
        Extra sketch columns of the randomized solver.
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default "auto"
        Accepted as in scikit-learn; all run the core's orthonormalisation (see
        :func:`lowrank_core.compat.sklearn.randomized_svd`).
    random_state : int, numpy.random.RandomState or None, default None
        Seed source of the core's Philox sketch.
    tol : float, default 0.0
        ARPACK's tolerance in scikit-learn; the exact SVD needs none (>= 0 checked).

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Right singular vectors; the largest-magnitude entry of each is positive.
    explained_variance_, explained_variance_ratio_ : ndarray (n_components,)
        Variance of each output column, and its share of the total variance of X.
    singular_values_ : ndarray (n_components,)
    n_features_in_, feature_names_in_
        As in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.sklearn import TruncatedSVD
    >>> X = np.random.default_rng(0).standard_normal((20, 5))
    >>> TruncatedSVD(2, random_state=0).fit_transform(X).shape
    (20, 2)
    """

    def __init__(self, n_components=2, *, algorithm="randomized", n_iter=5, n_oversamples=10,
                 power_iteration_normalizer="auto", random_state=None, tol=0.0):
        self.n_components = n_components
        self.algorithm = algorithm
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state
        self.tol = tol

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return ``X`` reduced, shape (n_samples, n_components)."""
        _check_choice(self.algorithm, "algorithm", ("randomized", "arpack"))
        _check_choice(self.power_iteration_normalizer, "power_iteration_normalizer",
                      _NORMALIZERS)
        n_iter = _check_count(self.n_iter, "n_iter", 0)
        n_oversamples = _check_count(self.n_oversamples, "n_oversamples", 1)
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"tol must be a real number >= 0, got {self.tol!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_features=2)
        n_samples, n_features = X.shape
        if self.algorithm == "arpack":
            k = _check_count(self.n_components, "n_components", 1)
            if k >= min(X.shape):
                raise ValueError(f"n_components must be < min(n_samples, n_features) "
                                 f"(n_samples={n_samples}, n_features={n_features}) for "
                                 f"algorithm='arpack', got {k}")
            U, S, Vt = _exact_svd(X, k)
        else:
            k = _check_count(self.n_components, "n_components", 1)
            if k > n_features:
                raise ValueError(f"n_components must be <= n_features = {n_features}, "
                                 f"got {k}")
            U, S, Vt = randomized_svd(X, k, n_iter=n_iter, n_oversamples=n_oversamples,
                                      power_iteration_normalizer=self.power_iteration_normalizer,
                                      random_state=self.random_state, flip_sign=False)
        U, Vt = _flip_v_based(U, Vt)
        self.components_ = Vt
        X_transformed = U * S
        self.explained_variance_ = np.var(X_transformed, axis=0)
        full_var = np.var(X, axis=0).sum()
        self.explained_variance_ratio_ = (self.explained_variance_ / full_var if full_var > 0
                                          else np.zeros_like(self.explained_variance_))
        self.singular_values_ = S
        return X_transformed

    def transform(self, X):
        """``X @ components_.T``: ``X`` reduced to (n_samples, n_components)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return X @ self.components_.T

    def inverse_transform(self, X):
        """``X @ components_``: back to (n_samples, n_features)."""
        check_is_fitted(self)
        X = np.asarray(X)
        return X @ self.components_


class PCA(_LowRankTransformer):
    """Principal component analysis, as ``sklearn.decomposition.PCA``, on
    lowrank_core's core.

    The data are centred explicitly (a centred copy of X; the core does not yet
    centre implicitly), then decomposed.

    Parameters
    ----------
    n_components : int, float or None, default None
        int: components kept, ``1 <= n_components <= min(n_samples, n_features)``.
        float in (0, 1): the fewest components whose explained variance exceeds
        that share; with ``svd_solver="randomized"`` found by the tolerance mode
        (:func:`lowrank_core.randomized_svd` with ``tol = sqrt(1 - share)``,
        ``ord="fro"``), which keeps the share and may keep a component or two
        more than the exact count. None: ``min(n_samples,
        n_features)``. ``"mle"`` is not supported (a ``ValueError``).
    copy : bool, default True
        Accepted for compatibility; X is never modified (the centred copy is new).
    whiten : bool, default False
        Scale the projections to unit variance.
    svd_solver : {"auto", "full", "randomized"}, default "auto"
        ``"full"``: the exact SVD (:func:`lowrank_core.svd`). ``"randomized"``:
        :func:`lowrank_core.compat.sklearn.randomized_svd`. ``"auto"``: randomized
        when ``max(X.shape) > 500`` and an integer ``n_components < 0.8 *
        min(X.shape)``, else full (scikit-learn's rule, without its
        ``covariance_eigh`` branch, which here is the full solver). ``"arpack"``
        and ``"covariance_eigh"`` are a ``ValueError``.
    tol : float, default 0.0
        ARPACK's tolerance in scikit-learn; unused here (>= 0 checked).
    iterated_power : int or "auto", default "auto"
        Power iterations of the randomized solver (scikit-learn's "auto" rule).
    n_oversamples : int, default 10
    power_iteration_normalizer : {"auto", "QR", "LU", "none"}, default "auto"
    random_state : int, numpy.random.RandomState or None, default None
        As in :class:`TruncatedSVD`.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Principal axes; the largest-magnitude entry of each is positive.
    explained_variance_ : ndarray (n_components,)
        ``singular_values_**2 / (n_samples - 1)``.
    explained_variance_ratio_ : ndarray (n_components,)
    singular_values_ : ndarray (n_components,)
    mean_ : ndarray (n_features,)
    n_components_, n_samples_, noise_variance_, n_features_in_, feature_names_in_
        As in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_core.sklearn import PCA
    >>> X = np.random.default_rng(0).standard_normal((30, 4))
    >>> PCA(2, random_state=0).fit(X).components_.shape
    (2, 4)
    """

    def __init__(self, n_components=None, *, copy=True, whiten=False, svd_solver="auto",
                 tol=0.0, iterated_power="auto", n_oversamples=10,
                 power_iteration_normalizer="auto", random_state=None):
        self.n_components = n_components
        self.copy = copy
        self.whiten = whiten
        self.svd_solver = svd_solver
        self.tol = tol
        self.iterated_power = iterated_power
        self.n_oversamples = n_oversamples
        self.power_iteration_normalizer = power_iteration_normalizer
        self.random_state = random_state

    def _solver(self, n_components, shape):
        if self.svd_solver != "auto":
            return self.svd_solver
        if (max(shape) > 500 and isinstance(n_components, numbers.Integral)
                and n_components < 0.8 * min(shape)):
            return "randomized"
        return "full"

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its projections, shape (n_samples, n_components)."""
        _check_choice(self.svd_solver, "svd_solver", ("auto", "full", "randomized"))
        _check_choice(self.power_iteration_normalizer, "power_iteration_normalizer",
                      _NORMALIZERS)
        iterated_power = _check_count(self.iterated_power, "iterated_power", 0,
                                      allow_auto=True)
        n_oversamples = _check_count(self.n_oversamples, "n_oversamples", 1)
        if not (isinstance(self.tol, numbers.Real) and self.tol >= 0):
            raise ValueError(f"tol must be a real number >= 0, got {self.tol!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        n_samples, n_features = X.shape
        limit = min(n_samples, n_features)
        n_components = self.n_components
        if n_components is None:
            n_components = limit
        elif isinstance(n_components, str) or isinstance(n_components, (bool, np.bool_)):
            raise ValueError(f"n_components must be an int, a float in (0, 1) or None, got "
                             f"{n_components!r} ('mle' is not supported)")
        elif isinstance(n_components, numbers.Integral):
            if not 1 <= n_components <= limit:
                raise ValueError(f"n_components={n_components} must be between 1 and "
                                 f"min(n_samples, n_features)={limit}")
        elif isinstance(n_components, numbers.Real):
            if not 0 < n_components < 1:
                raise ValueError(f"a float n_components must be in (0, 1), got "
                                 f"{n_components}")
        else:
            raise ValueError(f"n_components must be an int, a float in (0, 1) or None, got "
                             f"{n_components!r}")
        solver = self._solver(n_components, X.shape)

        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        if solver == "full":
            U, S, Vt = _exact_svd(centred, limit)
            explained_variance = S**2 / (n_samples - 1)
            total_var = explained_variance.sum()
            ratio = (explained_variance / total_var if total_var > 0
                     else np.zeros_like(explained_variance))
            if not isinstance(n_components, numbers.Integral):
                cumulative = np.cumsum(ratio)
                n_components = int(np.searchsorted(cumulative, n_components, side="right")) + 1
                n_components = min(n_components, limit)
            self.noise_variance_ = (float(explained_variance[n_components:].mean())
                                    if n_components < limit else 0.0)
        else:
            if isinstance(n_components, numbers.Integral):
                U, S, Vt = randomized_svd(
                    centred, n_components, n_iter=iterated_power, n_oversamples=n_oversamples,
                    power_iteration_normalizer=self.power_iteration_normalizer,
                    random_state=self.random_state, flip_sign=False)
            else:
                # The share of variance kept is 1 - (||residual||_F / ||centred||_F)^2:
                # the tolerance mode's Frobenius tol. "Exceeds" (scikit-learn's
                # searchsorted side="right") against the mode's "<=": the float's next
                # value below.
                tol = float(np.sqrt(np.nextafter(1.0 - float(n_components), 0.0)))
                found = _randomized_svd(centred, tol=tol, ord="fro",
                                        seed=seed_from_random_state(self.random_state))
                U, S, Vt = found
                n_components = found.rank
            explained_variance = S**2 / (n_samples - 1)
            total_var = float(np.var(X, axis=0, ddof=1).sum())
            ratio = (explained_variance / total_var if total_var > 0
                     else np.zeros_like(explained_variance))
            self.noise_variance_ = ((total_var - float(explained_variance.sum()))
                                    / (limit - n_components) if n_components < limit else 0.0)
        U, Vt = _flip_v_based(U[:, :n_components], Vt[:n_components])
        self.components_ = Vt
        self.n_components_ = n_components
        self.n_samples_ = n_samples
        self.explained_variance_ = explained_variance[:n_components]
        self.explained_variance_ratio_ = ratio[:n_components]
        self.singular_values_ = S[:n_components]
        projections = U * S[:n_components]
        if self.whiten:
            projections = U * float(np.sqrt(n_samples - 1))
        return projections

    def transform(self, X):
        """``(X - mean_) @ components_.T`` (divided by the component scales if
        ``whiten``)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        projections = (X - self.mean_) @ self.components_.T
        if self.whiten:
            scale = np.sqrt(self.explained_variance_)
            projections /= np.where(scale > 0, scale, 1)
        return projections

    def inverse_transform(self, X):
        """Back to the feature space: ``X @ components_ + mean_`` (scaled back first
        if ``whiten``)."""
        check_is_fitted(self)
        X = np.asarray(X)
        if self.whiten:
            return (X * np.sqrt(self.explained_variance_)) @ self.components_ + self.mean_
        return X @ self.components_ + self.mean_
