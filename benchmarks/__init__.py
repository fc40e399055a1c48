"""lowrank_core's benchmark suite: ``python -m benchmarks --suite cpu``.

Times lowrank_core and the alternatives a user would pick (NumPy, scikit-learn,
fbpca, PyTorch) on the same matrices with known spectra, each library in its
own process, alternating them, and reports medians, ratios and accuracy.
"""
