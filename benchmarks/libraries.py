"""The contenders: one adapter per library and operation, each optional.

Every randomized SVD runs at matched settings: a sketch of ``l`` columns, ``q``
power iterations, top ``k`` kept. Adapters return ``(U, S, Vh)`` as NumPy arrays.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import numpy as np


DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def _version(module_name: str):
    """The installed version of the module's distribution, None if it does not import."""
    try:
        importlib.import_module(module_name)
        return importlib.metadata.version(DISTRIBUTIONS.get(module_name, module_name))
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return None


# ---- randomized SVD -------------------------------------------------------

def rsvd_lowrank_core(A, k, l, q, seed, sketch=None, mixed_precision="auto"):
    import lowrank_core as lc

    return tuple(lc.randomized_svd(A, k, oversamples=l - k, power_iters=q, seed=seed,
                                   sketch=sketch, mixed_precision=mixed_precision))


def rsvd_lowrank_core_fast(A, k, l, q, seed):
    """The opt-in looser path (float32-accurate subspace for float64 A), shown beside
    the default."""
    return rsvd_lowrank_core(A, k, l, q, seed, mixed_precision="fast")


def rsvd_numpy(A, k, l, q, seed):
    """Halko-Martinsson-Tropp in plain NumPy, QR after every product (HMT Alg. 4.4)."""
    omega = sketch_numpy(A.shape, l, A.dtype, seed)
    Q, _ = np.linalg.qr(A @ omega)
    for _ in range(q):
        Z, _ = np.linalg.qr(A.T @ Q)
        Q, _ = np.linalg.qr(A @ Z)
    Ub, S, Vh = np.linalg.svd(Q.T @ A, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k], Vh[:k]


def rsvd_torch(A, k, l, q, seed):
    import torch

    torch.manual_seed(seed)
    U, S, V = torch.svd_lowrank(torch.from_numpy(A), q=l, niter=q)
    return U[:, :k].numpy(), S[:k].numpy(), V[:, :k].T.numpy()


def rsvd_sklearn(A, k, l, q, seed):
    from sklearn.utils.extmath import randomized_svd

    return randomized_svd(A, k, n_oversamples=l - k, n_iter=q, random_state=seed)


def rsvd_fbpca(A, k, l, q, seed):
    import fbpca

    np.random.seed(seed)
    return fbpca.pca(A, k=k, raw=True, n_iter=q, l=l)


# The sketch each adapter above draws with `seed`, for tall or square A (m >= n; all
# but NumPy's transpose a wide A and so draw another shape). lowrank_core run with
# `sketch=` set to it computes the same subspace iteration, so the two errors differ
# by the algorithms' rounding and not by the draw (benchmarks/studies/seed_study.py
# --same-sketch). Each mirrors the library's own code.

def _tall(shape) -> int:
    m, n = shape
    if m < n:
        raise ValueError(f"the sketches are reproduced for m >= n only, got shape {shape}")
    return n


def sketch_numpy(shape, l, dtype, seed):
    """rsvd_numpy's (any shape: it never transposes)."""
    return np.random.default_rng(seed).standard_normal((shape[1], l)).astype(dtype)


def sketch_torch(shape, l, dtype, seed):
    """torch._lowrank.get_approximate_basis: torch.randn(n, l) after manual_seed(seed)."""
    import torch

    n = _tall(shape)
    torch.manual_seed(seed)
    return torch.randn(n, l, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype).numpy()


def sketch_sklearn(shape, l, dtype, seed):
    """sklearn's _randomized_range_finder: RandomState(seed).normal(size=(n, l)),
    cast to float32 for float32 input."""
    return np.random.RandomState(seed).normal(size=(_tall(shape), l)).astype(dtype)


def sketch_fbpca(shape, l, dtype, seed):
    """fbpca.pca (m >= n): uniform on [-1, 1] from NumPy's global state after
    np.random.seed(seed), in float64 (rounded here to the input's dtype)."""
    return np.random.RandomState(seed).uniform(-1.0, 1.0, size=(_tall(shape), l)).astype(dtype)


SKETCHES = {
    "numpy": sketch_numpy,
    "torch": sketch_torch,
    "sklearn": sketch_sklearn,
    "fbpca": sketch_fbpca,
}


RANDOMIZED = {
    "lowrank_core": (rsvd_lowrank_core, "lowrank_core"),
    "lowrank_core-fast": (rsvd_lowrank_core_fast, "lowrank_core"),
    "numpy": (rsvd_numpy, "numpy"),
    "torch": (rsvd_torch, "torch"),
    "sklearn": (rsvd_sklearn, "sklearn"),
    "fbpca": (rsvd_fbpca, "fbpca"),
}


# ---- exact SVD, singular values, rank ------------------------------------

def svd_lowrank_core(A, k):
    import lowrank_core as lc

    return tuple(lc.svd(A, k))


def svd_numpy(A, k):
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    return U[:, :k], S[:k], Vh[:k]


def svd_torch(A, k):
    import torch

    U, S, Vh = torch.linalg.svd(torch.from_numpy(A), full_matrices=False)
    return U[:, :k].numpy(), S[:k].numpy(), Vh[:k].numpy()


EXACT = {
    "lowrank_core": (svd_lowrank_core, "lowrank_core"),
    "numpy": (svd_numpy, "numpy"),
    "torch": (svd_torch, "torch"),
}


def rank_lowrank_core(A):
    import lowrank_core as lc

    return lc.rank(A)


def rank_numpy(A):
    return int(np.linalg.matrix_rank(A))


def rank_torch(A):
    import torch

    return int(torch.linalg.matrix_rank(torch.from_numpy(A)))


RANK = {
    "lowrank_core": (rank_lowrank_core, "lowrank_core"),
    "numpy": (rank_numpy, "numpy"),
    "torch": (rank_torch, "torch"),
}


def values_lowrank_core(A):
    import lowrank_core as lc

    return lc.singular_values(A)


def values_numpy(A):
    return np.linalg.svd(A, compute_uv=False)


def values_scipy(A):
    import scipy.linalg

    return scipy.linalg.svdvals(A)


SINGULAR_VALUES = {
    "lowrank_core": (values_lowrank_core, "lowrank_core"),
    "numpy": (values_numpy, "numpy"),
    "scipy": (values_scipy, "scipy"),
}

OPERATIONS = {
    "randomized_svd": RANDOMIZED,
    "svd": EXACT,
    "rank": RANK,
    "singular_values": SINGULAR_VALUES,
}


def available(library_module: str) -> str | None:
    """The library's version, or None when it is not installed."""
    return _version(library_module)
