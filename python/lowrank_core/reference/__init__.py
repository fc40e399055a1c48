"""Every public routine of lowrank_core in plain NumPy, with the same signatures.

This is the ground truth the tests check the compiled core against, and the
maths written out to be read. It calls only NumPy (SciPy's LinearOperator for sparse and operator input; and the package's own
argument checks, so both raise the same errors for the same bad input).
"""

from ._bottleneck import (Bottleneck, exact_gradients, forward, initial_parameters,
                          mse_gradients, optimizer_step)
from ._pca import pca
from ._philox import gaussian_sketch, gaussian_stream, philox4x32_10, uniform_stream
from ._rank import entropy_rank, erank, randomized_rank, rank, relative_error, stable_rank
from ._svd import estimate_error, randomized_svd, sign_convention, singular_values, svd

__all__ = [
    "Bottleneck",
    "entropy_rank",
    "exact_gradients",
    "forward",
    "erank",
    "estimate_error",
    "gaussian_sketch",
    "gaussian_stream",
    "initial_parameters",
    "mse_gradients",
    "optimizer_step",
    "pca",
    "philox4x32_10",
    "randomized_rank",
    "randomized_svd",
    "rank",
    "relative_error",
    "sign_convention",
    "singular_values",
    "stable_rank",
    "svd",
    "uniform_stream",
]
