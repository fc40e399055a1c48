"""The CUDA core behind CuPy arrays: ``_core``'s functions, name for name.

:func:`lowrank_core._backend.backend_for` returns this module for CuPy arrays. Each
function takes what the matching ``_core`` function takes (arrays already checked
and normalised by :mod:`lowrank_core._checks`), allocates its outputs with CuPy on
the array's device, and hands ``lowrank_core._cuda`` the device pointers and
CuPy's current stream on that device: all work is ordered on that stream and the
results are CuPy arrays (scalars as Python numbers). Nothing is copied to the host
except scalars; the only host-to-device copy is a ``matrix_rank`` threshold (one
float64 per matrix). The bottleneck network's initial weights are drawn on the host
by the CPU network (they are small) and uploaded once per ``fit``; each epoch brings
one loss back, and a shuffled epoch of ``data="fixed"`` takes ``samples`` indices up.
"""

from __future__ import annotations

import numpy as np

try:
    import cupy
except ImportError as error:  # pragma: no cover - a CuPy array implies CuPy
    raise ImportError(f"CuPy is not installed ({error})") from error

from . import _core, _cuda
from ._checks import is_cupy

__all__ = [
    "bottleneck_network",
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


def randomized_svd(A, k, sketch_columns, power_iters, seed, sketch=None, precision="auto"):
    # `precision` ("auto", "fast" or "off", checked by _checks.check_mixed_precision) is
    # the CPU core's choice of power iterations below A's precision. The CUDA core runs
    # in A's precision throughout, so every value gives the result "off" gives (float64
    # in, float64 out), as randomized_svd's docstring says.
    del precision
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


def bottleneck_network(dtype, widths, bias, init, optimizer, lr, epochs, samples, batch_size,
                       data, seed):
    """The GPU bottleneck network, as ``_core.bottleneck_network``: the CPU network
    checks the configuration (the same errors) and draws the initial weights from
    ``seed`` (so both devices start from the same ones), which the GPU network takes."""
    host = _core.bottleneck_network(dtype, widths, bias, init, optimizer, lr, epochs, samples,
                                    batch_size, data, seed)
    weights, biases = host.parameters()
    network = _cuda.bottleneck_network(dtype, list(widths), bool(bias), init, optimizer,
                                       float(lr), int(epochs), int(samples), int(batch_size),
                                       data, int(seed), list(weights), list(biases))
    return _BottleneckNetwork(network, dtype)


class _BottleneckNetwork:
    """A GPU network with the methods ``Bottleneck`` calls on a ``_core`` network, on
    CuPy arrays: outputs are allocated with CuPy on the device that holds the parameters
    and written on CuPy's current stream there."""

    def __init__(self, network, dtype):
        self._network = network
        self._dtype = np.dtype(dtype)

    def __getattr__(self, name):  # widths, rank, scale, steps_taken, device
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._network, name)

    @property
    def loss_history(self):
        return self._network.loss_history

    def _fitted_device(self):
        # The device that holds the parameters, as the CUDA core reports it: never one
        # recorded ahead of a fit, so a fit that fails on another GPU before moving the
        # parameters there leaves the network pointing at where they are.
        device = self._network.device
        if device < 0:
            raise RuntimeError("the GPU bottleneck network is not fitted")
        return cupy.cuda.Device(device)

    def _check(self, X, name):
        if not is_cupy(X):
            raise TypeError(f"{name} must be a CuPy array for a network fitted on the GPU, got "
                            f"{type(X).__name__} (lowrank_core never copies between devices "
                            "silently)")
        if X.dtype != self._dtype:
            raise TypeError(f"{name} must have dtype {self._dtype}, got {X.dtype}")
        device = self._fitted_device()
        if X.device.id != device.id:
            raise ValueError(f"{name} is on GPU {X.device.id}, the network on GPU {device.id}; "
                             "move it to one")
        return device

    def fit(self, A, on_epoch=None, on_poll=None):
        if A.dtype != self._dtype:
            raise TypeError(f"A must have dtype {self._dtype}, got {A.dtype}")
        device = _same_device(A)
        with device:
            return self._network.fit(_view(A, "A"), on_epoch, on_poll, device.id, _stream())

    def _output(self, shape, order, method):
        device = self._fitted_device()
        with device:
            out = cupy.empty(shape, dtype=self._dtype, order=order)
            method(out.data.ptr, device.id, _stream())
        return out

    def matrix(self):
        m, n = self._network.widths[-1], self._network.widths[0]
        return self._output((m, n), "F", self._network.matrix)

    def factors(self):
        m, n, k = self._network.widths[-1], self._network.widths[0], self._network.rank
        return (self._output((m, k), "F", self._network.left_factor),
                self._output((k, n), "F", self._network.right_factor))

    def intercept(self):
        return self._output((self._network.widths[-1],), "C", self._network.intercept)

    def predict(self, X):
        device = self._check(X, "X")
        if X.ndim != 2 or X.shape[1] != self._network.widths[0] or not X.flags.c_contiguous:
            raise ValueError(f"X must be a C-contiguous (batch, {self._network.widths[0]}) "
                             "array")
        with device:
            out = cupy.empty((X.shape[0], self._network.widths[-1]), dtype=self._dtype)
            self._network.predict(X.data.ptr, X.shape[0], out.data.ptr, device.id, _stream())
        return out

    def singular_values(self):
        device = self._fitted_device()
        with device:
            # k numbers (k = rank): computed on the GPU, back through the host.
            return cupy.asarray(self._network.singular_values(device.id, _stream()))

    def numerical_rank(self):
        device = self._fitted_device()
        with device:
            return int(self._network.numerical_rank(device.id, _stream()))

    def parameters(self):
        """(weights, biases) as NumPy copies (trained units), for tests and inspection."""
        if self._network.device < 0:
            return self._network.parameters(-1, 0)
        device = self._fitted_device()
        with device:
            return self._network.parameters(device.id, _stream())
