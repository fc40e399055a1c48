"""Every public routine of lowrank_core in plain NumPy, with the same signatures.

This is the ground truth the tests check the compiled core against, and the
maths written out to be read. It calls only NumPy (and the package's own
argument checks, so both raise the same errors for the same bad input).
"""

from ._philox import gaussian_sketch, philox4x32_10
from ._rank import entropy_rank, erank, rank, relative_error, stable_rank
from ._svd import randomized_svd, sign_convention, singular_values, svd

__all__ = [
    "entropy_rank",
    "erank",
    "gaussian_sketch",
    "philox4x32_10",
    "randomized_svd",
    "rank",
    "relative_error",
    "sign_convention",
    "singular_values",
    "stable_rank",
    "svd",
]
