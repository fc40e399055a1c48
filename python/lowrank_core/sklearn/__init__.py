"""scikit-learn estimators on lowrank_core's core: ``TruncatedSVD`` and ``PCA``.

Drop-in for ``sklearn.decomposition.TruncatedSVD`` and ``PCA`` (the same parameters,
fitted attributes and methods), usable in a ``Pipeline`` and ``GridSearchCV``. They
need scikit-learn (``pip install scikit-learn``); ``import lowrank_core`` does not
import it.
"""

from ._decomposition import PCA, TruncatedSVD

__all__ = ["PCA", "TruncatedSVD"]
