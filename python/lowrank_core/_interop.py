"""Any DLPack array in, the caller's own kind of array out.

The public functions take NumPy and CuPy arrays natively. Every other object that
speaks DLPack (``__dlpack__`` and ``__dlpack_device__``: torch tensors on the CPU
and on CUDA, JAX arrays, array-API arrays) is read here, without a copy, and the
results go back to the caller's library:

- CPU memory (DLPack device types kDLCPU and kDLCUDAHost) becomes a zero-copy NumPy
  view (``numpy.from_dlpack``) for the C++ core.
- CUDA memory (kDLCUDA, kDLCUDAManaged) becomes a zero-copy CuPy array
  (``cupy.from_dlpack``) for the CUDA core; without CuPy that is a ``TypeError``
  saying so. DLPack's stream rule keeps the order: the consumer names its stream
  in ``__dlpack__(stream=...)`` and the producer makes its data ready on it. For
  torch tensors the whole call runs on torch's current stream of the tensor's
  device (CuPy's current stream is set to it for the call), so neither side waits
  for the other.
- float16 is computed in float32, as for NumPy input; bfloat16 (which NumPy cannot
  hold) is converted to float32 first, the only copy made here. The results are
  float32: never half precision.
- A tensor that requires grad is read through ``detach()``: the results are not
  differentiable (they carry no autograd history).
- Results come back as arrays of the first such argument's library, by its
  ``from_dlpack`` (zero-copy): torch in, torch out on the same device; a JAX or
  array-API array's namespace (``__array_namespace__``) otherwise. Python numbers
  stay Python numbers.

A ``Bottleneck`` fitted on such an array returns ``matrix()``, ``factors()``,
``predict(X)``, ``intercept_`` and ``singular_values_`` in that library.

Nothing here imports torch, JAX or CuPy unless such an array is passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys

import numpy as np

from ._checks import is_cupy
from ._results import SVDResult, ToleranceSVDResult

__all__ = ["dlpack_fit", "dlpack_io", "dlpack_method", "from_caller", "to_caller"]

# DLPack device types (dlpack.h, DLDeviceType).
_CPU_DEVICES = {1: "CPU", 3: "CUDA host (pinned)"}
_CUDA_DEVICES = {2: "CUDA", 13: "CUDA managed"}


def is_foreign(value) -> bool:
    """Whether ``value`` is a DLPack array that is neither NumPy nor CuPy."""
    if isinstance(value, (np.ndarray, np.generic)) or is_cupy(value):
        return False
    cls = type(value)
    return hasattr(cls, "__dlpack__") and hasattr(cls, "__dlpack_device__")


def _library(value) -> str:
    return type(value).__module__.split(".")[0]


def _is_torch(value) -> bool:
    return _library(value) == "torch"


class Caller:
    """How to hand arrays back to the library an argument came from."""

    def __init__(self, value):
        self.library = _library(value)
        self.device = value.__dlpack_device__()
        if self.library == "torch":
            self.from_dlpack = sys.modules["torch"].from_dlpack
        elif hasattr(value, "__array_namespace__"):
            self.from_dlpack = value.__array_namespace__().from_dlpack
        else:
            module = sys.modules.get(self.library)
            self.from_dlpack = getattr(module, "from_dlpack", None)

    def wrap(self, result):
        """``result`` (arrays, tuples of them, SVDResult, numbers) in the caller's kind."""
        if isinstance(result, ToleranceSVDResult):  # its attributes kept
            return ToleranceSVDResult(
                *(self.wrap(part) for part in result), error=result.error,
                error_bound=result.error_bound, norm=result.norm, tol=result.tol,
                ord=result.ord, tol_reached=result.tol_reached,
                basis_columns=result.basis_columns)
        if isinstance(result, SVDResult):
            return SVDResult(*(self.wrap(part) for part in result))
        if dataclasses.is_dataclass(result) and not isinstance(result, type):  # PCAResult
            return dataclasses.replace(result, **{
                field.name: self.wrap(getattr(result, field.name))
                for field in dataclasses.fields(result)})
        if isinstance(result, tuple):
            return tuple(self.wrap(part) for part in result)
        if self.from_dlpack is not None and (isinstance(result, np.ndarray)
                                             or is_cupy(result)):
            return self.from_dlpack(result)
        return result


