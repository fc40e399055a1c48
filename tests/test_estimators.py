"""lowrank_core.sklearn.TruncatedSVD and PCA: scikit-learn's estimator contract
(check_estimator), Pipeline and GridSearchCV, and the same fitted attributes as
scikit-learn's own estimators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is a test-only dependency "
                                                "([test])")
from sklearn import decomposition  # noqa: E402
from sklearn.exceptions import SkipTestWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from lowrank_core.sklearn import PCA, TruncatedSVD  # noqa: E402

ESTIMATORS = [
    TruncatedSVD(),
    TruncatedSVD(n_components=1, algorithm="arpack"),
    PCA(),
    PCA(n_components=2, svd_solver="randomized", random_state=0),
    PCA(n_components=0.9, svd_solver="full"),
    PCA(n_components=2, whiten=True, svd_solver="full"),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_check_estimator(estimator):
    with warnings.catch_warnings():
        # array-API checks skip without SCIPY_ARRAY_API and say so by this warning
        warnings.simplefilter("ignore", SkipTestWarning)
        results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results
              if r["status"] == "failed"]
    assert not failed
    assert sum(r["status"] == "passed" for r in results) >= 40


def _data(shape=(200, 30), seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((shape[0], 5)) @ rng.standard_normal((5, shape[1]))
    return latent + 0.05 * rng.standard_normal(shape) + 3.0


@pytest.mark.parametrize("solver", ["full", "randomized"])
@pytest.mark.parametrize("whiten", [False, True])
def test_pca_matches_scikit_learns_pca(solver, whiten):
    X = _data()
    ours = PCA(5, svd_solver=solver, whiten=whiten, random_state=0).fit(X)
    theirs = decomposition.PCA(5, svd_solver=solver, whiten=whiten, random_state=0).fit(X)
    for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_",
                 "mean_"):
        assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8, err_msg=name)
    assert_allclose(ours.noise_variance_, theirs.noise_variance_, rtol=1e-6)
    # The same sign convention (scikit-learn's v-based svd_flip), so the same axes.
    assert_allclose(ours.components_, theirs.components_, atol=1e-8)
    assert_allclose(ours.transform(X), theirs.transform(X), atol=1e-7)
    assert_allclose(ours.fit_transform(X), theirs.fit_transform(X), atol=1e-7)
    Z = ours.transform(X)
    assert_allclose(ours.inverse_transform(Z), theirs.inverse_transform(Z), atol=1e-7)
    assert ours.n_components_ == 5 and ours.n_samples_ == 200


def test_pca_float_n_components_picks_the_components_as_scikit_learn():
    X = _data()
    ours = PCA(0.95, svd_solver="full").fit(X)
    theirs = decomposition.PCA(0.95, svd_solver="full").fit(X)
    assert ours.n_components_ == theirs.n_components_
    assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_,
                    rtol=1e-10)


@pytest.mark.parametrize("algorithm", ["randomized", "arpack"])
def test_truncated_svd_matches_scikit_learns(algorithm):
    X = _data()
    ours = TruncatedSVD(5, algorithm=algorithm, random_state=0).fit(X)
    theirs = decomposition.TruncatedSVD(5, algorithm=algorithm, random_state=0).fit(X)
    for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_"):
        assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7, err_msg=name)
    assert_allclose(ours.components_, theirs.components_, atol=1e-7)
    assert_allclose(ours.transform(X), theirs.transform(X), atol=1e-6)
    assert_allclose(ours.inverse_transform(ours.transform(X)),
                    theirs.inverse_transform(theirs.transform(X)), atol=1e-6)


def test_float32_is_kept():
    X = _data().astype(np.float32)
    for estimator in (PCA(3, random_state=0), TruncatedSVD(3, random_state=0)):
        assert estimator.fit_transform(X).dtype == np.float32
        assert estimator.components_.dtype == np.float32


def test_pipeline_and_grid_search():
    rng = np.random.default_rng(1)
    X = _data((300, 40))
    y = (X[:, 0] + 0.3 * rng.standard_normal(300) > X[:, 0].mean()).astype(int)
    pipeline = make_pipeline(StandardScaler(), PCA(random_state=0), LogisticRegression())
    search = GridSearchCV(pipeline, {"pca__n_components": [2, 5, 10]}, cv=3).fit(X, y)
    assert search.best_params_["pca__n_components"] in (2, 5, 10)
    assert search.best_score_ > 0.7
    names = search.best_estimator_[:-1].get_feature_names_out()
    assert list(names[:2]) == ["pca0", "pca1"]
    pipeline = make_pipeline(TruncatedSVD(5, random_state=0), LogisticRegression()).fit(X, y)
    assert pipeline.score(X, y) > 0.7


def test_bad_parameters_name_the_parameter():
    X = _data((20, 6))
    with pytest.raises(ValueError, match="svd_solver must be one of"):
        PCA(svd_solver="arpack").fit(X)
    with pytest.raises(ValueError, match="'mle' is not supported"):
        PCA("mle").fit(X)
    with pytest.raises(ValueError, match="n_components=7 must be between 1 and"):
        PCA(7).fit(X)
    with pytest.raises(ValueError, match="a float n_components must be in"):
        PCA(1.5, svd_solver="randomized").fit(X)
    with pytest.raises(ValueError, match="n_components must be <= n_features = 6"):
        TruncatedSVD(7).fit(X)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        TruncatedSVD(algorithm="lobpcg").fit(X)


def test_importing_the_estimators_needs_scikit_learn_only_there():
    import subprocess
    import sys

    code = ("import sys, lowrank_core; print('sklearn' in sys.modules); "
            "import lowrank_core.sklearn; print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("share", [0.5, 0.9, 0.99, 0.999])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_float_n_components_with_the_randomized_solver_keeps_the_share(share, dtype):
    # The tolerance mode (Frobenius tol = sqrt(1 - share)): the kept share exceeds the
    # one asked for, with at most a component or two more than the exact count
    # (scikit-learn's PCA(share, svd_solver="full")).
    rng = np.random.default_rng(7)
    X = (rng.standard_normal((600, 80)) * 0.93 ** np.arange(80)).astype(dtype)
    ours = PCA(share, svd_solver="randomized", random_state=0).fit(X)
    exact = decomposition.PCA(share, svd_solver="full").fit(X.astype(np.float64))
    assert exact.n_components_ <= ours.n_components_ <= exact.n_components_ + 2
    assert ours.explained_variance_ratio_.sum() > share
    # Eckart–Young: no r components keep more variance than the top r exact ones.
    r = ours.n_components_
    top = decomposition.PCA(r, svd_solver="full").fit(X.astype(np.float64))
    kept = float(ours.explained_variance_.sum())
    assert kept <= float(top.explained_variance_.sum()) * (1 + 1e-5)
    # A randomized basis (2 power iterations): each value close to the exact one,
    # relative to the largest (the last few, near the cut, are the least accurate).
    np.testing.assert_allclose(ours.explained_variance_, top.explained_variance_, rtol=0,
                               atol=5e-3 * float(top.explained_variance_[0]))
    assert ours.components_.shape == (ours.n_components_, 80)
    assert ours.transform(X).shape == (600, ours.n_components_)
