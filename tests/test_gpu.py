"""The CUDA core: CuPy arrays in, CuPy arrays out, the same answers as the CPU core.

Tests marked ``gpu`` need CuPy and a CUDA GPU and skip with a reason where
``lowrank_core.gpu_available()`` is false. The others run everywhere: they check
that a build with the CUDA core imports it (no GPU needed) and that CuPy arrays
without it are a clear error.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _backend, _build_config, _core, reference
from lowrank_core.data import decaying_spectrum

from conftest import assert_close, random_matrix, rtol_for

GPU, WHY = _backend.gpu_status()
needs_gpu = pytest.mark.skipif(
    not GPU, reason=f"needs CuPy and a CUDA GPU (gpu_available() is False: {WHY})"
)


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


def host(x):
    """A NumPy copy of a CuPy array (for comparisons only)."""
    return x.get()


# --- run everywhere ---------------------------------------------------------------------


def test_build_config_and_cuda_module_import():
    if os.environ.get("LOWRANK_CORE_CUDA", "").upper() == "ON":
        assert _build_config.HAS_CUDA, "LOWRANK_CORE_CUDA=ON but _cuda was not built"
    if _build_config.HAS_CUDA:
        # Built with CUDA: the module must load here, GPU or not (it only needs the
        # CUDA libraries), and mirror _core's routines.
        cuda = importlib.import_module("lowrank_core._cuda")
        assert isinstance(_build_config.CUDA_VERSION, str)
        assert cuda.cuda_runtime_version // 1000 == int(_build_config.CUDA_VERSION.split(".")[0])
        count = cuda.device_count()
        assert isinstance(count, int) and count >= 0
        for name in ["svd", "randomized_svd", "singular_values", "matrix_rank", "rank_measure",
                     "relative_error", "gaussian_sketch", "bottleneck_network"]:
            assert callable(getattr(cuda, name)), name
    else:
        assert _build_config.CUDA_VERSION is None
        with pytest.raises(ImportError):
            importlib.import_module("lowrank_core._cuda")


@pytest.mark.skipif(not _build_config.HAS_CUDA, reason="this build has no CUDA core")
def test_cuda_core_without_a_gpu_raises_a_clear_error():
    # Runs where there is no GPU (as in CI): the error macros carry the failing call
    # and the bindings turn them into exceptions, never a crash.
    cuda = importlib.import_module("lowrank_core._cuda")
    if cuda.device_count() > 0:
        pytest.skip("a GPU is present")
    import cupy_standin  # host arrays with __cuda_array_interface__: never read here

    fake = cupy_standin.make_cupy()
    U, S, Vh = fake.empty((3, 1), order="F"), fake.empty((1,)), fake.empty((1, 3), order="F")
    with pytest.raises(RuntimeError, match=r"CUDA error .* in cudaGetDevice.*resources\.cpp"):
        cuda.svd(fake.ones((3, 3)), 1, U, S, Vh, 0)
    with pytest.raises(TypeError, match="A must be float32 or float64"):
        cuda.svd(fake.ones((3, 3), dtype=np.float16), 1, U, S, Vh, 0)


def test_gpu_available_is_a_bool_and_never_raises():
    assert isinstance(lc.gpu_available(), bool)
    available, why = _backend.gpu_status()
    assert available is lc.gpu_available() and isinstance(why, str) and why
    if not _build_config.HAS_CUDA:
        assert lc.gpu_available() is False


class _FakeCupyArray:
    """Looks like a CuPy array to the dispatch (its type lives in a cupy module)."""

    dtype = np.dtype(np.float64)
    shape = (3, 3)
    ndim = 2


_FakeCupyArray.__module__ = "cupy._core.core"


def _cuda_import_fails(monkeypatch, *, built: bool):
    """Makes importing lowrank_core._cuda (and so _cuda_api) fail, in a build that
    has the CUDA core (`built`) or not."""
    import lowrank_core

    monkeypatch.setattr(_build_config, "HAS_CUDA", built)
    monkeypatch.setitem(sys.modules, "lowrank_core._cuda", None)
    monkeypatch.delattr(lowrank_core, "_cuda", raising=False)
    monkeypatch.delitem(sys.modules, "lowrank_core._cuda_api", raising=False)
    monkeypatch.delattr(lowrank_core, "_cuda_api", raising=False)


def test_cupy_array_without_cuda_core_is_a_type_error(monkeypatch):
    _cuda_import_fails(monkeypatch, built=False)  # as in a build without _cuda
    with pytest.raises(TypeError, match="no CUDA core"):
        _backend.backend_for(_FakeCupyArray())


def test_cupy_array_when_the_cuda_core_fails_to_load_says_so(monkeypatch):
    _cuda_import_fails(monkeypatch, built=True)  # CuPy or the CUDA libraries missing
    with pytest.raises(TypeError, match="could not be loaded"):
        _backend.backend_for(_FakeCupyArray())


def test_numpy_and_cupy_mixed_is_a_type_error():
    with pytest.raises(TypeError, match="different devices"):
        _backend.backend_for(np.ones((3, 3)), _FakeCupyArray())


# --- on a GPU ---------------------------------------------------------------------------

SHAPES = [(60, 40), (40, 60), (33, 33)]


def to_device(cp, A, layout="C"):
    A = cp.asarray(A)
    return cp.asfortranarray(A) if layout == "F" else cp.ascontiguousarray(A)


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.gpu
@needs_gpu
def test_svd_matches_cpu_and_reference(cp, shape, layout, float_dtype):
    m, n = shape
    spectrum = 0.7 ** np.arange(min(m, n))
    A_host = decaying_spectrum(m, n, spectrum, seed=3, dtype=float_dtype)
    A = to_device(cp, A_host, layout)
    before = A.copy()
    for k in [1, 5, min(m, n)]:
        got = lc.svd(A, k)
        assert all(isinstance(x, cp.ndarray) for x in got)
        assert got.U.shape == (m, k) and got.S.shape == (k,) and got.Vh.shape == (k, n)
        assert got.U.dtype == got.S.dtype == got.Vh.dtype == float_dtype
        cpu = lc.svd(A_host, k)
        want = reference.svd(A_host, k)
        scale = float(want.S[0])
        assert_close(host(got.S), want.S, float_dtype, scale=scale, factor=10)
        assert_close(host(got.S), cpu.S, float_dtype, scale=scale, factor=10)
        assert_close(host(got.to_dense()), want.to_dense(), float_dtype, scale=scale,
                     factor=100)
        # The same sign convention: the leading vectors themselves agree (their
        # singular values are well separated, so they are well conditioned).
        lead = min(k, 5)
        assert_close(host(got.U)[:, :lead], cpu.U[:, :lead], float_dtype, scale=1.0,
                     factor=100)
        assert_close(host(got.Vh)[:lead], cpu.Vh[:lead], float_dtype, scale=1.0, factor=100)
        U = host(got.U)
        assert np.all(U[np.abs(U).argmax(axis=0), np.arange(k)] > 0)
    assert bool((A == before).all()), "A was modified"


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("shape", [(80, 50), (50, 80)], ids=str)
@pytest.mark.gpu
@needs_gpu
def test_randomized_svd_same_seed_agrees_with_cpu(cp, shape, layout, float_dtype):
    m, n = shape
    A_host = decaying_spectrum(m, n, 0.8 ** np.arange(min(m, n)), seed=6, dtype=float_dtype)
    A = to_device(cp, A_host, layout)
    before = A.copy()
    for k, oversamples, power_iters in [(1, 0, 0), (8, 5, 2), (10, 10, "auto")]:
        got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                seed=42)
        assert all(isinstance(x, cp.ndarray) for x in got)
        # The GPU runs in A's precision throughout, so it is compared with the CPU
        # without power iterations below A's precision: the same algorithm, to rounding.
        cpu = lc.randomized_svd(A_host, k, oversamples=oversamples, power_iters=power_iters,
                                seed=42, mixed_precision=False)
        scale = float(cpu.S[0])
        assert_close(host(got.S), cpu.S, float_dtype, scale=scale, factor=10)
        assert_close(host(got.U), cpu.U, float_dtype, scale=1.0, factor=100)
        assert_close(host(got.Vh), cpu.Vh, float_dtype, scale=1.0, factor=100)
        # Deterministic: the same seed twice gives the same bits on the GPU, whatever
        # mixed_precision asks for (the GPU has one precision).
        for precision in ("auto", "fast", False):
            again = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                      seed=42, mixed_precision=precision)
            for a, b in zip(got, again):
                assert bool((a == b).all())
    assert bool((A == before).all()), "A was modified"


@pytest.mark.gpu
@needs_gpu
def test_randomized_svd_explicit_sketch_matches_reference(cp, float_dtype):
    A_host = random_matrix((60, 40), float_dtype, seed=5)
    A = cp.asarray(A_host)
    for k, oversamples, power_iters in [(1, 0, 0), (5, 3, 2), (40, 10, 3)]:
        columns = min(k + oversamples, 40)
        sketch_host = random_matrix((40, columns), float_dtype, seed=k)
        for sketch in (cp.asarray(sketch_host), cp.asfortranarray(cp.asarray(sketch_host))):
            got = lc.randomized_svd(A, k, oversamples=oversamples, power_iters=power_iters,
                                    sketch=sketch)
            want = reference.randomized_svd(A_host, k, oversamples=oversamples,
                                            power_iters=power_iters, sketch=sketch_host)
            scale = float(want.S[0])
            assert_close(host(got.S), want.S, float_dtype, scale=scale, factor=10)
            assert_close(host(got.to_dense()), want.to_dense(), float_dtype, scale=scale,
                         factor=100)
    with pytest.raises(TypeError, match="different devices"):
        lc.randomized_svd(A, 1, oversamples=0, sketch=np.ones((40, 1), float_dtype))


@pytest.mark.parametrize("seed", [0, 1, 2**32 + 5, 2**64 - 1])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (37, 13), (1000, 7)], ids=str)
@pytest.mark.gpu
@needs_gpu
def test_gpu_sketch_is_the_cpu_sketch(cp, shape, seed):
    from lowrank_core import _cuda_api

    for dtype in ("float32", "float64"):
        got = _cuda_api.gaussian_sketch(*shape, seed, dtype)
        assert isinstance(got, cp.ndarray) and got.dtype == np.dtype(dtype)
        want = _core.gaussian_sketch(*shape, seed, dtype)
        # Box-Muller's log/sin/cos may differ in the last bits between CUDA's libm and
        # glibc; float32 is then at most one rounding apart.
        np.testing.assert_allclose(host(got), want, rtol=1e-13 if dtype == "float64" else 2e-7,
                                   atol=1e-13 if dtype == "float64" else 1e-7)


STACKS = [(3, 5, 4), (2, 3, 4, 6), (4, 32, 32), (2, 40, 35), (2, 35, 40), (1, 1, 1), (0, 3, 3)]


@pytest.mark.parametrize("shape", STACKS, ids=str)
@pytest.mark.gpu
@needs_gpu
def test_singular_values_of_stacks(cp, shape, float_dtype):
    A_host = random_matrix(shape, float_dtype, seed=1)
    A = cp.asarray(A_host)
    got = lc.singular_values(A)
    assert isinstance(got, cp.ndarray) and got.dtype == float_dtype
    want = np.linalg.svd(A_host.astype(np.float64), compute_uv=False)
    assert got.shape == want.shape
    if want.size:
        assert_close(host(got), want, float_dtype, factor=10)
    assert_close(host(lc.singular_values(cp.asfortranarray(A))), want, float_dtype, factor=10)


def low_rank(shape, r, dtype, seed=0):
    rng = np.random.default_rng(seed)
    batch, (m, n) = shape[:-2], shape[-2:]
    return (rng.standard_normal(batch + (m, r)) @ rng.standard_normal(batch + (r, n))).astype(
        dtype)


@pytest.mark.parametrize("shape", [(20, 30), (3, 20, 30), (2, 3, 40, 36), (4, 8, 8)], ids=str)
@pytest.mark.gpu
@needs_gpu
def test_rank_matches_numpy(cp, shape, float_dtype):
    A_host = low_rank(shape, 5, float_dtype, seed=2)
    A = cp.asarray(A_host)
    got = lc.rank(A)
    want = np.linalg.matrix_rank(A_host)
    if A_host.ndim == 2:
        assert isinstance(got, int) and got == want == 5
    else:
        assert isinstance(got, cp.ndarray) and got.dtype == np.int64
        np.testing.assert_array_equal(host(got), want)
    np.testing.assert_array_equal(np.asarray(lc.rank(A, tol=1e-3) if A_host.ndim == 2
                                             else host(lc.rank(A, tol=1e-3))),
                                  np.linalg.matrix_rank(A_host, tol=1e-3))
    rtol = np.full(A_host.shape[:-2], 0.5)
    got_rtol = lc.rank(A, rtol=rtol)
    want_rtol = lc.rank(A_host, rtol=rtol)
    np.testing.assert_array_equal(got_rtol if A_host.ndim == 2 else host(got_rtol), want_rtol)
    # hermitian: |eigenvalues| of the lower triangle
    S_host = A_host[..., :8, :8] + np.swapaxes(A_host[..., :8, :8], -1, -2)
    S_host = np.tril(S_host)  # only the lower triangle is read
    got_h = lc.rank(cp.asarray(S_host), hermitian=True)
    want_h = lc.rank(S_host, hermitian=True)
    np.testing.assert_array_equal(got_h if S_host.ndim == 2 else host(got_h), want_h)


@pytest.mark.parametrize("measure", ["erank", "stable_rank", "entropy_rank"])
@pytest.mark.parametrize("shape", [(30, 20), (3, 20, 30), (2, 40, 33), (5, 6, 6)], ids=str)
@pytest.mark.gpu
@needs_gpu
def test_rank_measures_match_cpu(cp, shape, measure, float_dtype):
    A_host = random_matrix(shape, float_dtype, seed=4)
    got = getattr(lc, measure)(cp.asarray(A_host))
    want = getattr(lc, measure)(A_host)
    ref = getattr(reference, measure)(A_host)
    if len(shape) == 2:
        assert isinstance(got, float)
    else:
        assert isinstance(got, cp.ndarray) and got.dtype == np.float64
        got = host(got)
    assert_close(got, want, float_dtype, factor=10)
    assert_close(got, ref, float_dtype, factor=10)
    assert getattr(lc, measure)(cp.zeros((4, 3), float_dtype)) == 0.0


@pytest.mark.parametrize("ord", [2, "fro"])
@pytest.mark.gpu
@needs_gpu
def test_relative_error_matches_cpu(cp, ord, float_dtype):
    A_host = random_matrix((50, 30), float_dtype, seed=7)
    B_host = lc.svd(A_host, 5).to_dense()
    for layout_a, layout_b in [("C", "C"), ("C", "F"), ("F", "C"), ("F", "F")]:
        A = to_device(cp, A_host, layout_a)
        B = to_device(cp, B_host, layout_b)
        got = lc.relative_error(A, B, ord=ord)
        assert isinstance(got, float)
        want = lc.relative_error(A_host, B_host, ord=ord)
        assert abs(got - want) <= 10 * rtol_for(float_dtype) * want
    zero = cp.zeros((4, 3), float_dtype)
    assert lc.relative_error(zero, zero, ord=ord) == 0.0
    assert lc.relative_error(zero, cp.ones((4, 3), float_dtype), ord=ord) == float("inf")
    huge = cp.full((3, 3), 1e300 if float_dtype == np.float64 else 1e30, float_dtype)
    assert lc.relative_error(huge, huge * 0.5, ord="fro") == pytest.approx(0.5)
    # Near the top of the range A - B overflows unless both are scaled first (as the
    # CPU core does); at the bottom, unscaled entries would be subnormal.
    finfo = np.finfo(float_dtype)
    for value in (float(finfo.max) * 0.9, float(finfo.tiny) * 4):
        A_edge = np.full((4, 3), value, float_dtype)
        A_edge[0, 0] = -value
        B_edge = -A_edge
        want = lc.relative_error(A_edge, B_edge, ord=ord)
        assert np.isfinite(want) and want == pytest.approx(2.0)
        got = lc.relative_error(cp.asarray(A_edge), cp.asarray(B_edge), ord=ord)
        assert got == pytest.approx(want, rel=10 * rtol_for(float_dtype))


@pytest.mark.gpu
@needs_gpu
def test_work_is_ordered_on_the_callers_stream(cp):
    # Input produced, the call made and the outputs consumed on a non-default,
    # non-blocking stream with no synchronisation in between: only correct if every
    # step of the core is ordered on that stream.
    A_host = decaying_spectrum(300, 200, 0.9 ** np.arange(200), seed=8)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        assert cp.cuda.get_current_stream().ptr == stream.ptr != 0
        A = cp.asarray(A_host) * 2.0  # an elementwise kernel on `stream`
        result = lc.randomized_svd(A, 10, seed=1)
        dense = result.to_dense() * 0.5
        S = lc.singular_values(A)
        r = lc.rank(A)
    stream.synchronize()
    cpu = lc.randomized_svd(A_host * 2.0, 10, seed=1)
    assert_close(host(dense), cpu.to_dense() * 0.5, np.float64, scale=float(cpu.S[0]),
                 factor=100)
    assert_close(host(S), np.linalg.svd(A_host * 2.0, compute_uv=False), np.float64,
                 factor=10)
    assert r == np.linalg.matrix_rank(A_host)


ROUTINES = {
    "svd": lambda A: lc.svd(A, 1),
    "randomized_svd": lambda A: lc.randomized_svd(A, 1, seed=0),
    "singular_values": lambda A: lc.singular_values(A),
    "rank": lambda A: lc.rank(A),
    "erank": lambda A: lc.erank(A),
    "stable_rank": lambda A: lc.stable_rank(A),
    "entropy_rank": lambda A: lc.entropy_rank(A),
    "relative_error": lambda A: lc.relative_error(A, A * 0 + 1),
}


@pytest.mark.parametrize("name", list(ROUTINES))
@pytest.mark.gpu
@needs_gpu
def test_bad_inputs_are_the_cpu_errors(cp, name):
    call = ROUTINES[name]
    A = cp.ones((4, 3))
    A[2, 1] = cp.nan
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(A)
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        call(cp.full((3, 3), cp.inf))
    with pytest.raises(TypeError, match="A is complex"):
        call(cp.ones((3, 3), dtype=cp.complex128))
    # Integer and bool input become float64, computed on the GPU.
    out = call(cp.arange(12).reshape(4, 3))
    leaves = out if isinstance(out, tuple) else (out,)
    for leaf in leaves:
        assert isinstance(leaf, (int, float, cp.ndarray))
        if isinstance(leaf, cp.ndarray):
            assert leaf.dtype in (np.float64, np.int64)


@pytest.mark.gpu
@needs_gpu
def test_argument_errors_match_cpu(cp):
    A = cp.ones((5, 4))
    for bad_k in (0, 5):
        with pytest.raises(ValueError, match="k must be"):
            lc.svd(A, bad_k)
        with pytest.raises(ValueError, match="k must be"):
            lc.randomized_svd(A, bad_k)
    with pytest.raises(ValueError, match="must be 2-D"):
        lc.svd(cp.ones(3), 1)
    with pytest.raises(ValueError, match="shape"):
        lc.relative_error(A, cp.ones((4, 5)))
    with pytest.raises(ValueError, match="sketch must have shape"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=cp.ones((4, 3)))
    with pytest.raises(ValueError, match="tol and rtol"):
        lc.rank(A, tol=1.0, rtol=1.0)
    bad_sketch = cp.ones((4, 2))
    bad_sketch[3, 1] = cp.inf
    with pytest.raises(ValueError, match="sketch contains NaN or Inf"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=bad_sketch)
    with pytest.raises(ValueError, match="B contains NaN or Inf"):
        lc.relative_error(A, A * cp.nan)
    with pytest.raises(TypeError, match="different devices"):
        lc.relative_error(A, np.ones((5, 4)))


@pytest.mark.gpu
@needs_gpu
def test_out_of_memory_is_a_memory_error_and_the_process_stays_usable(cp):
    # A is small (far below 2**31 entries); the rest of the GPU is taken by a filler,
    # leaving less than one copy of A free, so the first workspace of relative_error
    # (A - B, the size of A) is the allocation that fails, before any real work.
    A = cp.ones((4096, 2048))
    lc.relative_error(A[:8, :8], A[:8, :8] * 0.5)  # the handles exist before the filler
    cp.get_default_memory_pool().free_all_blocks()
    free, _ = cp.cuda.runtime.memGetInfo()
    filler = None
    for left in (A.nbytes // 2, 3 * A.nbytes // 4):  # less than A's size left free
        try:
            filler = cp.empty(max(free - left, 0), dtype=cp.uint8)
            break
        except cp.cuda.memory.OutOfMemoryError:
            continue
    assert filler is not None, "could not fill the GPU's memory"
    try:
        with pytest.raises(MemoryError, match="bytes"):
            lc.relative_error(A, A, ord="fro")
    finally:
        del filler
        cp.get_default_memory_pool().free_all_blocks()
    assert lc.relative_error(A, A * 0.5, ord="fro") == pytest.approx(0.5)
    small = cp.asarray(np.diag([3.0, 2.0, 1.0]))
    assert host(lc.svd(small, 2).S).tolist() == pytest.approx([3.0, 2.0])


# --- the bottleneck network -------------------------------------------------------------
# Runs everywhere: the dispatch and the errors without a GPU.


def _cupy_importable() -> bool:
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return True


def test_bottleneck_on_a_cupy_array_without_cuda_core_is_a_type_error(monkeypatch):
    _cuda_import_fails(monkeypatch, built=False)
    net = lc.Bottleneck(2, epochs=1, samples=10, seed=0)
    with pytest.raises(TypeError, match="no CUDA core"):
        net.fit(_FakeCupyArray())
    with pytest.raises(lc.NotFittedError):  # nothing was half-fitted
        net.matrix()


@pytest.mark.skipif(_cupy_importable(), reason="CuPy is installed: a fake array cannot stand in")
def test_bottleneck_on_a_cupy_like_array_without_cupy_is_a_type_error():
    # This build may have the CUDA core, but without CuPy no CuPy array can reach it:
    # a clear TypeError at fit, never a crash or a copy to the host.
    with pytest.raises(TypeError, match="CuPy array was given"):
        lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(_FakeCupyArray())


def test_predict_on_the_other_device_is_a_type_error():
    net = lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(np.eye(3))
    with pytest.raises(TypeError, match="different devices"):
        net.predict(_FakeCupyArray())


@pytest.mark.skipif(not _build_config.HAS_CUDA, reason="this build has no CUDA core")
def test_cuda_bottleneck_network_builds_without_a_gpu_and_fit_fails_clearly():
    cuda = importlib.import_module("lowrank_core._cuda")
    widths = [5, 4, 2, 6]
    host = _core.bottleneck_network("float32", widths, True, "orthogonal", "adam", 1e-3, 1, 10,
                                    4, "fixed", 3)
    weights, biases = host.parameters()
    net = cuda.bottleneck_network("float32", widths, True, "orthogonal", "adam", 1e-3, 1, 10, 4,
                                  "fixed", 3, weights, biases)
    assert net.widths == widths and net.rank == 2 and net.device == -1
    assert net.loss_history.shape == (0,) and net.scale == 1.0
    got_weights, got_biases = net.parameters(-1, 0)  # before a fit: the initial ones, on the host
    for got, want in zip(got_weights, weights):
        assert np.array_equal(got, want)
    assert all(not b.any() for b in got_biases)
    # The same configuration errors as the CPU network.
    with pytest.raises(ValueError, match="optimizer must be one of"):
        cuda.bottleneck_network("float32", widths, True, "orthogonal", "rmsprop", 1e-3, 1, 10,
                                4, "fixed", 3, weights, biases)
    with pytest.raises(ValueError, match="lr must be > 0"):
        cuda.bottleneck_network("float32", widths, True, "orthogonal", "adam", -1.0, 1, 10, 4,
                                "fixed", 3, weights, biases)
    with pytest.raises(ValueError, match="initial weight 1 must have shape"):
        cuda.bottleneck_network("float32", widths, True, "orthogonal", "adam", 1e-3, 1, 10, 4,
                                "fixed", 3, [weights[0], weights[0], weights[2]], biases)
    with pytest.raises(ValueError, match="dtype must be"):
        cuda.bottleneck_network("float16", widths, True, "orthogonal", "adam", 1e-3, 1, 10, 4,
                                "fixed", 3, weights, biases)
    if cuda.device_count() > 0:
        return
    # No GPU: the first CUDA call fails with the call named, never a crash; the
    # network is left as it was.
    import cupy_standin  # host arrays with __cuda_array_interface__: never read here

    fake = cupy_standin.make_cupy()
    with pytest.raises(RuntimeError, match=r"CUDA error .* in cudaGetDevice"):
        net.fit(fake.ones((6, 5), dtype=np.float32), None, None, 0)
    with pytest.raises(RuntimeError, match=r"CUDA error .* in cudaGetDevice"):
        net.matrix(fake.empty((6, 5), dtype=np.float32, order="F"), 0)
    assert net.device == -1 and net.loss_history.shape == (0,)


# On a GPU.


def gpu_and_cpu_fits(cp, A_host, k, dtype="float32", **options):
    gpu = lc.Bottleneck(k, dtype=dtype, **options).fit(cp.asarray(A_host))
    cpu = lc.Bottleneck(k, dtype=dtype, **options).fit(A_host)
    return gpu, cpu


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_exact_mode_learns_the_cpu_map(cp, float_dtype):
    A_host = random_matrix((10, 8), np.float64, seed=30)
    gpu, cpu = gpu_and_cpu_fits(cp, A_host, 3, dtype=float_dtype.name, data="exact", epochs=2,
                                seed=0)
    W = cpu.matrix()
    scale = float(np.abs(W).max())
    # Same initial weights, same schedule, same steps: the maps agree to a float32
    # tolerance (the two BLAS round differently, a few thousand steps apart).
    assert_close(host(gpu.matrix()), W, np.float32, scale=scale, factor=50)
    np.testing.assert_allclose(gpu.loss_history_, cpu.loss_history_, rtol=1e-3)
    assert gpu._network.steps_taken == cpu._network.steps_taken == 2000
    # The scale divides by the initial map's norm, a product of the weights in the
    # network's dtype (cuBLAS against the CPU's BLAS): equal to that dtype's rounding.
    assert gpu._network.scale == pytest.approx(cpu._network.scale,
                                               rel=100 * np.finfo(float_dtype).eps)
    for got, want in zip(gpu._network.parameters()[0], cpu._network.parameters()[0]):
        assert_close(got, want, np.float32, scale=float(np.abs(want).max()), factor=50)
    assert_close(host(gpu.intercept_), cpu.intercept_, np.float32, scale=scale, factor=50)
    assert_close(host(gpu.singular_values_), cpu.singular_values_, np.float32, scale=scale,
                 factor=50)


@pytest.mark.parametrize("data", ["fixed", "stream"])
@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_sampled_modes_follow_the_cpu(cp, data, float_dtype):
    # The same vectors (Philox data stream) in the same order (the CPU's shuffle):
    # the loss histories stay close.
    A_host = random_matrix((9, 7), np.float64, seed=31)
    gpu, cpu = gpu_and_cpu_fits(cp, A_host, 3, dtype=float_dtype.name, data=data, epochs=3,
                                samples=500, batch_size=32, seed=1)
    assert gpu.loss_history_.shape == cpu.loss_history_.shape == (3,)
    np.testing.assert_allclose(gpu.loss_history_, cpu.loss_history_, rtol=1e-2)
    W = cpu.matrix()
    assert_close(host(gpu.matrix()), W, np.float32, scale=float(np.abs(W).max()), factor=100)


@pytest.mark.parametrize("matrix_seed", [0, 1, 2])
@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_exact_mode_reaches_the_svd_on_random_10x10(cp, matrix_seed):
    A_host = np.random.default_rng(matrix_seed).standard_normal((10, 10))
    s = np.linalg.svd(A_host, compute_uv=False)
    for k in [1, 2, 5, 9]:
        net = lc.Bottleneck(k, data="exact", seed=0).fit(cp.asarray(A_host))
        assert isinstance(net.rank_, int) and net.rank_ <= k
        W = host(net.matrix()).astype(np.float64)
        gap = np.linalg.norm(A_host - W, 2) / s[0] - s[k] / s[0]
        assert abs(gap) <= 1e-4, (k, gap)


@pytest.mark.parametrize("layers, bias", [(None, True), ((12, 6, 3, 6), True), ((3,), False)])
@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_outputs_are_cupy_arrays(cp, layers, bias):
    A_host = random_matrix((9, 12), np.float32, seed=32)
    A = cp.asarray(A_host)
    before = A.copy()
    net = lc.Bottleneck(3, layers=layers, bias=bias, epochs=2, samples=200, seed=1).fit(A)
    assert bool((A == before).all()), "A was modified"
    W = net.matrix()
    L, R = net.factors()
    assert isinstance(W, cp.ndarray) and W.shape == (9, 12) and W.dtype == np.float32
    assert isinstance(L, cp.ndarray) and L.shape == (9, 3)
    assert isinstance(R, cp.ndarray) and R.shape == (3, 12)
    assert_close(host(L @ R), host(W), np.float32, factor=10)
    assert isinstance(net.rank_, int) and net.rank_ <= 3
    history = net.loss_history_
    assert isinstance(history, np.ndarray) and history.dtype == np.float64
    assert history.shape == (2,)
    intercept = net.intercept_
    assert isinstance(intercept, cp.ndarray) and intercept.shape == (9,)
    if not bias:
        assert not bool(intercept.any())
    sigma = net.singular_values_
    assert isinstance(sigma, cp.ndarray) and sigma.shape == (3,)
    X_host = random_matrix((4, 12), np.float32, seed=33)
    X = cp.asarray(X_host)
    Y = net.predict(X)
    assert isinstance(Y, cp.ndarray) and Y.shape == (4, 9)
    assert_close(host(Y), X_host @ host(W).T + host(intercept), np.float32, factor=100)
    assert bool((X == cp.asarray(X_host)).all()), "X was modified"
    assert net.predict(cp.ones((0, 12), np.float32)).shape == (0, 9)
    # The same input in Fortran order trains the same network.
    fortran = lc.Bottleneck(3, layers=layers, bias=bias, epochs=2, samples=200,
                            seed=1).fit(cp.asfortranarray(A))
    assert_close(host(fortran.matrix()), host(W), np.float32, factor=10)


@pytest.mark.parametrize("data", ["fixed", "stream", "exact"])
@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_seed_gives_bit_identical_histories(cp, data):
    A = cp.asarray(random_matrix((10, 8), np.float32, seed=34))
    options = dict(data=data, epochs=2, samples=500, seed=123)
    first = lc.Bottleneck(3, **options).fit(A)
    second = lc.Bottleneck(3, **options).fit(A)
    assert np.array_equal(first.loss_history_, second.loss_history_)
    assert bool((first.matrix() == second.matrix()).all())
    assert np.array_equal(first.fit(A).loss_history_, second.loss_history_)


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_callbacks_stop_and_keep_the_completed_epochs(cp):
    A = cp.asarray(random_matrix((6, 6), np.float32, seed=35))
    seen = []

    def callback(epoch, loss):
        seen.append(epoch)
        # The callback may use the CUDA core itself (the fit holds no lock meanwhile).
        assert lc.relative_error(A, A * 0.5) == pytest.approx(0.5)
        if epoch == 3:
            return False
        return None

    net = lc.Bottleneck(2, epochs=10, samples=64, seed=0).fit(A, callback=callback)
    assert seen == [1, 2, 3]
    three = lc.Bottleneck(2, epochs=3, samples=64, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, three.loss_history_)
    assert bool((net.matrix() == three.matrix()).all())

    def failing(epoch, loss):
        if epoch == 2:
            raise RuntimeError("stop here")

    broken = lc.Bottleneck(2, epochs=5, samples=64, seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        broken.fit(A, callback=failing)
    two = lc.Bottleneck(2, epochs=2, samples=64, seed=0).fit(A)
    assert np.array_equal(broken.loss_history_, two.loss_history_)
    assert bool((broken.matrix() == two.matrix()).all())


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_ctrl_c_leaves_the_last_completed_epoch(cp):
    import _thread
    import threading

    A = cp.asarray(random_matrix((10, 10), np.float32, seed=36))
    # The handles and kernels are loaded first, and the interrupt is armed only once
    # the first epoch is complete: in a fresh process it cannot land in epoch 1.
    lc.Bottleneck(3, epochs=1, samples=64, seed=0).fit(A)
    timer = threading.Timer(0.3, _thread.interrupt_main)

    def arm(epoch, loss):
        if epoch == 1:
            timer.start()

    net = lc.Bottleneck(3, epochs=1_000_000, samples=2000, seed=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(A, callback=arm)
    finally:
        timer.cancel()
    completed = len(net.loss_history_)
    assert 1 <= completed < 1_000_000
    again = lc.Bottleneck(3, epochs=completed, samples=2000, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, again.loss_history_)
    assert bool((net.matrix() == again.matrix()).all())


_HANDLER_CALLS_THE_CORE = """
import signal, threading, _thread
import cupy as cp, numpy as np, lowrank_core as lc

