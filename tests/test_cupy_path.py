"""The Python layer's CuPy path, on any machine: every public function on stand-in
CuPy arrays, through a recording fake of the CUDA core (see ``cupy_standin``).

These run without a GPU and without CuPy, so a defect of the CuPy path (an attribute
CuPy's arrays lack, a layout handed over wrongly, a stream or device mixed up, a
silent copy to the host) fails here rather than on a user's GPU. What the real CUDA
core computes is tested in test_gpu.py, on a GPU.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _checks

import cupy_standin
from helpers import assert_close, random_matrix


@pytest.fixture
def gpu(monkeypatch):
    """The stand-in ``cupy`` and the fake ``lowrank_core._cuda`` installed for one test:
    ``(cupy, fake_core)``."""
    import lowrank_core

    cupy = cupy_standin.make_cupy()
    fake = cupy_standin.FakeCuda(cupy)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupy.cuda", cupy.cuda)
    monkeypatch.setitem(sys.modules, "lowrank_core._cuda", fake)
    monkeypatch.setattr(lowrank_core, "_cuda", fake, raising=False)
    monkeypatch.delitem(sys.modules, "lowrank_core._cuda_api", raising=False)
    monkeypatch.delattr(lowrank_core, "_cuda_api", raising=False)
    yield cupy, fake
    # _cuda_api was imported against the stand-ins: forget it (monkeypatch then puts
    # back whatever was there before).
    sys.modules.pop("lowrank_core._cuda_api", None)
    vars(lowrank_core).pop("_cuda_api", None)


def on_device(cupy, host, layout="C", device=0):
    """``host`` copied to the stand-in GPU ``device``, C- or Fortran-ordered."""
    with cupy.cuda.Device(device):
        A = cupy.asarray(host)
        return cupy.asfortranarray(A) if layout == "F" else A


def misaligned(cupy, host):
    """A C-contiguous device array of ``host`` whose data starts one byte past an
    alignment boundary (as a view at an odd byte offset of a byte buffer)."""
    raw = cupy.empty(host.nbytes + host.itemsize, dtype=np.uint8)
    view = np.ndarray(host.shape, host.dtype, buffer=raw._host, offset=1)
    view[...] = host
    return type(raw)(view, 0, False)


def last(fake, name):
    calls = [c for c in fake.calls if c["name"] == name]
    assert calls, f"the CUDA core's {name} was not called"
    return calls[-1]


def assert_view(call, A, *, row_major, copied=False):
    """The fake core got A's own memory (or a copy) with the layout expected."""
    m, n = A.shape
    assert call["shape"] == (m, n)
    assert call["row_major"] is row_major
    assert call["ld"] == (n if row_major else m)
    assert (call["pointer"] != A.data.ptr) is copied


# --- the stand-in is CuPy's surface ----------------------------------------------------


def test_stand_in_arrays_have_only_cupys_flags(gpu):
    cupy, _ = gpu
    A = cupy.ones((3, 2))
    assert sorted(n for n in vars(A.flags) if not n.startswith("_")) == \
        cupy_standin.SURFACE["flags"]
    assert not hasattr(A.flags, "aligned") and not hasattr(A.flags, "writeable")
    assert _checks.is_cupy(A) and _checks.array_module(A) is cupy
    interface = A.__cuda_array_interface__
    assert interface["version"] == 3 and interface["data"] == (A.data.ptr, False)
    assert interface["stream"] == 1  # the legacy default stream
    with cupy.cuda.Stream() as stream:
        assert A.__cuda_array_interface__["stream"] == stream.ptr
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(A)


def test_stand_in_matches_cupys_own_classes():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    from cupy._core.flags import Flags

    surface = cupy_standin.SURFACE
    for name in surface["module"]:
        assert hasattr(cupy, name), f"cupy.{name}"
    for name in surface["cuda"]:
        assert hasattr(cupy.cuda, name), f"cupy.cuda.{name}"
    for name in surface["ndarray"]:
        assert hasattr(cupy.ndarray, name), f"cupy.ndarray.{name}"
    flags = Flags(True, False, True)
    assert sorted(n for n in dir(flags) if not n.startswith("_")) == surface["flags"]
    for cls, key in [(cupy.cuda.Device, "Device"), (cupy.cuda.Stream, "Stream"),
                     (cupy.cuda.MemoryPointer, "MemoryPointer")]:
        for name in surface[key]:
            assert hasattr(cls, name), f"{cls.__name__}.{name}"


