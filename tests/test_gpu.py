"""What only the CUDA core has: its build and import, the dispatch of CuPy arrays
(and its errors without a GPU), devices, the caller's stream, out-of-memory, and
signals and pickling of a network on the GPU.

That CuPy arrays in give CuPy arrays out with the CPU core's answers is checked by
the behavioural tests themselves, run on NumPy and CuPy (the ``xp`` fixture,
tests/conftest.py). Tests marked ``gpu`` need CuPy and a CUDA GPU and skip with a
reason where ``lowrank_core.gpu_available()`` is false. The others run everywhere:
they check that a build with the CUDA core imports it (no GPU needed) and that CuPy
arrays without it are a clear error.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _backend, _build_config, _core
from lowrank_core.data import decaying_spectrum

from helpers import assert_close, random_matrix, run_python, to_host

GPU, WHY = _backend.gpu_status()
needs_gpu = pytest.mark.skipif(
    not GPU, reason=f"needs CuPy and a CUDA GPU (gpu_available() is False: {WHY})"
)


@pytest.fixture(scope="module")
def cp():
    import cupy

    return cupy


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
        np.testing.assert_allclose(to_host(got), want, rtol=1e-13 if dtype == "float64" else 2e-7,
                                   atol=1e-13 if dtype == "float64" else 1e-7)


@pytest.mark.gpu
@needs_gpu
def test_numpy_and_cupy_arrays_in_one_call_are_a_type_error(cp, float_dtype):
    # The checks that the behavioural tests (tests/test_randomized_svd.py,
    # tests/test_inputs.py, tests/test_bottleneck.py) make on one device, made across two.
    A = cp.asarray(random_matrix((60, 40), float_dtype, seed=5))
    with pytest.raises(TypeError, match="different devices"):
        lc.randomized_svd(A, 1, oversamples=0, sketch=np.ones((40, 1), float_dtype))
    with pytest.raises(TypeError, match="different devices"):
        lc.relative_error(cp.ones((5, 4)), np.ones((5, 4)))
    fitted = lc.Bottleneck(2, epochs=1, samples=10, seed=0).fit(cp.eye(4))
    with pytest.raises(TypeError, match="different devices"):
        fitted.predict(np.ones((3, 4)))


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
    assert_close(to_host(dense), cpu.to_dense() * 0.5, np.float64, scale=float(cpu.S[0]),
                 factor=100)
    assert_close(to_host(S), np.linalg.svd(A_host * 2.0, compute_uv=False), np.float64,
                 factor=10)
    assert r == np.linalg.matrix_rank(A_host)


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
    assert to_host(lc.svd(small, 2).S).tolist() == pytest.approx([3.0, 2.0])


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
    done = run_python(_HANDLER_CALLS_THE_CORE, timeout=120)
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
    assert_close(to_host(W), W_want, np.float32, scale=float(np.abs(W_want).max()), factor=10)
    assert_close(to_host(Y), want.predict(A_host[:, :16] * 2.0), np.float32,
                 scale=float(np.abs(to_host(Y)).max()), factor=10)
    assert_close(to_host(net.matrix()), W_want, np.float32, scale=float(np.abs(W_want).max()),
                 factor=10)


@pytest.mark.gpu
@needs_gpu
def test_gpu_bottleneck_refuses_pickling_clearly(cp):
    import pickle

    A = cp.asarray(random_matrix((8, 6), np.float32, seed=3))
    net = lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(A)
    with pytest.raises(TypeError, match="fitted on the GPU cannot be pickled"):
        pickle.dumps(net)
