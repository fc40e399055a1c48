"""DLPack arrays in, the caller's kind out: torch tensors (on the CPU here) through
every public function, without a copy, and the rules of lowrank_core._interop
(float16/bfloat16 in float32, requires_grad detached, CUDA without CuPy refused)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _backend, _interop

torch = pytest.importorskip("torch", reason="torch is a test-only dependency ([test])")

CALLS = {
    "svd": lambda A: lc.svd(A, 3),
    "randomized_svd": lambda A: lc.randomized_svd(A, 3, seed=0),
    "singular_values": lc.singular_values,
    "rank": lc.rank,
    "erank": lc.erank,
    "stable_rank": lc.stable_rank,
    "entropy_rank": lc.entropy_rank,
    "relative_error": lambda A: lc.relative_error(A, A * 0.5),
}


def _matrix(dtype=torch.float64, shape=(30, 20), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(dtype)


@pytest.fixture
def pointers(monkeypatch):
    """The data pointers of the NumPy arrays that reach the compiled core."""
    seen = []

    def recording(*arrays):
        seen.extend(a.ctypes.data for a in arrays if isinstance(a, np.ndarray))
        return _backend._core

    for module in ("_svd", "_rank"):
        monkeypatch.setattr(f"lowrank_core.{module}.backend_for", recording)
    return seen


def _same_result(got, expected):
    """A torch result matches the NumPy call's: same structure, values, dtypes."""
    if isinstance(expected, tuple):
        assert type(got) is type(expected) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _same_result(g, e)
    elif isinstance(expected, np.ndarray):
        assert isinstance(got, torch.Tensor), type(got)
        assert got.device.type == "cpu"
        assert str(got.dtype).removeprefix("torch.") == expected.dtype.name
        np.testing.assert_array_equal(got.numpy(), expected)
    else:
        assert type(got) is type(expected), (type(got), type(expected))
        assert got == expected


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_cpu_tensors_go_to_the_core_without_a_copy_and_come_back_torch(
        name, dtype, pointers):
    A = _matrix(dtype)
    before = A.clone()
    got = CALLS[name](A)
    assert A.data_ptr() in pointers, "the core read a copy of the tensor"
    expected = CALLS[name](A.numpy())
    _same_result(got, expected)
    assert torch.equal(A, before)  # inputs are never modified


def test_scalars_stay_python_numbers_and_stacks_come_back_as_tensors():
    A = _matrix(shape=(4, 6, 5))
    assert isinstance(lc.rank(A[0]), int) and isinstance(lc.erank(A[0]), float)
    ranks = lc.rank(A)
    assert isinstance(ranks, torch.Tensor) and ranks.dtype == torch.int64
    assert ranks.tolist() == [5, 5, 5, 5]
    erank = lc.erank(A)
    assert isinstance(erank, torch.Tensor) and erank.shape == (4,)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_and_returned_in_float32(half):
    A = _matrix(half)
    U, S, Vh = lc.svd(A, 4)
    assert U.dtype == S.dtype == Vh.dtype == torch.float32
    expected = np.linalg.svd(A.float().numpy(), compute_uv=False)[:4]
    np.testing.assert_allclose(S.numpy(), expected, rtol=1e-5)
    assert lc.singular_values(A).dtype == torch.float32


def test_tensors_that_require_grad_are_read_through_their_data():
    A = _matrix().requires_grad_(True)
    U, S, Vh = lc.randomized_svd(A, 3, seed=1)
    assert not S.requires_grad and S.grad_fn is None
    np.testing.assert_array_equal(S.numpy(), lc.randomized_svd(A.detach().numpy(), 3,
                                                               seed=1).S)


def test_non_contiguous_and_transposed_tensors():
    A = _matrix(shape=(40, 30))
    for view in (A.T, A[::2, 1::3], A.T[3:, :]):
        np.testing.assert_allclose(lc.singular_values(view).numpy(),
                                   np.linalg.svd(view.numpy(), compute_uv=False),
                                   rtol=1e-12, atol=1e-12)
        U, S, Vh = lc.svd(view, 2)
        assert U.shape == (view.shape[0], 2) and Vh.shape == (2, view.shape[1])


def test_mixed_kinds_return_the_first_dlpack_arguments_kind():
    A = _matrix()
    assert isinstance(lc.relative_error(A.numpy(), A * 0.5), float)
    sketch = torch.ones((20, 4), dtype=torch.float64)
    result = lc.randomized_svd(A.numpy(), 2, oversamples=2, sketch=sketch)
    assert isinstance(result.U, torch.Tensor)


