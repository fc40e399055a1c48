"""lowrank_core.compat.torch: svd_lowrank and pca_lowrank on torch tensors.

The tests marked "ported" follow PyTorch's test/test_linalg.py (test_svd_lowrank,
test_pca_lowrank; BSD-style licence), keeping their assertions and tolerances
(torch.testing's defaults for float64: rtol 1e-7, atol 1e-7). Their sparse and
TorchScript parts are left out: sparse tensors are refused here (see
test_sparse_tensors_are_refused) and the functions are not scriptable.
"""

from __future__ import annotations

import numpy as np
import pytest

from lowrank_core.compat.torch import pca_lowrank, svd_lowrank

torch = pytest.importorskip("torch", reason="torch is a test-only dependency ([test])")
assert_equal = torch.testing.assert_close

BATCHES = [(), (1,), (3,), (2, 3)]


def _random_matrix(rows, columns, batches, dtype=torch.double):
    """PyTorch's test matrix (torch.testing._internal.common_utils.random_matrix):
    random singular vectors, singular values evenly spaced in [1/(k+1), 1]."""
    A = torch.randn(batches + (rows, columns), dtype=dtype)
    u, _, vh = torch.linalg.svd(A, full_matrices=False)
    k = min(rows, columns)
    s = torch.linspace(1 / (k + 1), 1, k, dtype=dtype)
    return (u * s.unsqueeze(-2)) @ vh


def _lowrank(actual_rank, rows, columns, batches=(), dtype=torch.double):
    """PyTorch's random_lowrank_matrix: the product of two such matrices."""
    return (_random_matrix(rows, actual_rank, batches, dtype)
            @ _random_matrix(actual_rank, columns, batches, dtype))


@pytest.mark.parametrize("actual_rank, size, batches", [
    *[(r, s, b) for r, s in [(2, (17, 4)), (4, (17, 4)), (4, (17, 17)), (10, (100, 40))]
      for b in BATCHES],
    (7, (1000, 1000), ()),
])
@pytest.mark.parametrize("transposed", [False, True])
def test_svd_lowrank(actual_rank, size, batches, transposed):  # ported: test_svd_lowrank
    rows, columns = size[::-1] if transposed else size
    torch.manual_seed(0)
    a = _lowrank(actual_rank, rows, columns, batches)
    q = min(size)
    u, s, v = svd_lowrank(a, q=q)
    assert isinstance(u, torch.Tensor) and u.dtype == torch.double

    # (u, s, v) is an SVD of a
    A = u.matmul(s.diag_embed()).matmul(v.transpose(-2, -1))
    assert_equal(A, a)
    # the same singular values as torch.svd, and the shapes of its factors
    U, S, V = torch.svd(a)
    assert s.shape == S.shape and u.shape == U.shape and v.shape == V.shape
    assert_equal(s, S)
    # (u, U) and (v, V) span the same subspaces
    u, v = u[..., :actual_rank], v[..., :actual_rank]
    U, V = U[..., :actual_rank], V[..., :actual_rank]
    assert_equal(u.transpose(-2, -1).matmul(U).det().abs(), torch.ones(batches, dtype=a.dtype))
    assert_equal(v.transpose(-2, -1).matmul(V).det().abs(), torch.ones(batches, dtype=a.dtype))


@pytest.mark.parametrize("actual_rank, size, batches", [
    *[(r, s, b) for r, s in [(2, (17, 4)), (2, (100, 4)), (6, (100, 40))] for b in BATCHES],
    (12, (1000, 1000), ()),
])
@pytest.mark.parametrize("extra", [0, 2, 6])
@pytest.mark.parametrize("transposed", [False, True])
def test_pca_lowrank(actual_rank, size, batches, extra, transposed):  # ported: test_pca_lowrank
    guess_rank = actual_rank + extra
    if guess_rank > min(size):
        pytest.skip("guess_rank > min(m, n) is not a case of the original test")
    rows, columns = size[::-1] if transposed else size
    torch.manual_seed(0)
    a = _lowrank(actual_rank, rows, columns, batches)
    u, s, v = pca_lowrank(a, q=guess_rank)
    assert s.shape[-1] == guess_rank
    assert u.shape[-2:] == (rows, guess_rank)
    assert v.shape[-2:] == (columns, guess_rank)

    A1 = u.matmul(s.diag_embed()).matmul(v.transpose(-2, -1))
    ones_m1 = torch.ones(batches + (rows, 1), dtype=a.dtype)
    c = (a.sum(axis=-2) / rows).reshape(batches + (1, columns))
    A2 = a - ones_m1.matmul(c)
    assert_equal(A1, A2)
    detect_rank = (s.abs() > 1e-5).sum(axis=-1)
    assert_equal(actual_rank * torch.ones(batches, dtype=torch.int64), detect_rank)
    U, S, V = torch.svd(A2)
    assert_equal(s[..., :actual_rank], S[..., :actual_rank])