def test_importing_lowrank_core_imports_neither_cupy_nor_torch():
    code = ("import sys, lowrank_core; "
            "print(sorted(m for m in ('cupy', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


# --- the SVD area ----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["C", "F"])
def test_svd_hands_over_either_layout_without_a_copy(gpu, layout, float_dtype):
    cupy, fake = gpu
    A_host = random_matrix((7, 5), float_dtype, seed=1)
    A = on_device(cupy, A_host, layout)
    got = lc.svd(A, 3)
    call = last(fake, "svd")
    assert call["dtype"] == float_dtype.name and call["k"] == 3
    assert_view(call["A"], A, row_major=layout == "C")
    assert call["device"] == 0 and call["stream"] == 0
    want = lc.svd(A_host, 3)
    for x, y in zip(got, want):
        assert isinstance(x, cupy.ndarray) and x.dtype == float_dtype and x.shape == y.shape
        assert_close(x.get(), y, float_dtype, factor=10)
    assert_close(got.to_dense().get(), want.to_dense(), float_dtype, factor=10)
    assert np.array_equal(A.get(), A_host), "A was modified"


def test_svd_copies_strided_and_misaligned_input_and_converts_dtypes(gpu):
    cupy, fake = gpu
    A_host = random_matrix((8, 6), np.float64, seed=2)
    A = on_device(cupy, A_host)
    strided = A[::2, 1:]
    assert not strided.flags.c_contiguous and not strided.flags.f_contiguous
    lc.svd(strided, 2)
    assert_view(last(fake, "svd")["A"], strided, row_major=True, copied=True)

    odd = misaligned(cupy, A_host)
    assert odd.data.ptr % 8 != 0 and odd.flags.c_contiguous
    got = lc.svd(odd, 2)  # the fake core refuses a misaligned pointer
    assert last(fake, "svd")["A"]["pointer"] % 8 == 0
    assert_close(got.S.get(), lc.svd(A_host, 2).S, np.float64)

    for dtype, computed in [(np.int32, "float64"), (np.bool_, "float64"),
                            (np.float16, "float32")]:
        lc.svd(on_device(cupy, random_matrix((4, 3), dtype, seed=3)), 1)
        assert last(fake, "svd")["dtype"] == computed


@pytest.mark.parametrize("layout", ["C", "F"])
def test_randomized_svd_hands_over_seed_and_sketch(gpu, layout, float_dtype):
    cupy, fake = gpu
    A_host = random_matrix((30, 20), float_dtype, seed=4)
    A = on_device(cupy, A_host, layout)
    for precision in ("auto", "fast", False, True):
        got = lc.randomized_svd(A, 4, oversamples=3, power_iters=2, seed=7,
                                mixed_precision=precision)
        call = last(fake, "randomized_svd")
        assert (call["k"], call["sketch_columns"], call["power_iters"], call["seed"]) == \
            (4, 7, 2, 7)
        # The one RandomizedSvdOptions, as _core binds it, with the CPU core's name.
        assert call["mixed_precision"] == {"auto": "auto", "fast": "fast", False: "off",
                                           True: "auto"}[precision]
        assert call["sketch"] is None
        assert_view(call["A"], A, row_major=layout == "C")
        want = lc.randomized_svd(A_host, 4, oversamples=3, power_iters=2, seed=7,
                                 mixed_precision=False)
        assert_close(got.to_dense().get(), want.to_dense(), float_dtype, factor=10)

    sketch_host = random_matrix((20, 7), float_dtype, seed=5)
    for sketch_layout in ("C", "F"):
        sketch = on_device(cupy, sketch_host, sketch_layout)
        got = lc.randomized_svd(A, 4, oversamples=3, power_iters=1, sketch=sketch)
        call = last(fake, "randomized_svd")
        assert_view(call["sketch"], sketch, row_major=sketch_layout == "C")
        want = lc.reference.randomized_svd(A_host, 4, oversamples=3, power_iters=1,
                                           sketch=sketch_host)
        assert_close(got.S.get(), want.S, float_dtype, factor=10)
    # A sketch of another dtype is converted on the device, to A's.
    lc.randomized_svd(A, 4, oversamples=3, sketch=on_device(cupy, sketch_host.astype(np.int64)))
    assert last(fake, "randomized_svd")["dtype"] == float_dtype.name


def test_randomized_svd_argument_errors(gpu):
    cupy, fake = gpu
    A = cupy.ones((6, 5))
    with pytest.raises(ValueError, match="sketch must have shape"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=cupy.ones((5, 3)))
    with pytest.raises(TypeError, match="different devices"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=np.ones((5, 2)))
    with pytest.raises(ValueError, match="different GPUs"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=on_device(cupy, np.ones((5, 2)),
                                                                  device=1))
    with pytest.raises(ValueError, match="mixed_precision"):
        lc.randomized_svd(A, 2, mixed_precision="half")
    bad = cupy.ones((5, 2))
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="sketch contains NaN or Inf"):
        lc.randomized_svd(A, 2, oversamples=0, sketch=bad)
    assert not any(c["name"] == "randomized_svd" and c["sketch"] is not None
                   and c["sketch"]["shape"] != (5, 2) for c in fake.calls)


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 3, 4, 6), (1, 1, 1), (0, 3, 3)], ids=str)
def test_singular_values_of_stacks(gpu, shape, float_dtype):
    cupy, fake = gpu
    A_host = random_matrix(shape, float_dtype, seed=6)
    A = on_device(cupy, A_host)
    got = lc.singular_values(A)
    call = last(fake, "singular_values")
    batch = int(np.prod(shape[:-2]))
    assert call["shape"] == (batch,) + shape[-2:] and call["pointer"] == A.data.ptr
    assert isinstance(got, cupy.ndarray) and got.shape == shape[:-2] + (min(shape[-2:]),)
    assert_close(got.get(), lc.singular_values(A_host), float_dtype, factor=10)


