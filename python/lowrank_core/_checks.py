"""Argument checks and normalisation, done once before anything crosses into C++.

Every public routine (and its plain-NumPy twin in :mod:`lowrank_core.reference`)
goes through these, so bad input gets the same clear ``ValueError`` or
``TypeError`` naming the argument, whichever implementation runs.
"""

from __future__ import annotations

import numbers
import operator
import secrets

import numpy as np

__all__ = [
    "BOTTLENECK_DATA",
    "BOTTLENECK_INITS",
    "BOTTLENECK_OPTIMIZERS",
    "INDEX_MAX",
    "array_module",
    "as_float_array",
    "as_stack",
    "bottleneck_widths",
    "check_bottleneck_options",
    "check_bottleneck_size",
    "check_choice",
    "check_finite",
    "check_int",
    "check_positive_float",
    "check_k",
    "check_seed",
    "is_cupy",
    "resolve_power_iters",
    "sketch_columns",
]

# The largest count the core can take: its sizes and counts are signed 64-bit
# integers. A larger Python int would otherwise reach the binding and fail there
# with pybind11's "incompatible function arguments", which names no argument.
INDEX_MAX = 2**63 - 1


def is_cupy(array) -> bool:
    """True for a CuPy array (checked without importing CuPy)."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(array):
    """``cupy`` for a CuPy array, else ``numpy``."""
    if is_cupy(array):
        import cupy

        return cupy
    return np


def as_float_array(A, name: str, *, ndim: int | None = None, min_ndim: int = 0,
                   dtype=None):
    """``A`` as a floating array the core can read, without modifying the input.

    float32/float64 keep their precision (float16 becomes float32); integer and
    bool become float64; complex, object, string and other dtypes are a
    ``TypeError``. Arrays that are neither C- nor Fortran-contiguous are copied
    to C order, and arrays not aligned for their dtype are copied. ``dtype``, if
    given, is the dtype to convert to.
    """
    from ._sparse import refuse_sparse  # (a cycle at import time otherwise)

    refuse_sparse(A, name)
    xp = array_module(A)
    if isinstance(A, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array, and lowrank_core does not read masks; "
                        f"pass {name}.filled(value) (masked entries replaced) or "
                        f"np.asarray({name}) (the data under the mask)")
    if xp is np:
        try:
            A = np.asarray(A)
        except (TypeError, ValueError) as error:  # e.g. a torch bfloat16 tensor, a ragged list
            raise type(error)(f"{name} cannot be read as a NumPy array ({error}); pass a "
                              "real float32, float64, integer or bool array") from error
    kind = A.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({A.dtype}); complex input is not supported")
    # The input's dtype is checked even when ``dtype`` says what to convert to:
    # object and string arrays would otherwise be parsed by astype.
    if kind in "biu":
        target = np.dtype(np.float64)
    elif kind == "f" and A.dtype.itemsize <= 4:
        target = np.dtype(np.float32)
    elif kind == "f" and A.dtype.itemsize == 8:
        target = np.dtype(np.float64)
    else:
        raise TypeError(
            f"{name} has dtype {A.dtype}; expected a real floating, integer or bool array"
        )
    if dtype is not None:
        target = np.dtype(dtype)
    if ndim is not None and A.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {A.ndim}-D with shape {A.shape}")
    if A.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions, got shape {A.shape}"
        )
    if A.dtype != target:
        if kind == "f" and A.dtype.itemsize > target.itemsize:
            # float64 -> float32 (dtype= given): values beyond float32's range would
            # become Inf, and the error would then blame the caller for an Inf that is
            # not in their array. The overflow is checked right below.
            with np.errstate(over="ignore"):
                narrowed = A.astype(target)
            if not bool(xp.isfinite(narrowed).all()) and bool(xp.isfinite(A).all()):
                largest = float(xp.abs(A).max())
                raise ValueError(
                    f"{name} has values too large for {target.name} (largest magnitude "
                    f"{largest:.3g}; {target.name} holds up to {float(np.finfo(target).max):.3g})"
                )
            # Values all below the narrower type's normal range would lose their digits
            # or become 0, and the result would be silently wrong.
            largest = float(xp.abs(A).max()) if A.size else 0.0
            tiny = float(np.finfo(target).tiny)
            if 0 < largest < tiny:
                raise ValueError(
                    f"{name} has values too small for {target.name} (largest magnitude "
                    f"{largest:.3g}; {target.name}'s normal values start at {tiny:.3g}): "
                    f"scale {name} up, or use float64"
                )
            A = narrowed
        else:
            A = A.astype(target)
    if not (A.flags.c_contiguous or A.flags.f_contiguous):
        A = xp.ascontiguousarray(A)
    if not _aligned(A):  # a view at an odd byte offset: the core reads T directly
        A = A.copy(order="A")
    return A


def _aligned(A) -> bool:
    """Whether ``A``'s data starts on a multiple of its dtype's alignment (its strides,
    contiguous, are multiples of the item size). NumPy keeps this in ``flags.aligned``;
    CuPy's ``flags`` has only ``c_contiguous``, ``f_contiguous`` and ``owndata``, so for
    CuPy the device pointer itself is checked."""
    if is_cupy(A):
        return A.data.ptr % A.dtype.alignment == 0
    return bool(A.flags.aligned)


def as_stack(A, *, transposable: bool = False):
    """A C-contiguous ``(batch, m, n)`` view or copy of an ``(..., m, n)`` array,
    and the batch shape ``A.shape[:-2]``.

    ``transposable``: the caller needs only what a matrix shares with its
    transpose (its singular values). Then a matrix stored column by column (a
    Fortran-ordered 2-D array, such as ``X.T`` of a C-ordered ``X``) comes back as
    its transpose, ``(1, n, m)``, a view instead of a copy."""
    xp = array_module(A)
    batch_shape = A.shape[:-2]
    batch = int(np.prod(batch_shape, dtype=np.int64))
    if transposable and not A.flags.c_contiguous:
        swapped = xp.swapaxes(A, -1, -2)
        if swapped.flags.c_contiguous:
            return swapped.reshape((batch,) + swapped.shape[-2:]), batch_shape
    return xp.ascontiguousarray(A).reshape((batch,) + A.shape[-2:]), batch_shape


def check_int(value, name: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``value`` as a Python int within [minimum, maximum] (bool is refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_k(k, shape, name: str = "k") -> int:
    """The target rank: an integer with 1 <= k <= min(m, n)."""
    m, n = shape[-2:]
    if min(m, n) == 0:
        raise ValueError(f"A is empty (shape {tuple(shape)}); it has no rank-{k} approximation")
    return check_int(k, name, minimum=1, maximum=min(m, n))


def check_seed(seed) -> int:
    """A 64-bit seed; ``None`` draws a fresh one from the operating system."""
    if seed is None:
        return secrets.randbits(64)
    return check_int(seed, "seed", minimum=0, maximum=2**64 - 1)


def sketch_columns(k: int, oversamples: int, shape) -> int:
    """l = k + oversamples, capped at min(m, n) (a range basis has at most that many columns)."""
    return min(k + oversamples, min(shape[-2:]))


def resolve_power_iters(power_iters, k: int, shape) -> int:
    """The number of power iterations; ``"auto"`` follows the rule below.

    ``"auto"``: 7 when k < 0.1 * min(m, n), else 4 (scikit-learn's rule). Small
    k relative to the matrix means a slowly decaying tail weighs more against
    sigma_{k+1}, so more passes are needed to keep the spectral error within 1% of
    the optimum on spectra decaying like 1/i; each iteration costs two passes over A.
    """
    if isinstance(power_iters, str):
        if power_iters != "auto":
            raise ValueError(f"power_iters must be 'auto' or an integer >= 0, got {power_iters!r}")
        return 7 if k < 0.1 * min(shape[-2:]) else 4
    return check_int(power_iters, "power_iters", minimum=0, maximum=INDEX_MAX)


BOTTLENECK_INITS = ("he_normal", "glorot_uniform", "orthogonal")
BOTTLENECK_OPTIMIZERS = ("sgd", "momentum", "adam", "gauss_newton")
BOTTLENECK_DATA = ("fixed", "stream", "exact")
_DTYPES = ("float32", "float64")


def check_choice(value, name: str, choices) -> str:
    """``value`` if it is one of the strings ``choices``; the error lists them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_mixed_precision(value) -> str:
    """The core's name for ``randomized_svd``'s ``mixed_precision``: "auto", "fast" or
    "off"."""
    if isinstance(value, (bool, np.bool_)):
        return "auto" if value else "off"
    if isinstance(value, str):
        if value in ("auto", "fast"):
            return value
        raise ValueError(f'mixed_precision must be "auto", "fast", True or False, got {value!r}')
    raise TypeError(f'mixed_precision must be "auto", "fast", True or False, got '
                    f"{type(value).__name__}")


def check_positive_float(value, name: str) -> float:
    """``value`` as a finite float > 0 (bool is refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_finite(A, name: str = "A"):
    """A ``ValueError`` naming ``name`` when ``A`` holds NaN or Inf."""
    xp = array_module(A)
    if not bool(xp.isfinite(A).all()):
        raise ValueError(f"{name} contains NaN or Inf")


def check_bottleneck_options(rank, layers, bias, init, optimizer, lr, epochs, samples,
                             batch_size, data, dtype) -> dict:
    """The options of a bottleneck network, checked and normalised (see ``Bottleneck``).

    What needs the shape of A (rank <= min(m, n)) is checked by
    :func:`bottleneck_widths` at fit time.
    """
    rank = check_int(rank, "rank", minimum=1)
    if layers is not None:
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise TypeError(f"layers must be a sequence of integers, got {type(layers).__name__}")
        layers = tuple(check_int(width, f"layers[{i}]", minimum=1, maximum=INDEX_MAX)
                       for i, width in enumerate(layers))
        if not layers:
            raise ValueError("layers must hold at least one width (the choke point, = rank)")
        narrow = [w for w in layers if w < rank]
        if narrow:
            raise ValueError(f"layers has a width below rank = {rank}: {narrow[0]} "
                             f"(layers = {layers}); the learned map would have a lower rank")
        if min(layers) != rank:
            raise ValueError(f"the narrowest of layers must equal rank = {rank} (the choke "
                             f"point), got layers = {layers}")
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {type(bias).__name__}")
    if isinstance(dtype, str):
        dtype_name = dtype
    else:
        try:
            dtype_name = np.dtype(dtype).name
        except TypeError:
            dtype_name = repr(dtype)
    return dict(
        rank=rank,
        layers=layers,
        bias=bool(bias),
        init=check_choice(init, "init", BOTTLENECK_INITS),
        optimizer=(None if optimizer is None
                   else check_choice(optimizer, "optimizer", BOTTLENECK_OPTIMIZERS)),
        lr=check_positive_float(lr, "lr"),
        epochs=check_int(epochs, "epochs", minimum=1, maximum=INDEX_MAX),
        samples=check_int(samples, "samples", minimum=1, maximum=INDEX_MAX),
        batch_size=check_int(batch_size, "batch_size", minimum=1, maximum=INDEX_MAX),
        data=check_choice(data, "data", BOTTLENECK_DATA),
        dtype=check_choice(dtype_name, "dtype", _DTYPES),
    )


def bottleneck_widths(rank: int, layers, shape) -> list[int]:
    """Every width of the network for A of shape (m, n): ``[n, *layers, m]``.

    ``layers`` defaults to ``(n, rank)``, the paper's n -> n -> k -> m; ``rank`` must
    be between 1 and min(m, n).
    """
    m, n = shape
    check_k(rank, shape, "rank")
    hidden = (n, rank) if layers is None else tuple(layers)
    return [n, *hidden, m]


def check_bottleneck_size(widths, samples: int, batch_size: int, data: str) -> None:
    """A ``ValueError`` naming the size when one of the network's arrays would hold
    more values than the core can index.

    The core sizes its arrays with signed 64-bit products (rows x columns, in values
    of up to 8 bytes); past ``INDEX_MAX // 8`` values such a product overflows.
    Nothing that large can be allocated anyway: below it, an impossible request is
    a ``MemoryError``.
    """
    columns = {"fixed": samples, "stream": min(batch_size, samples),
               "exact": widths[0] + 1}[data]
    arrays = [(f"weight {l} ({rows} x {cols})", rows * cols)
              for l, (cols, rows) in enumerate(zip(widths[:-1], widths[1:]))]
    arrays += [(f"the layer of width {width} over {columns} training vectors", width * columns)
               for width in widths]
    for what, values in arrays:
        if values > INDEX_MAX // 8:
            raise ValueError(
                f"the network is too large: {what} would hold {values} values, past the "
                f"core's 64-bit sizes (widths {tuple(widths)}, data={data!r})"
            )
