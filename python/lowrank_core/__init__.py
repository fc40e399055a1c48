"""lowrank_core: low-rank matrix approximation with a compiled core.

Exact and randomized truncated SVD, numerical rank with NumPy's semantics,
effective rank and its relatives, and a linear bottleneck network that learns a
rank-k approximation from how a matrix acts on vectors. NumPy arrays run on the C++
core (``lowrank_core._core``), CuPy arrays on the CUDA core (``lowrank_core._cuda``,
where the build has it; see :func:`gpu_available`); :mod:`lowrank_core.reference`
holds the same routines in plain NumPy, the ground truth the tests check the core
against.
"""

from __future__ import annotations

import atexit

try:
    from . import _core  # noqa: F401
except ImportError as error:  # pragma: no cover - only on a broken install
    raise ImportError(
        "lowrank_core's compiled core (lowrank_core._core) could not be loaded: "
        f"{error}. Was the package built? Install it with `pip install .` from the "
        "source tree (see README.md), not by putting python/ on sys.path."
    ) from error


from ._backend import cpu_kernels, gpu_available
from ._bottleneck import Bottleneck, NotFittedError
from ._config import show_config
from ._pca import PCAResult, pca
from ._rank import entropy_rank, erank, rank, relative_error, stable_rank
from ._results import ErrorEstimate, SVDResult, ToleranceSVDResult
from ._svd import estimate_error, randomized_svd, singular_values, svd
from . import reference  # noqa: E402  (plain-NumPy ground truth, lowrank_core.reference.svd ...)
from ._interop import dlpack_io


def _public(function):
    # torch tensors, JAX arrays and any other DLPack array in, the caller's kind out
    # (lowrank_core._interop); NumPy and CuPy calls go straight through. Named as
    # lowrank_core's own, so that the function pickles (a process pool's task).
    wrapped = dlpack_io(function)
    wrapped.__module__ = __name__
    return wrapped


(svd, randomized_svd, singular_values, rank, erank, stable_rank, entropy_rank,
 relative_error, estimate_error, pca) = map(_public, (
     svd, randomized_svd, singular_values, rank, erank, stable_rank, entropy_rank,
     relative_error, estimate_error, pca))

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it here


def _wait_for_abandoned_calls():
    # A LAPACK call that Ctrl-C abandoned still runs on a thread of its own, and the
    # BLAS's buffers must outlive it (bindings/interruptible.hpp). Another Ctrl-C stops
    # the wait.
    try:
        _core._wait_for_abandoned_calls()
    except KeyboardInterrupt:
        pass


atexit.register(_wait_for_abandoned_calls)

__all__ = [
    "Bottleneck",
    "ErrorEstimate",
    "NotFittedError",
    "PCAResult",
    "SVDResult",
    "ToleranceSVDResult",
    "cpu_kernels",
    "entropy_rank",
    "erank",
    "estimate_error",
    "gpu_available",
    "pca",
    "randomized_svd",
    "rank",
    "relative_error",
    "show_config",
    "singular_values",
    "stable_rank",
    "svd",
]