def test_singular_values_take_a_fortran_matrix_as_its_transpose(gpu):
    cupy, fake = gpu
    A_host = random_matrix((6, 4), np.float64, seed=7)
    A = on_device(cupy, A_host, "F")
    got = lc.singular_values(A)
    # The same memory, read as the C-ordered (1, 4, 6) transpose: no copy.
    assert last(fake, "singular_values")["pointer"] == A.data.ptr
    assert last(fake, "singular_values")["shape"] == (1, 4, 6)
    assert_close(got.get(), lc.singular_values(A_host), np.float64)
    # A stack that is neither: copied to C order.
    stack = on_device(cupy, random_matrix((3, 4, 5), np.float64, seed=8))[:, ::2]
    lc.singular_values(stack)
    assert last(fake, "singular_values")["shape"] == (3, 2, 5)
    assert last(fake, "singular_values")["pointer"] != stack.data.ptr


# --- the rank area ---------------------------------------------------------------------


def low_rank(shape, r, seed=0):
    rng = np.random.default_rng(seed)
    batch, (m, n) = shape[:-2], shape[-2:]
    return rng.standard_normal(batch + (m, r)) @ rng.standard_normal(batch + (r, n))


def test_rank_of_a_matrix_and_of_stacks(gpu):
    cupy, fake = gpu
    A_host = low_rank((8, 6), 3)
    got = lc.rank(on_device(cupy, A_host))
    assert isinstance(got, int) and got == 3
    call = last(fake, "matrix_rank")
    assert call["thresholds"] is None and not call["relative"] and not call["hermitian"]

    S_host = low_rank((2, 3, 7, 5), 2, seed=1)
    S = on_device(cupy, S_host)
    got = lc.rank(S)
    assert isinstance(got, cupy.ndarray) and got.dtype == np.int64 and got.shape == (2, 3)
    np.testing.assert_array_equal(got.get(), np.linalg.matrix_rank(S_host))
    assert last(fake, "matrix_rank")["shape"] == (6, 7, 5)

    # Thresholds: one float64 per matrix, on the device; a CuPy threshold is read on
    # the host first (a few numbers), then broadcast like NumPy's.
    tol = np.array([1e-3, 1e9, 1e-3])
    for given in (tol, on_device(cupy, tol)):
        got = lc.rank(S, tol=given)
        call = last(fake, "matrix_rank")
        np.testing.assert_array_equal(call["thresholds"], np.tile(tol, 2))
        assert call["relative"] is False
        np.testing.assert_array_equal(got.get(), np.linalg.matrix_rank(S_host, tol=tol))
    lc.rank(S, rtol=0.5)
    assert last(fake, "matrix_rank")["relative"] is True

    H_host = A_host[:6] + A_host[:6].T
    assert lc.rank(on_device(cupy, H_host), hermitian=True) == lc.rank(H_host, hermitian=True)
    assert last(fake, "matrix_rank")["hermitian"] is True