def test_bad_tensors_get_clear_errors_naming_the_argument():
    with pytest.raises(TypeError, match="A is complex"):
        lc.svd(torch.ones((3, 3), dtype=torch.complex128), 1)
    with pytest.raises(ValueError, match="A contains NaN or Inf"):
        lc.svd(torch.full((3, 3), float("nan")), 1)
    with pytest.raises(TypeError, match="sparse_coo.*to_dense"):
        lc.svd(torch.eye(3).to_sparse(), 1)
    with pytest.raises(ValueError, match="k must be <= 3"):
        lc.svd(torch.eye(3), 4)


class _Foreign:
    """A DLPack array of a library that is neither NumPy, CuPy nor torch, with an
    array-API namespace: the generic path."""

    def __init__(self, data, device=(1, 0)):
        self.data, self.device = data, device

    def __dlpack__(self, **kwargs):
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.device

    @property
    def dtype(self):
        return self.data.dtype

    def __array_namespace__(self, api_version=None):
        class Namespace:
            @staticmethod
            def from_dlpack(x):
                return _Foreign(np.from_dlpack(x))

        return Namespace


def test_any_dlpack_array_with_a_namespace_comes_back_in_that_namespace():
    A = np.random.default_rng(0).standard_normal((12, 9))
    result = lc.svd(_Foreign(A), 2)
    assert all(isinstance(part, _Foreign) for part in result)
    np.testing.assert_array_equal(result.S.data, lc.svd(A, 2).S)
    assert isinstance(lc.erank(_Foreign(A)), float)


def test_cuda_memory_without_cupy_is_a_type_error_saying_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError
    A = _Foreign(np.ones((3, 3)), device=(2, 0))
    with pytest.raises(TypeError, match=r"A is a CUDA array on GPU 0.*CuPy"):
        lc.svd(A, 1)


def test_other_devices_are_refused():
    with pytest.raises(TypeError, match="DLPack device type 8"):
        lc.rank(_Foreign(np.ones((3, 3)), device=(8, 0)))


def test_from_caller_is_a_view_and_wrap_is_zero_copy():
    A = _matrix()
    view = _interop.from_caller(A, "A")
    assert isinstance(view, np.ndarray) and view.ctypes.data == A.data_ptr()
    back = _interop.Caller(A).wrap(view)
    assert isinstance(back, torch.Tensor) and back.data_ptr() == A.data_ptr()


def test_importing_lowrank_core_and_compat_imports_no_optional_library():
    code = ("import sys, lowrank_core, lowrank_core.compat; "
            "print(sorted(m for m in ('torch', 'sklearn', 'cupy', 'jax') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["lowrank_core.compat.sklearn", "lowrank_core.compat.torch",
                                  "lowrank_core.compat.scipy",
                                  "lowrank_core.sklearn._decomposition"])
def test_docstring_examples_of_the_drop_ins(name):
    import doctest
    import importlib

    if name.endswith("_decomposition"):
        pytest.importorskip("sklearn")
    np.set_printoptions(legacy=False)
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_a_bottleneck_fitted_on_a_tensor_answers_in_tensors():
    import copy
    import pickle

    A = _matrix(torch.float32, shape=(12, 10))
    net = lc.Bottleneck(3, data="exact", epochs=2, seed=0).fit(A)
    reference = lc.Bottleneck(3, data="exact", epochs=2, seed=0).fit(A.numpy())
    L, R = net.factors()
    for got, expected in [(net.matrix(), reference.matrix()), (L, reference.factors()[0]),
                          (net.intercept_, reference.intercept_),
                          (net.singular_values_, reference.singular_values_),
                          (net.predict(A[:4, :]), reference.predict(A.numpy()[:4]))]:
        assert isinstance(got, torch.Tensor)
        np.testing.assert_array_equal(got.numpy(), expected)
    assert isinstance(net.rank_, int)
    # a NumPy batch for a network fitted on a tensor comes back as a tensor
    assert isinstance(net.predict(A.numpy()[:2]), torch.Tensor)
    assert isinstance(pickle.loads(pickle.dumps(net)).matrix(), torch.Tensor)
    assert isinstance(copy.deepcopy(net).matrix(), torch.Tensor)
    # a fit refused before training keeps the network and the kind it answers in
    with pytest.raises(TypeError, match="A is complex"):
        net.fit(torch.ones((4, 4), dtype=torch.complex64))
    assert isinstance(net.matrix(), torch.Tensor)
    # fitted again on NumPy, it answers in NumPy
    assert isinstance(net.fit(A.numpy()).matrix(), np.ndarray)


