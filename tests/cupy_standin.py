"""A stand-in for CuPy and a recording fake of ``lowrank_core._cuda``, so that the
Python layer's whole CuPy path runs on a machine without a GPU.

The stand-in ``cupy`` module has exactly the surface of CuPy that lowrank_core and
these tests touch, and no more: an ``ndarray`` whose ``flags`` has only CuPy's three
attributes (``c_contiguous``, ``f_contiguous``, ``owndata``), ``data.ptr``,
``__cuda_array_interface__`` (version 3, with its ``stream`` field), ``.device``, and
which refuses implicit conversion to NumPy as CuPy does; ``cupy.cuda.Device``,
``Stream`` and ``get_current_stream()``. Its "device memory" is host memory (NumPy
buffers) tagged with a device number, so the fake core can read what a pointer points
at. ``SURFACE`` lists every name, so a test can check each one against CuPy's own
classes where CuPy is installed.

The fake core has the signatures of the bindings in ``bindings/cuda/``. Every call
checks what the real core would rely on (the pointer lies in an allocation on the
device it was told, aligned for the dtype, with the shape, leading dimension and
layout it was told fitting inside; the output buffers likewise; the device is the
current one and the stream is CuPy's current stream there), records it, and computes
the answer with the CPU core (``lowrank_core._core``) on the memory behind the
pointers, writing the outputs where the real core would.
"""

from __future__ import annotations

import itertools
import math
import types

import numpy as np

from lowrank_core import _core

# Every name of CuPy that the stand-in provides (checked against CuPy's own classes).
SURFACE = {
    "module": ["abs", "asarray", "ascontiguousarray", "asfortranarray", "broadcast_to",
               "cuda", "empty", "isfinite", "ndarray", "ones", "swapaxes", "zeros"],
    "cuda": ["Device", "Stream", "get_current_stream"],
    "ndarray": ["T", "__array__", "__bool__", "__cuda_array_interface__", "__eq__",
                "__float__", "__getitem__", "__int__", "__len__", "__matmul__", "__mul__",
                "__rmul__", "__setitem__", "all", "any", "astype", "copy", "data", "device",
                "dtype", "flags", "get", "itemsize", "max", "nbytes", "ndim", "reshape",
                "shape", "size", "strides"],
    "flags": ["c_contiguous", "f_contiguous", "owndata"],
    "Device": ["__enter__", "__exit__", "id"],
    "Stream": ["__enter__", "__exit__", "ptr"],
    "MemoryPointer": ["ptr"],
}

DEVICES = 2  # the stand-in machine has GPUs 0 and 1


class Memory:
    """The stand-in's device memory: NumPy buffers, each tagged with its device."""

    def __init__(self):
        self.allocations = []  # (address, buffer, device)

    def allocate(self, nbytes: int, device: int) -> np.ndarray:
        # 256-byte aligned like cudaMalloc: over-allocate and slice.
        raw = np.zeros(nbytes + 256, dtype=np.uint8)
        start = (-raw.ctypes.data) % 256
        buffer = raw[start:start + nbytes]
        self.allocations.append((buffer.ctypes.data, buffer, device))
        return buffer

    def find(self, pointer: int, nbytes: int):
        """(buffer, offset, device) of the allocation holding [pointer, pointer + nbytes)."""
        for address, buffer, device in self.allocations:
            if address <= pointer and pointer + nbytes <= address + max(buffer.size, 1):
                return buffer, pointer - address, device
        raise AssertionError(f"pointer {pointer:#x} (+{nbytes} bytes) is in no device "
                             "allocation")


class _State:
    """The current device, and the current stream of each device (per process)."""

    def __init__(self):
        self.device = 0
        self.streams = {d: [0] for d in range(DEVICES)}  # 0: the legacy default stream
        self.next_stream = itertools.count(0x5000, 0x100)


