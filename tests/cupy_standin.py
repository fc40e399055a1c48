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

The fake core has the signatures of the bindings in ``bindings/cuda/``: it takes the
arrays and reads their ``__cuda_array_interface__`` as the bindings do
(``bindings/cuda/device_arrays.hpp``). Every call checks what the real core would
rely on (the pointer lies in an allocation on the device it was told, aligned for the
dtype, with the shape and strides fitting inside; the outputs have the dtype, shape
and order the core writes; the device is the current one and the stream the
interface names is CuPy's current stream there), records it, and computes the answer
with the CPU core (``lowrank_core._core``) on the memory behind the pointers, writing
the outputs where the real core would.
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
               "cuda", "empty", "from_dlpack", "isfinite", "ndarray", "ones", "swapaxes",
               "zeros"],
    "cuda": ["Device", "ExternalStream", "Stream", "get_current_stream"],
    "ndarray": ["T", "__array__", "__bool__", "__cuda_array_interface__", "__dlpack__",
                "__dlpack_device__", "__eq__",
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
        self.dlpack_streams = []  # the stream every __dlpack__ call was given


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

    class ExternalStream(Stream):
        """A stream made elsewhere (by torch, say), known by its pointer."""

        def __init__(self, ptr, device_id=-1):
            self.ptr = int(ptr)
            self.device_id = state.device if device_id < 0 else int(device_id)

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
            stream = state.streams[state.device][-1]  # CuPy's: the current device's
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

        def __dlpack_device__(self):
            return (2, self._device)  # kDLCUDA

        def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
            # The consumer names its stream; the stand-in does all work at once, so
            # there is nothing to order, but the request is recorded.
            state.dlpack_streams.append(stream)
            return Capsule(self)

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

    def from_dlpack(x):
        """As CuPy's: the producer is asked for its data on CuPy's current stream of
        its device (1 for the legacy default stream), and shares its memory."""
        device_type, device = x.__dlpack_device__()
        if device_type not in (2, 13):
            raise BufferError(f"from_dlpack: device type {device_type} is not CUDA")
        current = state.streams[device][-1]
        capsule = x.__dlpack__(stream=current if current != 0 else 1)
        assert isinstance(capsule, Capsule) and capsule.array._device == device
        return capsule.array

    cupy = types.ModuleType("cupy")
    cuda = types.ModuleType("cupy.cuda")
    cuda.Device, cuda.Stream, cuda.get_current_stream = Device, Stream, get_current_stream
    cuda.ExternalStream = ExternalStream
    for name, value in dict(abs=abs, asarray=asarray, ascontiguousarray=ascontiguousarray,
                            asfortranarray=asfortranarray, broadcast_to=broadcast_to,
                            cuda=cuda, empty=empty, from_dlpack=from_dlpack,
                            isfinite=isfinite, ndarray=ndarray, ones=ones, swapaxes=swapaxes,
                            zeros=zeros).items():
        setattr(cupy, name, value)
    assert sorted(n for n in vars(cupy) if not n.startswith("__")) == SURFACE["module"]
    cupy._memory, cupy._state, cupy._to_device = memory, state, _to_device  # for the fake
    return cupy


class Capsule:
    """What the stand-ins' ``__dlpack__`` hands over in place of a DLPack capsule: the
    stand-in device array itself (its memory shared, nothing copied)."""

    def __init__(self, array):
        self.array = array


TORCH_STREAM = 0x7000  # the fake torch's current stream on every device


def make_torch_cuda(cupy):
    """A stand-in ``torch`` module with CUDA tensors on the stand-in's device memory:
    ``Tensor`` (reporting DLPack device kDLCUDA, recording the stream each
    ``__dlpack__`` call names), ``from_dlpack``, ``strided`` and
    ``cuda.current_stream(device).cuda_stream``. Its tensors' type lives in module
    "torch", as torch's own, so lowrank_core takes its torch path for them."""
    torch = types.ModuleType("torch")
    torch.strided = "strided"
    torch.dlpack_streams = []  # the streams the tensors' __dlpack__ were given

    class Tensor:
        requires_grad = False
        layout = torch.strided

        def __init__(self, array):
            self.array = array

        dtype = property(lambda self: self.array.dtype)
        shape = property(lambda self: self.array.shape)
        device = property(lambda self: ("cuda", self.array._device))

        def is_conj(self):
            return False

        def is_neg(self):
            return False

        def data_ptr(self):
            return self.array.data.ptr

        def __mul__(self, number):
            return Tensor(self.array * number)

        def __dlpack_device__(self):
            return (2, self.array._device)

        def __dlpack__(self, stream=None, **kwargs):
            torch.dlpack_streams.append(stream)
            return Capsule(self.array)

    Tensor.__module__ = "torch"

    def from_dlpack(x):
        _, device = x.__dlpack_device__()
        capsule = x.__dlpack__(stream=TORCH_STREAM)
        return Tensor(capsule.array)

    class _Stream:
        cuda_stream = TORCH_STREAM

    torch.Tensor, torch.from_dlpack = Tensor, from_dlpack
    torch.cuda = types.SimpleNamespace(current_stream=lambda device=None: _Stream())
    torch.tensor_on = lambda host, device=0: Tensor(cupy._to_device(np.asarray(host), device))
    return torch


# --- the fake CUDA core -------------------------------------------------------------

_DTYPES = {"<f4": "float32", "<f8": "float64"}
_LEGACY_STREAM = 1  # the interface's name for CuPy's stream 0, the legacy default


class FakeCuda:
    """``lowrank_core._cuda`` with the bindings' signatures, on the stand-in's memory."""

    cuda_runtime_version = 13000

    def __init__(self, cupy):
        self._cupy = cupy
        self.calls = []  # one dict per call: name, dtype, arrays, device, stream, ...
        self.fail_fit_before_allocation_on = set()  # devices where a network fit fails

    def device_count(self):
        return DEVICES

    # -- the interface, checks and memory

    @staticmethod
    def _interface(array, name):
        """What the bindings read of ``__cuda_array_interface__``: pointer, shape, byte
        strides (C order where none are given), dtype and stream."""
        if not hasattr(array, "__cuda_array_interface__"):
            raise TypeError(f"{name} must be a device array (with __cuda_array_interface__), "
                            f"got {type(array).__name__}")
        interface = array.__cuda_array_interface__
        assert interface["version"] == 3 and interface.get("mask") is None
        dtype = np.dtype(interface["typestr"])
        shape = tuple(interface["shape"])
        strides = interface["strides"]
        if strides is None:
            strides = tuple(dtype.itemsize * math.prod(shape[d + 1:])
                            for d in range(len(shape)))
        stream = interface["stream"]
        assert stream is None or (isinstance(stream, int) and stream != 0), stream
        return dict(name=name, pointer=interface["data"][0], shape=shape,
                    strides=tuple(strides), dtype=dtype, stream=stream)

    def _dtype(self, a):
        if a["dtype"].str not in _DTYPES:
            raise TypeError(f"{a['name']} must be float32 or float64, got typestr "
                            f"{a['dtype'].str}")
        return a["dtype"]

    def _check_call(self, device, stream):
        """The call runs on ``device``, the current one, and on ``stream`` (the one an
        interface named, or the integer a call without arrays was given), CuPy's
        current stream there. Returns the stream as CuPy names it."""
        assert isinstance(device, int) and not isinstance(device, bool), device
        assert isinstance(stream, int) and not isinstance(stream, bool), stream
        state = self._cupy._state
        assert device == state.device, f"device {device} is not the current one {state.device}"
        current = state.streams[device][-1]
        assert stream in (current, _LEGACY_STREAM if current == 0 else current), \
            f"stream {stream:#x} is not CuPy's current {current:#x}"
        return current

    def _call(self, a, device):
        return self._check_call(device, a["stream"])

    def _array(self, pointer, dtype, shape, strides, device, name):
        """The NumPy view of device memory that the real core would read or write
        (strides in elements)."""
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

    def _view(self, a, dtype, device):
        """A 2-D input in either contiguous layout, and its layout as the core reads it
        (pointer, shape, leading dimension, row_major)."""
        name = a["name"]
        if a["dtype"] != dtype:
            raise TypeError(f"{name} must have typestr {dtype.str}, got {a['dtype'].str}")
        assert len(a["shape"]) == 2, (name, a["shape"])
        (rows, cols), (s0, s1), item = a["shape"], a["strides"], dtype.itemsize
        if (cols <= 1 or s1 == item) and (rows <= 1 or (s0 % item == 0 and s0 // item >= cols)):
            row_major, ld = True, max(cols, 1) if rows <= 1 else s0 // item
        elif (rows <= 1 or s0 == item) and (cols <= 1 or (s1 % item == 0
                                                          and s1 // item >= rows)):
            row_major, ld = False, max(rows, 1) if cols <= 1 else s1 // item
        else:
            raise ValueError(f"{name} must be C- or Fortran-contiguous")
        strides = (ld, 1) if row_major else (1, ld)
        array = self._array(a["pointer"], dtype, (rows, cols), strides, device, name)
        return array, dict(pointer=a["pointer"], shape=(rows, cols), ld=ld,
                           row_major=row_major)

    def _contiguous(self, a, dtype, device, shape=None, order="C"):
        """A C- (or Fortran-) contiguous array of ``dtype`` (and ``shape``, when given):
        a stack the core reads or an output it writes."""
        name = a["name"]
        if a["dtype"] != dtype:
            raise TypeError(f"{name} must have typestr {dtype.str}, got {a['dtype'].str}")
        if shape is not None and a["shape"] != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {a['shape']}")
        shape = a["shape"]
        dims = range(len(shape)) if order == "F" else reversed(range(len(shape)))
        expected, strides = 1, [0] * len(shape)
        for d in dims:
            strides[d] = expected
            assert shape[d] <= 1 or a["strides"][d] == expected * dtype.itemsize, \
                f"{name} is not {order}-contiguous"
            expected *= max(shape[d], 1)
        return self._array(a["pointer"], dtype, shape, tuple(strides), device, name)

    def _out(self, array, dtype, shape, device, name, order="F"):
        return self._contiguous(self._interface(array, name), np.dtype(dtype), device, shape,
                                order)

    def _record(self, name, device, stream, **details):
        self.calls.append(dict(name=name, device=device, stream=stream, **details))

    @staticmethod
    def _finite(array, name):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or Inf")

    # -- the SVD area (bindings/cuda/svd.cpp)

    def svd(self, A, k, U, S, Vh, device):
        a = self._interface(A, "A")
        t = self._dtype(a)
        stream = self._call(a, device)
        array, layout = self._view(a, t, device)
        m, n = array.shape
        self._record("svd", device, stream, dtype=t.name, A=layout, k=k)
        self._finite(array, "A")
        u, s, vh = _core.svd(np.array(array), k)
        self._out(U, t, (m, k), device, "U")[...] = u
        self._out(S, t, (k,), device, "S")[...] = s
        self._out(Vh, t, (k, n), device, "Vh")[...] = vh

    def randomized_svd(self, A, options, sketch, U, S, Vh, device):
        assert isinstance(options, _core.RandomizedSvdOptions), type(options)
        a = self._interface(A, "A")
        t = self._dtype(a)
        stream = self._call(a, device)
        array, layout = self._view(a, t, device)
        m, n = array.shape
        omega, sketch_layout = None, None
        if sketch is not None:
            omega, sketch_layout = self._view(self._interface(sketch, "sketch"), t, device)
        k = options.rank
        self._record("randomized_svd", device, stream, dtype=t.name, A=layout, k=k,
                     sketch_columns=options.sketch_columns, power_iters=options.power_iters,
                     seed=options.seed, mixed_precision=options.mixed_precision,
                     sketch=sketch_layout)
        self._finite(array, "A")
        if omega is not None:
            assert omega.shape == (n, options.sketch_columns)
            self._finite(omega, "sketch")
            omega = np.array(omega)
        # The CUDA core runs in A's precision throughout: the CPU core's "off".
        same = _core.RandomizedSvdOptions(
            rank=k, sketch_columns=options.sketch_columns, power_iters=options.power_iters,
            seed=options.seed, mixed_precision="off", tuning=options.tuning)
        u, s, vh = _core.randomized_svd(np.array(array), same, omega)
        self._out(U, t, (m, k), device, "U")[...] = u
        self._out(S, t, (k,), device, "S")[...] = s
        self._out(Vh, t, (k, n), device, "Vh")[...] = vh

    def singular_values(self, A, out, device):
        a = self._interface(A, "A")
        t = self._dtype(a)
        stream = self._call(a, device)
        assert len(a["shape"]) == 3, a["shape"]
        stack = self._contiguous(a, t, device)
        batch, rows, cols = stack.shape
        self._record("singular_values", device, stream, dtype=t.name, pointer=a["pointer"],
                     shape=stack.shape)
        self._finite(stack, "A")
        self._out(out, t, (batch, min(rows, cols)), device, "out", order="C")[...] = \
            _core.singular_values(np.array(stack))

    def gaussian_sketch(self, rows, cols, seed, out, device):
        o = self._interface(out, "out")
        t = self._dtype(o)
        stream = self._call(o, device)
        self._record("gaussian_sketch", device, stream, dtype=t.name, shape=(rows, cols))
        self._contiguous(o, t, device, (rows, cols), order="F")[...] = \
            _core.gaussian_sketch(rows, cols, seed, t.name)

    # -- the rank area (bindings/cuda/rank.cpp)

    def matrix_rank(self, A, thresholds, relative, hermitian, out, device):
        a = self._interface(A, "A")
        t = self._dtype(a)
        stream = self._call(a, device)
        assert len(a["shape"]) == 3, a["shape"]
        stack = self._contiguous(a, t, device)
        batch = stack.shape[0]
        assert isinstance(relative, bool) and isinstance(hermitian, bool)
        values = None
        if thresholds is not None:
            values = np.array(self._out(thresholds, np.float64, (batch,), device,
                                        "thresholds"))
        self._record("matrix_rank", device, stream, dtype=t.name, pointer=a["pointer"],
                     shape=stack.shape, thresholds=values, relative=relative,
                     hermitian=hermitian)
        self._finite(stack, "A")
        self._out(out, np.int64, (batch,), device, "out")[...] = \
            _core.matrix_rank(np.array(stack), values, relative, hermitian)

    def rank_measure(self, measure, A, out, device):
        if measure not in ("erank", "stable_rank", "entropy_rank"):
            raise ValueError(f"unknown rank measure {measure}")
        a = self._interface(A, "A")
        t = self._dtype(a)
        stream = self._call(a, device)
        assert len(a["shape"]) == 3, a["shape"]
        stack = self._contiguous(a, t, device)
        self._record("rank_measure", device, stream, dtype=t.name, measure=measure,
                     pointer=a["pointer"], shape=stack.shape)
        self._finite(stack, "A")
        self._out(out, np.float64, (stack.shape[0],), device, "out")[...] = \
            getattr(_core, measure)(np.array(stack))

    def relative_error(self, A, B, ord, device):
        if ord not in ("2", "fro"):
            raise ValueError("ord must be 2 or 'fro'")
        a, b = self._interface(A, "A"), self._interface(B, "B")
        t = self._dtype(a)
        stream = self._call(a, device)
        (x, layout_a), (y, layout_b) = self._view(a, t, device), self._view(b, t, device)
        assert x.shape == y.shape
        self._record("relative_error", device, stream, dtype=t.name, A=layout_a, B=layout_b,
                     ord=ord)
        self._finite(x, "A")
        self._finite(y, "B")
        return _core.relative_error(np.array(x), np.array(y), ord)

    # -- the bottleneck area (bindings/cuda/bottleneck.cpp)

    def bottleneck_network(self, dtype, widths, bias, init, optimizer, lr, epochs, samples,
                           batch_size, data, seed, weights, biases):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be 'float32' or 'float64', got '{dtype}'")
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
        stream = self._core._check_call(device, stream)
        if self.device < 0:
            raise RuntimeError("the GPU bottleneck network has no parameters on a device until "
                               "it is fitted")
        if device != self.device:
            raise ValueError(f"the network's parameters are on GPU {self.device}, this call is "
                             f"on GPU {device}")
        return stream

    def fit(self, A, on_epoch, on_poll, device):
        a = self._core._interface(A, "A")
        stream = self._core._call(a, device)
        array, layout = self._core._view(a, self._dtype, device)
        self._core._record("network.fit", device, stream, A=layout)
        self._core._finite(array, "A")
        if device in self._core.fail_fit_before_allocation_on:
            raise MemoryError("out of GPU memory: lowrank_core asked for 1 bytes (cudaMalloc)")
        self.device = device  # the parameters are allocated on the fit's device
        return self._host.fit(np.array(array), on_epoch, on_poll)

    def _write(self, value, out, device, name, order="F"):
        o = self._core._interface(out, "out")
        stream = self._on_parameters(device, o["stream"])
        self._core._record(f"network.{name}", device, stream)
        value = np.asarray(value)
        self._core._contiguous(o, self._dtype, device, value.shape, order)[...] = value

    def matrix(self, out, device):
        self._write(self._host.matrix(), out, device, "matrix")

    def left_factor(self, out, device):
        self._write(self._host.factors()[0], out, device, "left_factor")

    def right_factor(self, out, device):
        self._write(self._host.factors()[1], out, device, "right_factor")

    def intercept(self, out, device):
        self._write(self._host.intercept(), out, device, "intercept")

    def predict(self, X, out, device):
        x = self._core._interface(X, "X")
        stream = self._on_parameters(device, x["stream"])
        n = self._host.widths[0]
        assert len(x["shape"]) == 2 and x["shape"][1] == n, x["shape"]
        host = self._core._contiguous(x, self._dtype, device, order="C")
        self._core._record("network.predict", device, stream, pointer=x["pointer"],
                           shape=host.shape)
        self._write(self._host.predict(np.array(host)), out, device, "predict_out", order="C")

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