# --- CUDA tensors, through the stand-in CuPy and fake CUDA core (tests/cupy_standin.py) --

from test_cupy_path import gpu  # noqa: E402,F401  (the fixture, used by name)


@pytest.fixture
def cuda_torch(gpu, monkeypatch):  # noqa: F811
    """A stand-in torch whose CUDA tensors live on the stand-in GPU: (torch, cupy, fake)."""
    import cupy_standin

    cupy, fake = gpu
    standin = cupy_standin.make_torch_cuda(cupy)
    monkeypatch.setitem(sys.modules, "torch", standin)
    return standin, cupy, fake


def test_cuda_tensors_run_on_the_cuda_core_on_torchs_stream_without_a_copy(cuda_torch):
    import cupy_standin

    standin, cupy, fake = cuda_torch
    host = np.random.default_rng(0).standard_normal((30, 20))
    T = standin.tensor_on(host)
    U, S, Vh = lc.randomized_svd(T, 3, seed=0)
    assert all(isinstance(x, standin.Tensor) for x in (U, S, Vh))
    call = [c for c in fake.calls if c["name"] == "randomized_svd"][-1]
    assert call["stream"] == cupy_standin.TORCH_STREAM  # the core ran on torch's stream
    assert call["A"]["pointer"] == T.data_ptr()          # on the tensor's own memory
    # The tensor was asked for its data on that same stream (nothing to wait for), and
    # the results handed back to torch there too.
    assert set(standin.dlpack_streams) == {cupy_standin.TORCH_STREAM}
    assert set(cupy._state.dlpack_streams) == {cupy_standin.TORCH_STREAM}
    assert cupy.cuda.get_current_stream().ptr == 0  # CuPy's own stream is back
    expected = lc.randomized_svd(host, 3, seed=0, mixed_precision=False)
    np.testing.assert_allclose(S.array.get(), expected.S, rtol=1e-12)
    np.testing.assert_allclose(U.array.get(), expected.U, rtol=1e-10, atol=1e-12)


def test_every_public_function_takes_cuda_tensors(cuda_torch):
    standin, cupy, fake = cuda_torch
    host = np.random.default_rng(1).standard_normal((12, 9))
    T = standin.tensor_on(host)
    for name, call in CALLS.items():
        got = call(T)
        expected = call(host)
        if isinstance(expected, tuple):
            for g, e in zip(got, expected):
                assert isinstance(g, standin.Tensor), name
                np.testing.assert_allclose(g.array.get(), e, rtol=1e-9, atol=1e-12)
        elif isinstance(expected, np.ndarray):
            assert isinstance(got, standin.Tensor), name
            np.testing.assert_allclose(got.array.get(), expected, rtol=1e-9)
        else:
            assert type(got) is type(expected), name
            assert got == pytest.approx(expected, rel=1e-9), name
    tensors_on_gpu_1 = standin.tensor_on(host, device=1)
    assert lc.svd(tensors_on_gpu_1, 2).S.array._device == 1
    assert [c["device"] for c in fake.calls if c["name"] == "svd"][-1] == 1


def test_a_cuda_tensor_and_a_numpy_array_together_are_refused(cuda_torch):
    standin, _, _ = cuda_torch
    T = standin.tensor_on(np.ones((4, 4)))
    with pytest.raises(TypeError, match="different devices"):
        lc.relative_error(T, np.ones((4, 4)))


def test_the_public_functions_still_pickle_by_reference():
    import pickle

    for name in CALLS:
        function = getattr(lc, name)
        assert pickle.loads(pickle.dumps(function)) is function


def test_tolerance_results_and_pca_come_back_as_tensors_with_their_attributes():
    torch = pytest.importorskip("torch")
    A = torch.from_numpy(np.diag(1.0 / np.arange(1, 41)))
    r = lc.randomized_svd(A, tol=0.3, ord=2, seed=0)
    assert isinstance(r.U, torch.Tensor) and r.rank == 3 and r.tol_reached
    p = lc.pca(torch.from_numpy(np.random.default_rng(0).standard_normal((50, 8))), 2, seed=0)
    assert isinstance(p.components_, torch.Tensor) and p.n_samples_ == 50
    e = lc.estimate_error(A, (r.U, r.S, r.Vh), ord="fro", seed=0)
    assert isinstance(e, float) and e > 0