def make_cupy():
    """A fresh stand-in ``cupy`` module (with ``cupy.cuda``) and its memory."""
    memory, state = Memory(), _State()

    class MemoryPointer:
        def __init__(self, ptr):
            self.ptr = ptr

    class Flags:
        """CuPy's ``ndarray.flags``: these three attributes only."""

        def __init__(self, host, owndata):
            self.c_contiguous = bool(host.flags.c_contiguous)
            self.f_contiguous = bool(host.flags.f_contiguous)
            self.owndata = owndata

    class Device:
        def __init__(self, device=None):
            self.id = state.device if device is None else int(device)
            if not 0 <= self.id < DEVICES:
                raise ValueError(f"invalid device {self.id}")
            self._previous = []

        def __enter__(self):
            self._previous.append(state.device)
            state.device = self.id
            return self

        def __exit__(self, *exc):
            state.device = self._previous.pop()

        def __eq__(self, other):
            return isinstance(other, Device) and other.id == self.id

        def __hash__(self):
            return hash(self.id)

    class Stream:
        def __init__(self, non_blocking=False):
            self.ptr = next(state.next_stream)
            self.device_id = state.device

        def __enter__(self):
            state.streams[self.device_id].append(self.ptr)
            return self

        def __exit__(self, *exc):
            state.streams[self.device_id].pop()

    class _CurrentStream:
        def __init__(self, ptr):
            self.ptr = ptr

    def get_current_stream():
        return _CurrentStream(state.streams[state.device][-1])

    class ndarray:
        """A device array: a NumPy view of a stand-in allocation, on one device."""

        def __init__(self, host, device, owndata):
            self._host, self._device, self._owndata = host, device, owndata

        # -- attributes
        shape = property(lambda self: self._host.shape)
        ndim = property(lambda self: self._host.ndim)
        dtype = property(lambda self: self._host.dtype)
        size = property(lambda self: self._host.size)
        itemsize = property(lambda self: self._host.itemsize)
        nbytes = property(lambda self: self._host.nbytes)
        strides = property(lambda self: self._host.strides)
        flags = property(lambda self: Flags(self._host, self._owndata))
        data = property(lambda self: MemoryPointer(self._host.__array_interface__["data"][0]))
        device = property(lambda self: Device(self._device))
        T = property(lambda self: self._view(self._host.T))

        @property
        def __cuda_array_interface__(self):
            stream = state.streams[self._device][-1]
            return {
                "shape": self.shape,
                "typestr": self.dtype.str,
                "descr": self.dtype.descr,
                "data": (self.data.ptr, False),
                "strides": None if self.flags.c_contiguous else self.strides,
                "version": 3,
                "stream": stream if stream != 0 else 1,  # 1: the legacy default stream
            }

        # -- helpers (not CuPy's surface)
        def _view(self, host):
            return ndarray(host, self._device, False)

        def _new(self, host):
            return _to_device(np.asarray(host), self._device)

        # -- methods
        def get(self):
            return self._host.copy()

        def astype(self, dtype, copy=True):
            return self._new(self._host.astype(dtype))

        def copy(self, order="C"):
            return _to_device(self._host, self._device, order=order)

        def reshape(self, *shape):
            shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
            host = self._host.reshape(shape)
            if np.shares_memory(host, self._host) or host.size == 0:
                return self._view(host)
            return self._new(host)

        def all(self):
            return self._new(self._host.all())

        def any(self):
            return self._new(self._host.any())

        def max(self):
            return self._new(self._host.max())

        def __getitem__(self, key):
            return self._view(self._host[key])

        def __setitem__(self, key, value):
            self._host[key] = value

        def __len__(self):
            return len(self._host)

        def __bool__(self):
            return bool(self._host)

        def __float__(self):
            return float(self._host)

        def __int__(self):
            return int(self._host)

        def __array__(self, *args, **kwargs):
            raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                            "`.get()` to construct a NumPy array explicitly.")

        def _operand(self, other):
            if isinstance(other, ndarray):
                if other._device != self._device:
                    raise ValueError("arrays are on different devices")
                return other._host
            if isinstance(other, np.ndarray):
                raise TypeError("Unsupported type <class 'numpy.ndarray'>")
            return other

        def __eq__(self, other):
            return self._new(self._host == self._operand(other))

        def __mul__(self, other):
            return self._new(self._host * self._operand(other))

        __rmul__ = __mul__

        def __matmul__(self, other):
            return self._new(self._host @ self._operand(other))

        def __repr__(self):
            return f"stand-in cupy array({self._host!r}, device={self._device})"

    ndarray.__module__ = "cupy._core.core"  # what lowrank_core's is_cupy reads
    ndarray.__qualname__ = ndarray.__name__ = "ndarray"

    def _to_device(host, device, order="C"):
        host = np.asarray(host)
        buffer = memory.allocate(host.nbytes, device)
        strides = None
        if order == "F" or (order in ("A", "K") and host.flags.f_contiguous
                            and not host.flags.c_contiguous):
            strides = np.asfortranarray(np.empty_like(host)).strides
        out = np.ndarray(host.shape, host.dtype, buffer=buffer, strides=strides)
        out[...] = host
        return ndarray(out, device, True)

    def asarray(a, dtype=None):
        if isinstance(a, ndarray):
            return a if dtype is None or a.dtype == dtype else a.astype(dtype)
        return _to_device(np.asarray(a, dtype=dtype), state.device)

    def empty(shape, dtype=np.float64, order="C"):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return _to_device(np.empty(shape, dtype), state.device, order=order)

    def zeros(shape, dtype=np.float64, order="C"):
        out = empty(shape, dtype, order)
        out._host[...] = 0
        return out

    def ones(shape, dtype=np.float64, order="C"):
        out = empty(shape, dtype, order)
        out._host[...] = 1
        return out

    def ascontiguousarray(a, dtype=None):
        if a.flags.c_contiguous and (dtype is None or a.dtype == dtype):
            return a
        return _to_device(np.ascontiguousarray(a._host, dtype=dtype), a._device)

    def asfortranarray(a, dtype=None):
        if a.flags.f_contiguous and (dtype is None or a.dtype == dtype):
            return a
        return _to_device(a._host if dtype is None else a._host.astype(dtype), a._device,
                          order="F")

    def isfinite(a):
        return a._new(np.isfinite(a._host))

    def abs(a):  # noqa: A001 - CuPy's name
        return a._new(np.abs(a._host))

    def swapaxes(a, axis1, axis2):
        return a._view(np.swapaxes(a._host, axis1, axis2))

    def broadcast_to(a, shape):
        return a._view(np.broadcast_to(a._host, shape))

    cupy = types.ModuleType("cupy")
    cuda = types.ModuleType("cupy.cuda")
    cuda.Device, cuda.Stream, cuda.get_current_stream = Device, Stream, get_current_stream
    for name, value in dict(abs=abs, asarray=asarray, ascontiguousarray=ascontiguousarray,
                            asfortranarray=asfortranarray, broadcast_to=broadcast_to,
                            cuda=cuda, empty=empty, isfinite=isfinite, ndarray=ndarray,
                            ones=ones, swapaxes=swapaxes, zeros=zeros).items():
        setattr(cupy, name, value)
    assert sorted(n for n in vars(cupy) if not n.startswith("__")) == SURFACE["module"]
    cupy._memory, cupy._state, cupy._to_device = memory, state, _to_device  # for the fake
    return cupy


