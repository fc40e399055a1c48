"""The CUDA core behind CuPy arrays: ``_core``'s functions, name for name.

:func:`lowrank_core._backend.backend_for` returns this module for CuPy arrays. Each
function takes what the matching ``_core`` function takes (arrays already checked
and normalised by :mod:`lowrank_core._checks`), allocates its outputs with CuPy on
the array's device, and hands ``lowrank_core._cuda`` the device pointers and
CuPy's current stream on that device: all work is ordered on that stream and the
results are CuPy arrays (scalars as Python numbers). Nothing is copied to the host
except scalars; the only host-to-device copy is a ``matrix_rank`` threshold (one
float64 per matrix).
"""

from __future__ import annotations

import numpy as np

try:
    import cupy
except ImportError as error:  # pragma: no cover - a CuPy array implies CuPy
    raise ImportError(f"CuPy is not installed ({error})") from error

from . import _cuda

__all__ = [
    "entropy_rank",
    "erank",
    "gaussian_sketch",
    "matrix_rank",
    "randomized_svd",
    "relative_error",
    "singular_values",
    "stable_rank",
    "svd",
]

_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def _dtype_name(A, name: str) -> str:
    try:
        return _DTYPES[np.dtype(A.dtype)]
    except KeyError:
        raise TypeError(f"{name} must be float32 or float64, got {A.dtype}") from None


def _view(A, name: str):
    """(pointer, rows, cols, leading dimension, row_major) of a 2-D CuPy array in
    either contiguous layout (the rule of bindings/numpy_arrays.hpp's view_of)."""
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {A.shape}")
    rows, cols = A.shape
    item = A.itemsize
    s0, s1 = A.strides
    unit_cols = cols <= 1 or s1 == item
    unit_rows = rows <= 1 or s0 == item
    if unit_cols and (rows <= 1 or (s0 % item == 0 and s0 // item >= cols)):
        return (A.data.ptr, rows, cols, max(cols, 1) if rows <= 1 else s0 // item, True)
    if unit_rows and (cols <= 1 or (s1 % item == 0 and s1 // item >= rows)):
        return (A.data.ptr, rows, cols, max(rows, 1) if cols <= 1 else s1 // item, False)
    raise ValueError(f"{name} must be C- or Fortran-contiguous")


def _stack(A):
    if A.ndim != 3 or not A.flags.c_contiguous:
        raise ValueError("A must be a C-contiguous (batch, m, n) stack")
    return A.shape


def _same_device(*arrays):
    devices = {a.device.id for a in arrays}
    if len(devices) > 1:
        raise ValueError(f"arrays are on different GPUs {sorted(devices)}; move them to one")
    return arrays[0].device


def _stream() -> int:
    """CuPy's current stream on the current device, as the integer cudaStream_t."""
    return cupy.cuda.get_current_stream().ptr


def svd(A, k):
    dtype = _dtype_name(A, "A")
    m, n = A.shape
    device = _same_device(A)
    with device:
        U = cupy.empty((m, k), dtype=A.dtype, order="F")
        S = cupy.empty((k,), dtype=A.dtype)
        Vh = cupy.empty((k, n), dtype=A.dtype, order="F")
        _cuda.svd(dtype, _view(A, "A"), int(k), U.data.ptr, S.data.ptr, Vh.data.ptr,
                  device.id, _stream())
    return U, S, Vh


def randomized_svd(A, k, sketch_columns, power_iters, seed, sketch=None):
    dtype = _dtype_name(A, "A")
    m, n = A.shape
    arrays = (A,) if sketch is None else (A, sketch)
    if sketch is not None and sketch.dtype != A.dtype:
        raise TypeError(f"sketch must have A's dtype {A.dtype}, got {sketch.dtype}")
    device = _same_device(*arrays)
    with device:
        U = cupy.empty((m, k), dtype=A.dtype, order="F")
        S = cupy.empty((k,), dtype=A.dtype)
        Vh = cupy.empty((k, n), dtype=A.dtype, order="F")
        sketch_view = None if sketch is None else _view(sketch, "sketch")
        _cuda.randomized_svd(dtype, _view(A, "A"), int(k), int(sketch_columns),
                             int(power_iters), int(seed), sketch_view, U.data.ptr,
                             S.data.ptr, Vh.data.ptr, device.id, _stream())
    return U, S, Vh


def singular_values(A):
    dtype = _dtype_name(A, "A")
    batch, m, n = _stack(A)
    device = _same_device(A)
    with device:
        out = cupy.empty((batch, min(m, n)), dtype=A.dtype)
        _cuda.singular_values(dtype, A.data.ptr, batch, m, n, out.data.ptr, device.id,
                              _stream())
    return out


def matrix_rank(A, threshold, relative, hermitian):
    dtype = _dtype_name(A, "A")
    batch, m, n = _stack(A)
    device = _same_device(A)
    with device:
        out = cupy.empty((batch,), dtype=np.int64)
        thresholds = None
        if threshold is not None:
            threshold = np.ascontiguousarray(threshold, dtype=np.float64)
            if threshold.shape != (batch,):
                raise ValueError("tol/rtol must hold one value per matrix")
            # One float64 per matrix, host to device on the current stream.
            thresholds = cupy.asarray(threshold)
        _cuda.matrix_rank(dtype, A.data.ptr, batch, m, n,
                          None if thresholds is None else thresholds.data.ptr,
                          bool(relative), bool(hermitian), out.data.ptr, device.id, _stream())
    return out


def _measure(A, which):
    dtype = _dtype_name(A, "A")
    batch, m, n = _stack(A)
    device = _same_device(A)
    with device:
        out = cupy.empty((batch,), dtype=np.float64)
        _cuda.rank_measure(dtype, which, A.data.ptr, batch, m, n, out.data.ptr, device.id,
                           _stream())
    return out


def erank(A):
    return _measure(A, "erank")


def stable_rank(A):
    return _measure(A, "stable_rank")


def entropy_rank(A):
    return _measure(A, "entropy_rank")


def relative_error(A, B, ord):
    dtype = _dtype_name(A, "A")
    if B.dtype != A.dtype:
        raise TypeError(f"B must have A's dtype {A.dtype}, got {B.dtype}")
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A {A.shape}, got {B.shape}")
    device = _same_device(A, B)
    with device:
        return float(_cuda.relative_error(dtype, _view(A, "A"), _view(B, "B"), str(ord),
                                          device.id, _stream()))


def gaussian_sketch(rows, cols, seed, dtype="float64"):
    """The Philox sketch (rows, cols) on the current device, Fortran order: the test
    matrix randomized_svd draws for ``seed`` (the same as ``_core.gaussian_sketch``)."""
    name = _DTYPES.get(np.dtype(dtype))
    if name is None:
        raise ValueError("dtype must be 'float32' or 'float64'")
    if rows < 0 or cols < 0:
        raise ValueError("rows and cols must be >= 0")
    device = cupy.cuda.Device()
    out = cupy.empty((rows, cols), dtype=name, order="F")
    _cuda.gaussian_sketch(name, int(rows), int(cols), int(seed), out.data.ptr, device.id,
                          _stream())
    return out
