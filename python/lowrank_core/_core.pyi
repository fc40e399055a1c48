"""Type stubs of lowrank_core._core, the CPU core. Use the public API instead:
these functions take already-checked arrays (float32 or float64, C- or
Fortran-contiguous; stacks C-contiguous (batch, m, n))."""

from typing import Optional, Tuple, TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

blas_thread_control: bool

def svd(A: npt.NDArray[_F], k: int) -> Tuple[npt.NDArray[_F], npt.NDArray[_F], npt.NDArray[_F]]: ...
def randomized_svd(
    A: npt.NDArray[_F],
    k: int,
    sketch_columns: int,
    power_iters: int,
    seed: int,
    sketch: Optional[npt.NDArray[_F]] = None,
    mixed_precision: str = "auto",
    block_bytes: int = ...,
    amx_limit: float = 2.0,
    copy_range_limit: float = 1e-4,
    amx_one_piece_limit: float = 0.15,
    leak_margin: float = 3000.0,
) -> Tuple[npt.NDArray[_F], npt.NDArray[_F], npt.NDArray[_F]]: ...
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