# --- the fake CUDA core -------------------------------------------------------------

_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


class FakeCuda:
    """``lowrank_core._cuda`` with the bindings' signatures, on the stand-in's memory."""

    cuda_runtime_version = 13000

    def __init__(self, cupy):
        self._cupy = cupy
        self.calls = []  # one dict per call: name, dtype, arrays, device, stream, ...
        self.fail_fit_before_allocation_on = set()  # devices where a network fit fails

    def device_count(self):
        return DEVICES

    # -- checks and memory

    def _dtype(self, dtype):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}")
        return _DTYPES[dtype]

    def _check_call(self, device, stream):
        assert isinstance(device, int) and not isinstance(device, bool), device
        assert isinstance(stream, int) and not isinstance(stream, bool), stream
        state = self._cupy._state
        assert device == state.device, f"device {device} is not the current one {state.device}"
        current = state.streams[device][-1]
        assert stream == current, f"stream {stream:#x} is not CuPy's current {current:#x}"

    def _array(self, pointer, dtype, shape, strides, device, name):
        """The NumPy view of device memory that the real core would read or write."""
        assert isinstance(pointer, int) and pointer != 0, (name, pointer)
        assert pointer % dtype.alignment == 0, f"{name}: pointer {pointer:#x} is not aligned"
        for extent in shape:
            assert isinstance(extent, int) and extent >= 0, (name, shape)
        count = math.prod(shape)
        span = 0 if count == 0 else sum((n - 1) * s for n, s in zip(shape, strides)) + 1
        buffer, offset, where = self._cupy._memory.find(pointer, span * dtype.itemsize)
        assert where == device, f"{name} is on GPU {where}, the call on GPU {device}"
        return np.ndarray(shape, dtype, buffer=buffer, offset=offset,
                          strides=tuple(s * dtype.itemsize for s in strides))

    def _view(self, args, dtype, device, name):
        pointer, rows, cols, ld, row_major = args
        assert isinstance(row_major, bool), (name, args)
        inner = cols if row_major else rows
        assert isinstance(ld, int) and ld >= max(inner, 1), f"{name}: ld {ld} < {inner}"
        strides = (ld, 1) if row_major else (1, ld)
        return self._array(pointer, dtype, (rows, cols), strides, device, name)

    def _out(self, pointer, dtype, shape, device, name, order="F"):
        strides = ([1] + list(itertools.accumulate(shape[:-1], lambda a, b: a * b))
                   if order == "F" else
                   list(itertools.accumulate(shape[:0:-1], lambda a, b: a * b))[::-1] + [1])
        return self._array(pointer, dtype, tuple(shape), tuple(strides[:len(shape)]),
                           device, name)

    def _stack(self, pointer, dtype, batch, rows, cols, device):
        return self._array(pointer, dtype, (batch, rows, cols), (rows * cols, cols, 1), device,
                           "A")

    def _record(self, name, device, stream, **details):
        self.calls.append(dict(name=name, device=device, stream=stream, **details))

    @staticmethod
    def _finite(array, name):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or Inf")

    @staticmethod
    def _layout(args):
        pointer, rows, cols, ld, row_major = args
        return dict(pointer=pointer, shape=(rows, cols), ld=ld, row_major=row_major)

    # -- the SVD area (bindings/cuda/svd.cpp)

    def svd(self, dtype, A, k, U, S, Vh, device, stream):
        t = self._dtype(dtype)
        self._check_call(device, stream)
        a = self._view(A, t, device, "A")
        m, n = a.shape
        self._record("svd", device, stream, dtype=dtype, A=self._layout(A), k=k)
        self._finite(a, "A")
        u, s, vh = _core.svd(np.array(a), k)
        self._out(U, t, (m, k), device, "U")[...] = u
        self._out(S, t, (k,), device, "S")[...] = s
        self._out(Vh, t, (k, n), device, "Vh")[...] = vh

    def randomized_svd(self, dtype, A, k, sketch_columns, power_iters, seed, sketch, U, S, Vh,
                       device, stream):
        t = self._dtype(dtype)
        self._check_call(device, stream)
        a = self._view(A, t, device, "A")
        m, n = a.shape
        omega = None if sketch is None else self._view(sketch, t, device, "sketch")
        assert isinstance(seed, int) and 0 <= seed < 2**64
        self._record("randomized_svd", device, stream, dtype=dtype, A=self._layout(A), k=k,
                     sketch_columns=sketch_columns, power_iters=power_iters, seed=seed,
                     sketch=None if sketch is None else self._layout(sketch))
        self._finite(a, "A")
        if omega is not None:
            assert omega.shape == (n, sketch_columns)
            self._finite(omega, "sketch")
            omega = np.array(omega)
        u, s, vh = _core.randomized_svd(np.array(a), k, sketch_columns, power_iters, seed,
                                        omega, "off")
        self._out(U, t, (m, k), device, "U")[...] = u
        self._out(S, t, (k,), device, "S")[...] = s
        self._out(Vh, t, (k, n), device, "Vh")[...] = vh

    def singular_values(self, dtype, A, batch, rows, cols, out, device, stream):
        t = self._dtype(dtype)
        self._check_call(device, stream)
        a = self._stack(A, t, batch, rows, cols, device)
        self._record("singular_values", device, stream, dtype=dtype, pointer=A,
                     shape=(batch, rows, cols))
        self._finite(a, "A")
        self._out(out, t, (batch, min(rows, cols)), device, "out", order="C")[...] = \
            _core.singular_values(np.array(a))

    def gaussian_sketch(self, dtype, rows, cols, seed, out, device, stream):
        t = self._dtype(dtype)
        self._check_call(device, stream)
        self._record("gaussian_sketch", device, stream, dtype=dtype, shape=(rows, cols))
        self._out(out, t, (rows, cols), device, "out")[...] = \
            _core.gaussian_sketch(rows, cols, seed, dtype)

    # -- the rank area (bindings/cuda/rank.cpp)

    def matrix_rank(self, dtype, A, batch, rows, cols, thresholds, relative, hermitian, out,
                    device, stream):
        t = self._dtype(dtype)
        self._check_call(device, stream)
        a = self._stack(A, t, batch, rows, cols, device)
        assert isinstance(relative, bool) and isinstance(hermitian, bool)
        values = None
        if thresholds is not None:
            values = np.array(self._out(thresholds, np.dtype(np.float64), (batch,), device,
                                        "thresholds"))
        self._record("matrix_rank", device, stream, dtype=dtype, pointer=A,
                     shape=(batch, rows, cols), thresholds=values, relative=relative,
                     hermitian=hermitian)
        self._finite(a, "A")
        self._out(out, np.dtype(np.int64), (batch,), device, "out")[...] = \
            _core.matrix_rank(np.array(a), values, relative, hermitian)

    def rank_measure(self, dtype, measure, A, batch, rows, cols, out, device, stream):
        t = self._dtype(dtype)
        if measure not in ("erank", "stable_rank", "entropy_rank"):
            raise ValueError(f"unknown rank measure {measure}")
        self._check_call(device, stream)
        a = self._stack(A, t, batch, rows, cols, device)
        self._record("rank_measure", device, stream, dtype=dtype, measure=measure, pointer=A,
                     shape=(batch, rows, cols))
        self._finite(a, "A")
        self._out(out, np.dtype(np.float64), (batch,), device, "out")[...] = \
            getattr(_core, measure)(np.array(a))

    def relative_error(self, dtype, A, B, ord, device, stream):
        t = self._dtype(dtype)
        if ord not in ("2", "fro"):
            raise ValueError("ord must be 2 or 'fro'")
        self._check_call(device, stream)
        a, b = self._view(A, t, device, "A"), self._view(B, t, device, "B")
        assert a.shape == b.shape
        self._record("relative_error", device, stream, dtype=dtype, A=self._layout(A),
                     B=self._layout(B), ord=ord)
        self._finite(a, "A")
        self._finite(b, "B")
        return _core.relative_error(np.array(a), np.array(b), ord)

    # -- the bottleneck area (bindings/cuda/bottleneck.cpp)

    def bottleneck_network(self, dtype, widths, bias, init, optimizer, lr, epochs, samples,
                           batch_size, data, seed, weights, biases):
        self._dtype(dtype)
        host = _core.bottleneck_network(dtype, widths, bias, init, optimizer, lr, epochs,
                                        samples, batch_size, data, seed)
        # The initial weights handed in are those the CPU network draws from the seed.
        want_weights, want_biases = host.parameters()
        assert len(weights) == len(want_weights) and len(biases) == len(want_biases)
        for got, want in zip(list(weights) + list(biases), want_weights + want_biases):
            assert isinstance(got, np.ndarray) and np.array_equal(got, want)
        self._record("bottleneck_network", None, None, dtype=dtype, widths=list(widths))
        return FakeNetwork(self, host, np.dtype(dtype))


