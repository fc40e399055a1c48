"""Type stubs of lowrank_core._core, the CPU core. Use the public API instead:
these functions take already-checked arrays (float32 or float64, C- or
Fortran-contiguous; stacks C-contiguous (batch, m, n))."""

from types import ModuleType
from typing import Any, Dict, Literal, Optional, Tuple, TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

blas_thread_control: bool
_testing: ModuleType  # switches and kernels for tests and benchmark studies

def svd(A: npt.NDArray[_F], k: int) -> Tuple[npt.NDArray[_F], npt.NDArray[_F], npt.NDArray[_F]]: ...
class RandomizedSvdTuning:
    """How the CPU core runs a randomized SVD; nothing in it changes the result
    beyond rounding (for tests and the studies in benchmarks/)."""

    block_bytes: int
    amx_limit: float
    copy_range_limit: float
    amx_one_piece_limit: float
    leak_margin: float
    def __init__(
        self,
        *,
        block_bytes: int = ...,
        amx_limit: float = 2.0,
        copy_range_limit: float = 1e-4,
        amx_one_piece_limit: float = 0.15,
        leak_margin: float = 3000.0,
    ) -> None: ...

class RandomizedSvdOptions:
    """One randomized SVD's contract, taken by both cores (checked in C++ where the
    SVD starts)."""

    rank: int
    sketch_columns: int
    power_iters: int
    seed: int
    mixed_precision: Literal["auto", "fast", "off"]
    tuning: RandomizedSvdTuning
    def __init__(
        self,
        *,
        rank: int = 1,
        sketch_columns: int = 11,
        power_iters: int = 4,
        seed: int = 0,
        mixed_precision: Literal["auto", "fast", "off"] = "auto",
        tuning: RandomizedSvdTuning = ...,
    ) -> None: ...

def randomized_svd(
    A: npt.NDArray[_F],
    options: RandomizedSvdOptions,
    sketch: Optional[npt.NDArray[_F]] = None,
) -> Tuple[npt.NDArray[_F], npt.NDArray[_F], npt.NDArray[_F]]: ...
def randomized_svd_to_tolerance(
    A: npt.NDArray[_F],
    tol: float,
    ord: Literal["fro", "2"],
    max_rank: int,
    block_size: int,
    power_iters: int,
    seed: int,
    probes: int,
    error_steps: int,
    sketch: Optional[npt.NDArray[_F]] = None,
) -> Tuple[npt.NDArray[_F], npt.NDArray[_F], npt.NDArray[_F], Dict[str, Any]]: ...
def estimate_error(
    A: npt.NDArray[_F],
    U: npt.NDArray[_F],
    S: npt.NDArray[_F],
    Vh: npt.NDArray[_F],
    ord: Literal["fro", "2"],
    probes: int,
    power_steps: int,
    seed: int,
) -> Tuple[float, float]: ...
def randomized_rank(
    A: npt.NDArray[_F],
    threshold: Optional[float],
    relative: bool,
    block_size: int,
    power_iters: int,
    seed: int,
    max_basis: int = 0,
) -> Tuple[int, bool, int, float]: ...
def singular_values(A: npt.NDArray[_F]) -> npt.NDArray[_F]: ...
def gaussian_sketch(rows: int, cols: int, seed: int, dtype: str = "float64") -> npt.NDArray[np.floating]: ...
def matrix_rank(
    A: npt.NDArray[_F],
    threshold: Optional[npt.NDArray[np.float64]],
    relative: bool,
    hermitian: bool,
) -> npt.NDArray[np.int64]: ...
def erank(A: npt.NDArray[_F]) -> npt.NDArray[np.float64]: ...
def stable_rank(A: npt.NDArray[_F]) -> npt.NDArray[np.float64]: ...
def entropy_rank(A: npt.NDArray[_F]) -> npt.NDArray[np.float64]: ...
def relative_error(A: npt.NDArray[_F], B: npt.NDArray[_F], ord: str) -> float: ...
