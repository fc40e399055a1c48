"""The CUDA core behind CuPy arrays: ``_core``'s functions, name for name.

:func:`lowrank_core._backend.backend_for` returns this module for CuPy arrays. Each
function takes what the matching ``_core`` function takes (arrays already checked
and normalised by :mod:`lowrank_core._checks`), allocates its outputs with CuPy on
the array's device, and hands ``lowrank_core._cuda`` the arrays themselves and that
device. The CUDA core reads each array's ``__cuda_array_interface__`` (pointer,
shape, strides, dtype) and orders all work on the stream it names: CuPy's current
stream on that device, as the interface is read with that device current. The
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


def _same_device(*arrays):
    devices = {a.device.id for a in arrays}
    if len(devices) > 1:
        raise ValueError(f"arrays are on different GPUs {sorted(devices)}; move them to one")
    return arrays[0].device


def _stream() -> int:
    """CuPy's current stream on the current device, as the integer cudaStream_t (for
    the calls that take no array)."""
    return cupy.cuda.get_current_stream().ptr


def svd(A, k):
    m, n = A.shape
    device = _same_device(A)
    with device:
        U = cupy.empty((m, k), dtype=A.dtype, order="F")
        S = cupy.empty((k,), dtype=A.dtype)
        Vh = cupy.empty((k, n), dtype=A.dtype, order="F")
        _cuda.svd(A, int(k), U, S, Vh, device.id)
    return U, S, Vh


def randomized_svd(A, options, sketch=None):
    # options.mixed_precision is the CPU core's choice of power iterations below A's
    # precision. The CUDA core runs in A's precision throughout, so every value gives
    # the result "off" gives (float64 in, float64 out), as randomized_svd's docstring
    # says.
    m, n = A.shape
    k = options.rank
    device = _same_device(A) if sketch is None else _same_device(A, sketch)
    with device:
        U = cupy.empty((m, k), dtype=A.dtype, order="F")
        S = cupy.empty((k,), dtype=A.dtype)
        Vh = cupy.empty((k, n), dtype=A.dtype, order="F")
        _cuda.randomized_svd(A, options, sketch, U, S, Vh, device.id)
    return U, S, Vh


def singular_values(A):
    batch, m, n = A.shape
    device = _same_device(A)
    with device:
        out = cupy.empty((batch, min(m, n)), dtype=A.dtype)
        _cuda.singular_values(A, out, device.id)
    return out


def matrix_rank(A, threshold, relative, hermitian):
    batch, m, n = A.shape
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
        _cuda.matrix_rank(A, thresholds, bool(relative), bool(hermitian), out, device.id)
    return out


def _measure(A, which):
    batch, m, n = A.shape
    device = _same_device(A)
    with device:
        out = cupy.empty((batch,), dtype=np.float64)
        _cuda.rank_measure(which, A, out, device.id)
    return out


def erank(A):
    return _measure(A, "erank")


def stable_rank(A):
    return _measure(A, "stable_rank")


def entropy_rank(A):
    return _measure(A, "entropy_rank")


def relative_error(A, B, ord):
    if A.shape != B.shape:
        raise ValueError(f"B must have the shape of A {A.shape}, got {B.shape}")
    device = _same_device(A, B)
    with device:
        return float(_cuda.relative_error(A, B, str(ord), device.id))


def gaussian_sketch(rows, cols, seed, dtype="float64"):
    """The Philox sketch (rows, cols) on the current device, Fortran order: the test
    matrix randomized_svd draws for ``seed`` (the same as ``_core.gaussian_sketch``)."""
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError("dtype must be 'float32' or 'float64'")
    if rows < 0 or cols < 0:
        raise ValueError("rows and cols must be >= 0")
    device = cupy.cuda.Device()
    out = cupy.empty((rows, cols), dtype=dtype, order="F")
    _cuda.gaussian_sketch(int(rows), int(cols), int(seed), out, device.id)
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
            return self._network.fit(A, on_epoch, on_poll, device.id)

    def _output(self, shape, order, method):
        device = self._fitted_device()
        with device:
            out = cupy.empty(shape, dtype=self._dtype, order=order)
            method(out, device.id)
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
            self._network.predict(X, out, device.id)
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