def from_caller(value, name: str):
    """``value`` as a NumPy or CuPy array that shares its memory (see the module
    docstring); NumPy, CuPy and everything without DLPack is returned unchanged."""
    if not is_foreign(value):
        return value
    if getattr(value, "requires_grad", False):
        value = value.detach()
    if _is_torch(value):
        # torch keeps conjugation and negation as lazy bits that DLPack cannot carry.
        if value.is_conj():
            value = value.resolve_conj()
        if value.is_neg():
            value = value.resolve_neg()
        if value.layout is not sys.modules["torch"].strided:
            raise TypeError(f"{name} is a torch tensor with layout {value.layout}; "
                            f"lowrank_core reads dense (strided) tensors: pass "
                            f"{name}.to_dense()")
    if "bfloat16" in str(getattr(value, "dtype", "")):
        value = _as_float32(value, name)
    device_type, device_id = (int(v) for v in value.__dlpack_device__())
    if device_type in _CPU_DEVICES:
        try:
            return np.from_dlpack(value)
        except (BufferError, TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"{name} ({type(value).__name__}, dtype {getattr(value, 'dtype', '?')}) "
                f"cannot be read through DLPack ({error}); pass a real float32, float64, "
                "integer or bool array") from error
    if device_type in _CUDA_DEVICES:
        try:
            import cupy
        except ImportError as error:
            raise TypeError(
                f"{name} is a {_CUDA_DEVICES[device_type]} array on GPU {device_id} "
                f"({type(value).__name__}); lowrank_core reads CUDA memory through CuPy, "
                "which is not installed: pip install lowrank_core[cuda13] (or move "
                f"{name} to the CPU)") from error
        with cupy.cuda.Device(device_id):
            return cupy.from_dlpack(value)
    raise TypeError(f"{name} ({type(value).__name__}) is on DLPack device type "
                    f"{device_type}; lowrank_core reads CPU and CUDA memory only")


def _as_float32(value, name: str):
    """A float32 copy of a bfloat16 array, made by its own library."""
    if _is_torch(value):
        return value.float()
    if hasattr(value, "__array_namespace__"):
        xp = value.__array_namespace__()
        return xp.astype(value, xp.float32)
    if hasattr(value, "astype"):
        return value.astype("float32")
    raise TypeError(f"{name} is bfloat16, which NumPy cannot hold, and "
                    f"{type(value).__name__} has no astype: convert it to float32")


def to_caller(result, caller: Caller | None):
    """``result`` for the caller (unchanged when the caller passed NumPy or CuPy)."""
    return result if caller is None else caller.wrap(result)


@contextlib.contextmanager
def _caller_stream(caller: Caller | None):
    """For a torch CUDA tensor: CuPy's current stream is torch's for the call."""
    if caller is None or caller.library != "torch" or caller.device[0] not in _CUDA_DEVICES:
        yield
        return
    import cupy

    torch = sys.modules["torch"]
    device = int(caller.device[1])
    stream = torch.cuda.current_stream(device)
    with cupy.cuda.Device(device), cupy.cuda.ExternalStream(stream.cuda_stream, device):
        yield


def dlpack_io(function):
    """``function`` taking DLPack arrays in any argument and returning the first such
    argument's kind (see the module docstring); NumPy and CuPy calls are unchanged."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        caller = _first_caller(args, kwargs)
        if caller is None:
            return function(*args, **kwargs)
        with _caller_stream(caller):
            args, kwargs = _converted(function, args, kwargs)
            return caller.wrap(function(*args, **kwargs))

    return wrapper


@functools.lru_cache(maxsize=None)
def _parameter_names(function) -> tuple:
    import inspect

    return tuple(inspect.signature(function).parameters)


def dlpack_fit(fit):
    """``fit(self, A, ...)`` taking a DLPack ``A``; the object remembers the caller's
    library for the results of its :func:`dlpack_method` methods."""

    @functools.wraps(fit)
    def wrapper(self, *args, **kwargs):
        caller = _first_caller(args, kwargs)
        before = self.__dict__.get("_network")
        try:
            with _caller_stream(caller):
                args, kwargs = _converted(fit, args, kwargs, skip=1)
                return fit(self, *args, **kwargs)
        finally:
            # A fit refused before training keeps the previous network, and its kind.
            if self.__dict__.get("_network") is not before:
                self._caller = caller

    return wrapper


def dlpack_method(method):
    """A method of a fitted object whose array arguments may be DLPack arrays and
    whose results come back in the library of those arguments, else of the one the
    object was fitted on (see :func:`dlpack_fit`)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        caller = _first_caller(args, kwargs) or getattr(self, "_caller", None)
        if caller is None:
            return method(self, *args, **kwargs)
        with _caller_stream(caller):
            args, kwargs = _converted(method, args, kwargs, skip=1)
            return caller.wrap(method(self, *args, **kwargs))

    return wrapper


def _first_caller(args, kwargs) -> Caller | None:
    first = next((value for value in (*args, *kwargs.values()) if is_foreign(value)), None)
    return None if first is None else Caller(first)


def _converted(function, args, kwargs, skip=0):
    """``args`` and ``kwargs`` with every DLPack array read by :func:`from_caller`,
    named by ``function``'s parameters (``skip``: leading ones not in ``args``, as
    ``self``)."""
    names = _parameter_names(function)[skip:]
    args = [from_caller(value, names[i] if i < len(names) else f"argument {i}")
            for i, value in enumerate(args)]
    return args, {key: from_caller(value, key) for key, value in kwargs.items()}