class FakeNetwork:
    """A GPU bottleneck network's binding (the methods of bindings/cuda/bottleneck.cpp),
    trained by the CPU network; ``device`` is where its parameters "are"."""

    def __init__(self, core, host, dtype):
        self._core, self._host, self._dtype = core, host, dtype
        self.device = -1

    widths = property(lambda self: self._host.widths)
    rank = property(lambda self: self._host.rank)
    scale = property(lambda self: self._host.scale)
    steps_taken = property(lambda self: self._host.steps_taken)
    loss_history = property(lambda self: self._host.loss_history)

    def _on_parameters(self, device, stream):
        self._core._check_call(device, stream)
        if self.device < 0:
            raise RuntimeError("the GPU bottleneck network has no parameters on a device until "
                               "it is fitted")
        if device != self.device:
            raise ValueError(f"the network's parameters are on GPU {self.device}, this call is "
                             f"on GPU {device}")

    def fit(self, A, on_epoch, on_poll, device, stream):
        self._core._check_call(device, stream)
        a = self._core._view(A, self._dtype, device, "A")
        self._core._record("network.fit", device, stream, A=self._core._layout(A))
        self._core._finite(a, "A")
        if device in self._core.fail_fit_before_allocation_on:
            raise MemoryError("out of GPU memory: lowrank_core asked for 1 bytes (cudaMalloc)")
        self.device = device  # the parameters are allocated on the fit's device
        return self._host.fit(np.array(a), on_epoch, on_poll)

    def _write(self, value, out, device, stream, name):
        self._on_parameters(device, stream)
        self._core._record(f"network.{name}", device, stream)
        value = np.asarray(value)
        self._core._out(out, self._dtype, value.shape, device, "out")[...] = value

    def matrix(self, out, device, stream):
        self._write(self._host.matrix(), out, device, stream, "matrix")

    def left_factor(self, out, device, stream):
        self._write(self._host.factors()[0], out, device, stream, "left_factor")

    def right_factor(self, out, device, stream):
        self._write(self._host.factors()[1], out, device, stream, "right_factor")

    def intercept(self, out, device, stream):
        self._write(self._host.intercept(), out, device, stream, "intercept")

    def predict(self, X, batch, out, device, stream):
        self._on_parameters(device, stream)
        n, m = self._host.widths[0], self._host.widths[-1]
        x = self._core._out(X, self._dtype, (batch, n), device, "X", order="C")
        self._core._record("network.predict", device, stream, pointer=X, shape=(batch, n))
        self._core._out(out, self._dtype, (batch, m), device, "out", order="C")[...] = \
            self._host.predict(np.array(x))

    def singular_values(self, device, stream):
        self._on_parameters(device, stream)
        return self._host.singular_values()

    def numerical_rank(self, device, stream):
        self._on_parameters(device, stream)
        return self._host.numerical_rank()

    def parameters(self, device, stream):
        if self.device >= 0:
            self._on_parameters(device, stream)
        return self._host.parameters()
