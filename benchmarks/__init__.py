"""lowrank_core's benchmarks: ``python -m benchmarks --suite cpu|smoke|gpu|bottleneck``.

Times lowrank_core and the alternatives a user would pick (NumPy, scikit-learn,
fbpca, PyTorch) on the same matrices with known spectra, each library in its
own process, alternating them, and reports medians, ratios and accuracy in
``benchmarks/results/<suite>-<date>.md`` and ``.json``. One-off studies behind
single decisions of the core are in ``benchmarks/studies/``.
"""