def test_rank_of_vectors_never_reaches_the_core(gpu):
    cupy, fake = gpu
    assert lc.rank(cupy.zeros(4)) == 0 and lc.rank(cupy.ones(4)) == 1
    bad = cupy.ones(3)
    bad[0] = np.nan
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        lc.rank(bad)
    assert fake.calls == []


@pytest.mark.parametrize("measure", ["erank", "stable_rank", "entropy_rank"])
def test_rank_measures(gpu, measure, float_dtype):
    cupy, fake = gpu
    A_host = random_matrix((6, 4), float_dtype, seed=9)
    got = getattr(lc, measure)(on_device(cupy, A_host, "F"))
    assert isinstance(got, float)
    assert got == pytest.approx(getattr(lc, measure)(A_host))
    call = last(fake, "rank_measure")
    assert call["measure"] == measure and call["dtype"] == float_dtype.name
    assert call["shape"] == (1, 4, 6)  # the Fortran matrix as its transpose
    stack_host = random_matrix((2, 3, 5, 4), float_dtype, seed=10)
    got = getattr(lc, measure)(on_device(cupy, stack_host))
    assert isinstance(got, cupy.ndarray) and got.dtype == np.float64 and got.shape == (2, 3)
    np.testing.assert_allclose(got.get(), getattr(lc, measure)(stack_host))


@pytest.mark.parametrize("ord", [2, "fro"])
def test_relative_error_layouts_and_dtypes(gpu, ord):
    cupy, fake = gpu
    A_host = random_matrix((9, 6), np.float64, seed=11)
    B_host = lc.svd(A_host, 2).to_dense()
    want = lc.relative_error(A_host, B_host, ord=ord)
    for layout_a, layout_b in [("C", "C"), ("C", "F"), ("F", "C"), ("F", "F")]:
        A, B = on_device(cupy, A_host, layout_a), on_device(cupy, B_host, layout_b)
        got = lc.relative_error(A, B, ord=ord)
        assert isinstance(got, float) and got == pytest.approx(want)
        call = last(fake, "relative_error")
        assert call["ord"] == ("fro" if ord == "fro" else "2")
        assert_view(call["A"], A, row_major=layout_a == "C")
        assert_view(call["B"], B, row_major=layout_b == "C")
    # float32 against float64: both in float64, on the device.
    lc.relative_error(on_device(cupy, A_host.astype(np.float32)), on_device(cupy, B_host),
                      ord=ord)
    assert last(fake, "relative_error")["dtype"] == "float64"


def test_relative_error_argument_errors(gpu):
    cupy, _ = gpu
    A = cupy.ones((4, 3))
    with pytest.raises(ValueError, match="B must have the shape of A"):
        lc.relative_error(A, cupy.ones((3, 4)))
    with pytest.raises(TypeError, match="different devices"):
        lc.relative_error(A, np.ones((4, 3)))
    with pytest.raises(ValueError, match="different GPUs"):
        lc.relative_error(A, on_device(cupy, np.ones((4, 3)), device=1))
    with pytest.raises(ValueError, match="ord must be"):
        lc.relative_error(A, A, ord=1)
    with pytest.raises(ValueError, match="B contains NaN or Inf"):
        lc.relative_error(A, A * np.nan)


# --- every routine: bad input, devices and streams ------------------------------------

ROUTINES = {
    "svd": (lambda A: lc.svd(A, 1), "svd"),
    "randomized_svd": (lambda A: lc.randomized_svd(A, 1, seed=0), "randomized_svd"),
    "singular_values": (lc.singular_values, "singular_values"),
    "rank": (lc.rank, "matrix_rank"),
    "erank": (lc.erank, "rank_measure"),
    "stable_rank": (lc.stable_rank, "rank_measure"),
    "entropy_rank": (lc.entropy_rank, "rank_measure"),
    "relative_error": (lambda A: lc.relative_error(A, A * 0.5), "relative_error"),
    "Bottleneck.fit": (lambda A: lc.Bottleneck(1, epochs=1, samples=8, seed=0).fit(A),
                       "network.fit"),
}


@pytest.mark.parametrize("name", list(ROUTINES))
def test_bad_inputs_are_the_cpu_errors(gpu, name):
    cupy, _ = gpu
    call, _ = ROUTINES[name]
    for bad in (np.nan, np.inf):
        A = cupy.ones((4, 3))
        A[2, 1] = bad
        with pytest.raises(ValueError, match="A contains NaN or Inf"):
            call(A)
    with pytest.raises(TypeError, match="A is complex"):
        call(cupy.ones((3, 3), dtype=np.complex128))
    if name not in ("rank",):  # rank takes any ndim (1-D and 0-D included)
        with pytest.raises(ValueError, match="A must"):
            call(cupy.ones(3))