A = cp.asarray(np.random.default_rng(0).standard_normal((10, 10)).astype(np.float32))
lc.Bottleneck(3, epochs=1, samples=64, seed=0).fit(A)
values = []

def handler(signum, frame):
    # Python code run by the poll of a fit in progress, on the same GPU.
    values.append(float(lc.singular_values(A)[0]))
    raise KeyboardInterrupt

signal.signal(signal.SIGINT, handler)
timer = threading.Timer(0.3, _thread.interrupt_main)
net = lc.Bottleneck(3, epochs=1_000_000, samples=2000, seed=0)
try:
    net.fit(A, callback=lambda epoch, loss: timer.start() if epoch == 1 else None)
except KeyboardInterrupt:
    pass
assert values and values[0] > 0, values
print("handler ran", len(net.loss_history_))
"""


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_signal_handler_may_call_the_cuda_core():
    # The poll that runs signal handlers holds no lock on the device's handles; if it
    # did, the handler's call would wait for it forever (hence a process of its own,
    # with a timeout).
    import subprocess

    done = subprocess.run([sys.executable, "-c", _HANDLER_CALLS_THE_CORE], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "handler ran" in done.stdout


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_work_is_ordered_on_the_callers_stream(cp):
    A_host = random_matrix((20, 16), np.float64, seed=37)
    want = lc.Bottleneck(4, data="exact", epochs=1, dtype="float64", seed=0).fit(A_host * 2.0)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        A = cp.asarray(A_host) * 2.0  # produced on `stream`
        net = lc.Bottleneck(4, data="exact", epochs=1, dtype="float64", seed=0).fit(A)
        W = net.matrix() * 1.0
        Y = net.predict(A[:, :16] * 1.0)
    stream.synchronize()
    del stream  # the network's parameters outlive the stream that trained them
    W_want = want.matrix()
    assert_close(host(W), W_want, np.float32, scale=float(np.abs(W_want).max()), factor=10)
    assert_close(host(Y), want.predict(A_host[:, :16] * 2.0), np.float32,
                 scale=float(np.abs(host(Y)).max()), factor=10)
    assert_close(host(net.matrix()), W_want, np.float32, scale=float(np.abs(W_want).max()),
                 factor=10)


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_bad_inputs_are_the_cpu_errors(cp):
    net = lc.Bottleneck(3, epochs=1, samples=10)
    with pytest.raises(ValueError, match="rank must be <= 2"):
        net.fit(cp.ones((2, 5)))
    for bad in (np.nan, np.inf, -np.inf):
        A = cp.ones((4, 4))
        A[1, 2] = bad
        with pytest.raises(ValueError, match="A contains NaN or Inf"):
            net.fit(A)
    with pytest.raises(ValueError, match="A must be 2-D"):
        net.fit(cp.ones(4))
    with pytest.raises(ValueError, match="A is empty"):
        net.fit(cp.ones((0, 4)))
    with pytest.raises(TypeError, match="complex"):
        net.fit(cp.ones((4, 4), complex))
    with pytest.raises(lc.NotFittedError):
        net.matrix()
    fitted = lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(cp.eye(4))
    with pytest.raises(TypeError, match="different devices"):
        fitted.predict(np.ones((3, 4)))
    with pytest.raises(ValueError, match="X must have 4 columns"):
        fitted.predict(cp.ones((3, 5)))
    with pytest.raises(ValueError, match="X must be 2-D"):
        fitted.predict(cp.ones(4))
    # Integer input becomes the network's dtype on the GPU.
    integer = lc.Bottleneck(2, epochs=1, samples=10, dtype="float64", seed=0).fit(
        cp.arange(30).reshape(6, 5))
    assert isinstance(integer.matrix(), cp.ndarray) and integer.matrix().dtype == np.float64


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_refuses_pickling_clearly(cp):
    import pickle

    A = cp.asarray(random_matrix((8, 6), np.float32, seed=3))
    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(A)
    with pytest.raises(TypeError, match="fitted on the GPU cannot be pickled"):
        pickle.dumps(net)
