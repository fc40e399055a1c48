"""Drop-in replacements for the low-rank entry points of other libraries.

Each submodule has the signatures, defaults and semantics of the functions it
replaces, so existing code switches by changing an import:

- :mod:`lowrank_core.compat.sklearn`: ``randomized_svd`` of
  ``sklearn.utils.extmath``;
- :mod:`lowrank_core.compat.torch`: ``svd_lowrank`` and ``pca_lowrank`` of ``torch``;
- :mod:`lowrank_core.compat.scipy`: ``svds`` of ``scipy.sparse.linalg``.

They take NumPy and CuPy arrays and any DLPack array (torch tensors, JAX arrays)
and return the caller's kind. Where an original option has no counterpart in
lowrank_core, its docstring says how it maps. Importing this package imports none
of scikit-learn, torch or SciPy's sparse solvers; the submodules import only what
they need.
"""