@pytest.mark.parametrize("name", list(ROUTINES))
def test_work_goes_to_the_arrays_device_on_cupys_current_stream(gpu, name):
    cupy, fake = gpu
    call, core_name = ROUTINES[name]
    A_host = random_matrix((6, 5), np.float64, seed=12)
    with cupy.cuda.Device(1):
        A = cupy.asarray(A_host)
        with cupy.cuda.Stream() as stream:
            # The current device is 0 again while the call runs: the core must still be
            # told the array's device, and that device's current stream.
            with cupy.cuda.Device(0):
                out = call(A)
    recorded = last(fake, core_name)
    assert recorded["device"] == 1 and recorded["stream"] == stream.ptr != 0
    for leaf in out if isinstance(out, tuple) else (out,):
        if isinstance(leaf, cupy.ndarray):
            assert leaf.device.id == 1


# --- the bottleneck network ------------------------------------------------------------


@pytest.mark.parametrize("layout", ["C", "F"])
def test_bottleneck_on_the_gpu_path_is_the_cpu_training(gpu, layout):
    cupy, fake = gpu
    A_host = random_matrix((7, 6), np.float32, seed=13)
    options = dict(epochs=2, samples=64, seed=3)
    cpu = lc.Bottleneck(2, **options).fit(A_host)
    A = on_device(cupy, A_host, layout)
    net = lc.Bottleneck(2, **options).fit(A)
    assert_view(last(fake, "network.fit")["A"], A, row_major=layout == "C")
    assert np.array_equal(net.loss_history_, cpu.loss_history_)
    W = net.matrix()
    assert isinstance(W, cupy.ndarray) and W.shape == (7, 6) and W.dtype == np.float32
    assert np.array_equal(W.get(), cpu.matrix())
    L, R = net.factors()
    assert L.shape == (7, 2) and R.shape == (2, 6)
    assert np.array_equal(L.get(), cpu.factors()[0]) and np.array_equal(R.get(),
                                                                      cpu.factors()[1])
    assert np.array_equal(net.intercept_.get(), cpu.intercept_)
    sigma = net.singular_values_
    assert isinstance(sigma, cupy.ndarray) and np.array_equal(sigma.get(), cpu.singular_values_)
    assert isinstance(net.rank_, int) and net.rank_ == cpu.rank_
    X_host = random_matrix((5, 6), np.float32, seed=14)
    for X in (on_device(cupy, X_host), on_device(cupy, X_host, "F")):
        Y = net.predict(X)
        assert isinstance(Y, cupy.ndarray) and Y.shape == (5, 7)
        np.testing.assert_allclose(Y.get(), cpu.predict(X_host), rtol=1e-6)
        call = last(fake, "network.predict")
        assert call["shape"] == (5, 6)
        assert (call["pointer"] == X.data.ptr) is bool(X.flags.c_contiguous)
    assert net.predict(cupy.ones((0, 6), dtype=np.float32)).shape == (0, 7)


def test_bottleneck_gpu_refuses_the_stopping_rule_and_gauss_newton(gpu):
    # The CUDA core trains with gradient steps and a fixed budget: tol and
    # gauss_newton are refused before anything reaches it, and the defaults of
    # data="exact" there are Adam and `epochs` epochs.
    cupy, fake = gpu
    A = on_device(cupy, random_matrix((6, 5), np.float32, seed=15))
    with pytest.raises(ValueError, match="tol is not implemented on the GPU"):
        lc.Bottleneck(2, data="exact", tol=1e-6).fit(A)
    with pytest.raises(ValueError, match="'gauss_newton' is not implemented on the GPU"):
        lc.Bottleneck(2, data="exact", optimizer="gauss_newton").fit(A)
    net = lc.Bottleneck(2, data="exact", epochs=1, seed=0).fit(A)
    assert net.optimizer_ == "adam" and net.tol_ == 0 and not net.converged_
    assert len(net.loss_history_) == 1
    with pytest.raises(TypeError, match="fit_samples runs on the CPU core"):
        lc.Bottleneck(2, data="exact").fit_samples(A, A)