# --- beyond the port ---------------------------------------------------------------------


def test_as_accurate_as_torchs_at_its_defaults():
    torch.manual_seed(1)
    m, n = 300, 200
    U0, _ = torch.linalg.qr(torch.randn(m, n, dtype=torch.double))
    V0, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.double))
    sigma = 1.0 / torch.arange(1, n + 1, dtype=torch.double)
    A = (U0 * sigma) @ V0.T

    def error(u, s, v):
        return torch.linalg.matrix_norm(A - (u * s) @ v.T, ord=2).item()

    ours = [error(*svd_lowrank(A, q=10)) for _ in range(10)]
    theirs = [error(*torch.svd_lowrank(A, q=10)) for _ in range(10)]
    assert np.median(ours) <= 1.1 * np.median(theirs)
    assert min(ours) >= sigma[10].item() * (1 - 1e-12)  # never better than Eckart-Young


def test_mean_M_is_subtracted_with_broadcasting():
    torch.manual_seed(2)
    A = torch.randn(3, 40, 12, dtype=torch.double)
    M = A.mean(dim=-2, keepdim=True)  # (3, 1, 12) broadcast to A's shape
    u, s, v = svd_lowrank(A, q=12, M=M)
    assert_equal((u * s.unsqueeze(-2)) @ v.transpose(-2, -1), A - M)
    assert_equal(s, pca_lowrank(A, q=12)[1])


def test_torch_manual_seed_makes_calls_repeatable():
    A = torch.randn(60, 50, dtype=torch.double)
    torch.manual_seed(5)
    first = svd_lowrank(A, q=4, niter=0)
    torch.manual_seed(5)
    second = svd_lowrank(A, q=4, niter=0)
    assert torch.equal(first[0], second[0])
    assert not torch.equal(first[0], svd_lowrank(A, q=4, niter=0)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_lower_precisions_come_back_in_float32(dtype):
    A = _lowrank(3, 30, 20).to(dtype)
    u, s, v = svd_lowrank(A, q=5)
    assert u.dtype == s.dtype == v.dtype == torch.float32
    expected = torch.linalg.svdvals(A.float())[:3]
    assert_equal(s[:3], expected, rtol=1e-4, atol=1e-4 * expected[0].item())


def test_q_above_min_shape_and_q_zero_follow_torch():
    A = torch.randn(9, 4, dtype=torch.double)
    u, s, v = svd_lowrank(A, q=6)  # torch's basis has min(q, m, n) columns
    assert (u.shape, s.shape, v.shape) == tuple(x.shape for x in torch.svd_lowrank(A, q=6))
    u, s, v = pca_lowrank(A, q=0)
    assert u.shape == (9, 0) and s.shape == (0,) and v.shape == (4, 0)
    with pytest.raises(ValueError, match="q must be <= 4"):
        pca_lowrank(A, q=5)
    with pytest.raises(ValueError, match="niter must be >= 0"):
        svd_lowrank(A, niter=-1)


def test_requires_grad_inputs_are_computed_on_their_data():
    A = torch.randn(20, 10, dtype=torch.double, requires_grad=True)
    u, s, v = svd_lowrank(A, q=3)
    assert not s.requires_grad


def test_sparse_tensors_are_refused():
    with pytest.raises(TypeError, match="to_dense"):
        svd_lowrank(torch.eye(5).to_sparse(), q=2)


def test_numpy_in_numpy_out():
    A = np.random.default_rng(0).standard_normal((30, 8))
    u, s, v = svd_lowrank(A, q=8)
    assert isinstance(v, np.ndarray) and v.shape == (8, 8)
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=1e-12)
