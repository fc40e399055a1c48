"""Coverage-guided fuzzing of lowrank_core's bindings with atheris.

Each input picks a target and decodes the rest of its bytes into arrays (any shape
up to 12 x 12, dtype, layout, values from a palette with zeros, denormals, +-1e300,
NaN and Inf) and arguments (small, negative or huge integers, odd strings). Two
kinds of target:

- the public API (``lowrank_core.svd`` ...): may raise only ValueError, TypeError
  or MemoryError, and must leave its input unchanged;
- the raw pybind11 entry points (``lowrank_core._core``), called with arguments the
  Python layer would have refused (k above the sketch, a sketch of the wrong shape,
  widths that do not narrow to the rank ...): may raise, never crash.

Any other exception is a finding (atheris stops and prints the input); a crash or
a sanitizer report in a sanitizer build (tools/sanitize.sh) is one too.

    python tools/fuzz_bindings.py -max_total_time=60     # or -runs=N; libFuzzer flags
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    import lowrank_core as lc
    from lowrank_core import _core

PALETTE = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e-310, -5e-324, 1e300, -1e300, 1e-30, 7.0, np.nan,
     np.inf, -np.inf, 2.0],
    dtype=np.float64,
)
DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex128,
          np.uint16]
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
# Integers for k, ranks, sizes, iterations: mostly small, sometimes hostile. ASan
# aborts on a throwing `new` it cannot serve (it never throws std::bad_alloc), so
# under the sanitizers the sizes that cannot be allocated are left out; the plain
# build's run and tests/test_memory.py cover them (MemoryError).
INTS = [0, 1, 2, 3, 4, 5, 7, 11, -1, -7] + (
    [64, 1024] if UNDER_ASAN else [2**31, 2**40, 2**62, 2**63 - 1])
PUBLIC_ERRORS = (ValueError, TypeError, MemoryError)
RAW_ERRORS = (ValueError, TypeError, MemoryError, OverflowError, RuntimeError, IndexError)


def an_int(data: atheris.FuzzedDataProvider) -> int:
    return INTS[data.ConsumeIntInRange(0, len(INTS) - 1)]


def a_small_int(data: atheris.FuzzedDataProvider, low=0, high=12) -> int:
    return data.ConsumeIntInRange(low, high)


def an_array(data: atheris.FuzzedDataProvider, *, ndim=None, finite=False, dtype=None):
    ndim = ndim if ndim is not None else data.ConsumeIntInRange(1, 3)
    shape = tuple(a_small_int(data, 0, 12) for _ in range(ndim))
    size = int(np.prod(shape))
    picks = np.frombuffer(data.ConsumeBytes(size).ljust(size, b"\0"), dtype=np.uint8)
    palette = PALETTE[:12] if finite else PALETTE
    values = palette[picks % len(palette)].reshape(shape)
    if dtype is None:
        dtype = DTYPES[data.ConsumeIntInRange(0, len(DTYPES) - 1)]
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iub":
            array = np.nan_to_num(values, posinf=3, neginf=-3).astype(dtype)
        else:
            array = values.astype(dtype)
    layout = data.ConsumeIntInRange(0, 4)
    if layout == 1:
        array = np.asfortranarray(array)
    elif layout == 2 and array.ndim >= 1:  # strided: every other row of a bigger array
        big = np.repeat(array, 2, axis=0)
        array = big[::2]
    elif layout == 3:
        array = array.copy()
        array.flags.writeable = False
    elif layout == 4 and array.size:  # misaligned: a view at an odd byte offset
        raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(array.dtype).reshape(array.shape)
        view[...] = array
        array = view
    return array


def public(data: atheris.FuzzedDataProvider) -> None:
    A = an_array(data)
    before = (A.copy(), A.flags.writeable)
    target = data.ConsumeIntInRange(0, 9)
    try:
        if target == 0:
            lc.svd(A, an_int(data))
        elif target == 1:
            lc.randomized_svd(A, an_int(data), oversamples=an_int(data),
                              power_iters=a_small_int(data, -1, 4), seed=an_int(data))
        elif target == 2:
            lc.singular_values(A)
        elif target == 3:
            rtol = [None, 0.0, 1e-3, -1.0, np.nan][data.ConsumeIntInRange(0, 4)]
            lc.rank(A, rtol=rtol, hermitian=data.ConsumeBool())
        elif target == 4:
            lc.erank(A)
        elif target == 5:
            lc.stable_rank(A)
        elif target == 6:
            lc.entropy_rank(A)
        elif target == 7:
            B = an_array(data, ndim=A.ndim)
            lc.relative_error(A, B, ord=["fro", 2, 1, "nuc"][data.ConsumeIntInRange(0, 3)])
        elif target == 8:
            net = lc.Bottleneck(an_int(data), epochs=1, samples=a_small_int(data, 1, 40),
                                batch_size=a_small_int(data, 1, 8),
                                data=["fixed", "stream", "exact", "bogus"][
                                    data.ConsumeIntInRange(0, 3)],
                                optimizer=["adam", "sgd", "momentum"][
                                    data.ConsumeIntInRange(0, 2)],
                                bias=data.ConsumeBool(), seed=0)
            net.fit(A)
            net.predict(an_array(data, ndim=2))
            net.factors()
        else:
            sketch = an_array(data, ndim=2)
            lc.randomized_svd(A, an_int(data), power_iters=1, sketch=sketch)
    except PUBLIC_ERRORS:
        pass
    assert A.flags.writeable == before[1], "the input's flags changed"
    assert np.array_equal(A, before[0], equal_nan=True), "the input changed"


def raw(data: atheris.FuzzedDataProvider) -> None:
    dtype = [np.float32, np.float64][data.ConsumeIntInRange(0, 1)]
    target = data.ConsumeIntInRange(0, 7)
    try:
        if target == 0:
            _core.svd(an_array(data, ndim=2, dtype=dtype), an_int(data))
        elif target == 1:
            A = an_array(data, ndim=2, dtype=dtype, finite=data.ConsumeBool())
            sketch = an_array(data, ndim=2, dtype=dtype) if data.ConsumeBool() else None
            _core.randomized_svd(A, _core.RandomizedSvdOptions(
                rank=an_int(data), sketch_columns=an_int(data),
                power_iters=a_small_int(data, -2, 3), seed=a_small_int(data, 0, 2**20)), sketch)
        elif target == 2:
            _core.singular_values(an_array(data, ndim=3, dtype=dtype))
        elif target == 3:
            _core.matrix_rank(an_array(data, ndim=3, dtype=dtype),
                              [0.0, -1.0, 1e-3, np.nan, np.inf][data.ConsumeIntInRange(0, 4)],
                              data.ConsumeBool(), data.ConsumeBool())
        elif target == 4:
            A = an_array(data, ndim=2, dtype=dtype)
            B = an_array(data, ndim=2, dtype=dtype)
            _core.relative_error(A, B, ["2", "fro", "x"][data.ConsumeIntInRange(0, 2)])
        elif target == 5:
            _core.gaussian_sketch(a_small_int(data, -2, 30), a_small_int(data, -2, 30),
                                  a_small_int(data, 0, 2**20),
                                  ["float32", "float64", "int8"][data.ConsumeIntInRange(0, 2)])
        elif target == 6:  # singular_values' path for large matrices, at any size
            _core._testing.two_stage_singular_values(
                an_array(data, ndim=2, dtype=dtype, finite=data.ConsumeBool()))
        else:
            widths = [an_int(data) for _ in range(data.ConsumeIntInRange(0, 4))]
            net = _core.bottleneck_network(
                ["float32", "float64"][dtype == np.float64], widths, data.ConsumeBool(),
                "he_normal", ["adam", "sgd", "x"][data.ConsumeIntInRange(0, 2)],
                [1e-3, 0.0, -1.0, np.nan][data.ConsumeIntInRange(0, 3)],
                a_small_int(data, -1, 2), a_small_int(data, -1, 20), a_small_int(data, -1, 8),
                ["fixed", "stream", "exact"][data.ConsumeIntInRange(0, 2)], 0)
            net.fit(an_array(data, ndim=2, dtype=dtype))
            net.predict(an_array(data, ndim=2, dtype=dtype))
    except RAW_ERRORS:
        pass


def test_one_input(raw_bytes: bytes) -> None:
    data = atheris.FuzzedDataProvider(raw_bytes)
    if data.ConsumeBool():
        public(data)
    else:
        raw(data)


def cap_memory(gib: int = 8) -> None:
    """Caps the address space (plain builds), so that a request too large for the
    machine is a MemoryError at once, the same everywhere, instead of gigabytes being
    filled. Not under ASan, which reserves terabytes of shadow memory."""
    if UNDER_ASAN:
        return
    import resource

    limit = gib << 30
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def main() -> None:
    cap_memory()
    np.seterr(all="ignore")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