def test_bottleneck_predict_errors(gpu):
    cupy, _ = gpu
    net = lc.Bottleneck(2, epochs=1, samples=16, seed=0).fit(cupy.ones((5, 4)))
    with pytest.raises(TypeError, match="different devices"):
        net.predict(np.ones((3, 4)))
    with pytest.raises(ValueError, match="X must have 4 columns"):
        net.predict(cupy.ones((3, 5)))
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        net.predict(cupy.ones((3, 4)) * np.nan)
    with pytest.raises(ValueError, match="on GPU 1, the network on GPU 0"):
        net.predict(on_device(cupy, np.ones((3, 4)), device=1))
    cpu_net = lc.Bottleneck(2, epochs=1, samples=16, seed=0).fit(np.ones((5, 4)))
    with pytest.raises(TypeError, match="different devices"):
        cpu_net.predict(cupy.ones((3, 4)))


def test_bottleneck_device_is_where_the_parameters_are(gpu):
    cupy, fake = gpu
    from lowrank_core import _cuda_api

    A_host = random_matrix((5, 4), np.float64, seed=15)
    network = _cuda_api.bottleneck_network("float64", [4, 4, 2, 5], True, "he_normal", "adam",
                                           1e-3, 1, 16, 8, "fixed", 0)
    with pytest.raises(RuntimeError, match="not fitted"):
        network.matrix()
    network.fit(on_device(cupy, A_host, device=0))
    fitted = network.matrix().get()
    # A fit on GPU 1 that fails before the parameters move there: they are still on
    # GPU 0, and so is every later call.
    fake.fail_fit_before_allocation_on.add(1)
    with pytest.raises(MemoryError):
        network.fit(on_device(cupy, A_host, device=1))
    W = network.matrix()
    assert W.device.id == 0 and last(fake, "network.matrix")["device"] == 0
    assert np.array_equal(W.get(), fitted)

    # Through Bottleneck: a first fit that fails before any parameters reach a device
    # leaves the estimator unfitted (not pointing at a device without them).
    net = lc.Bottleneck(2, epochs=1, samples=16, seed=0)
    with pytest.raises(MemoryError):
        net.fit(on_device(cupy, A_host, device=1))
    with pytest.raises(lc.NotFittedError):
        net.matrix()
    net.fit(on_device(cupy, A_host, device=0))
    assert net.matrix().device.id == 0


def test_bottleneck_callback_errors_keep_the_completed_epochs(gpu):
    cupy, _ = gpu
    A = on_device(cupy, random_matrix((6, 5), np.float32, seed=16))

    def failing(epoch, loss):
        if epoch == 2:
            raise RuntimeError("stop here")

    net = lc.Bottleneck(2, epochs=5, samples=32, seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        net.fit(A, callback=failing)
    two = lc.Bottleneck(2, epochs=2, samples=32, seed=0).fit(A)
    assert np.array_equal(net.loss_history_, two.loss_history_)
    assert np.array_equal(net.matrix().get(), two.matrix().get())


def test_gaussian_sketch_on_the_current_device(gpu):
    cupy, fake = gpu
    from lowrank_core import _cuda_api

    with cupy.cuda.Device(1):
        got = _cuda_api.gaussian_sketch(5, 3, 11, "float32")
    assert got.device.id == 1 and got.dtype == np.float32 and got.flags.f_contiguous
    assert last(fake, "gaussian_sketch")["device"] == 1
    assert np.array_equal(got.get(), lc._core.gaussian_sketch(5, 3, 11, "float32"))
    with pytest.raises(ValueError, match="dtype must be"):
        _cuda_api.gaussian_sketch(5, 3, 11, "float16")
    with pytest.raises(ValueError, match="rows and cols"):
        _cuda_api.gaussian_sketch(-1, 3, 11)


def test_tolerance_mode_and_estimate_error_say_they_need_the_cpu(gpu):
    # The CUDA core has no tolerance mode yet: a clear error, never a silent copy.
    cupy, fake = gpu
    A = on_device(cupy, low_rank((8, 6), 3))
    with pytest.raises(TypeError, match="CPU core only.*NumPy array"):
        lc.randomized_svd(A, tol=0.1)
    U, S, Vh = lc.svd(low_rank((8, 6), 3), 2)
    with pytest.raises(TypeError, match="CPU core only.*NumPy array"):
        lc.estimate_error(A, (U, S, Vh))
    assert not fake.calls


def test_randomized_rank_of_a_cupy_array_takes_the_exact_gpu_path(gpu):
    cupy, fake = gpu
    A_host = low_rank((40, 30), 4)
    got = lc.rank(on_device(cupy, A_host), method="randomized")
    assert got == np.linalg.matrix_rank(A_host) == 4
    assert last(fake, "matrix_rank")["shape"] == (1, 40, 30)
