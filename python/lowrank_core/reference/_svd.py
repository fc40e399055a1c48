"""SVD routines in plain NumPy: the readable ground truth for the core."""

from __future__ import annotations

import numpy as np

from .. import _checks
from .._results import ErrorEstimate, SVDResult, ToleranceSVDResult
from ._philox import gaussian_sketch, gaussian_stream

__all__ = ["estimate_error", "randomized_svd", "sign_convention", "singular_values", "svd"]

# HMT Lemma 4.1 with alpha = 10: ||E||_2 <= 10 sqrt(2/pi) max_i ||E w_i||, except with
# probability 10^-r for r Gaussian w_i.
PROBE_FACTOR = 10 * np.sqrt(2 / np.pi)
ERROR_PROBE_STREAM = 4  # the error probes' Philox stream (never the sketch's)
SPECTRAL_MARGIN = 0.95  # a spectral estimate is accepted this far below tol


def sign_convention(U, Vh):
    """Flip each triplet so the largest-magnitude entry of U's column is positive."""
    rows = np.argmax(np.abs(U), axis=0)  # first index on ties, as the core
    signs = np.where(U[rows, np.arange(U.shape[1])] < 0, -1, 1).astype(U.dtype)
    return U * signs, Vh * signs[:, None]


def _finite(A, name="A"):
    if not np.isfinite(A).all():
        raise ValueError(f"{name} contains NaN or Inf")


def svd(A, k):
    """Top-k SVD from ``numpy.linalg.svd``; see :func:`lowrank_core.svd`."""
    A = _checks.as_float_array(A, "A", ndim=2)
    k = _checks.check_k(k, A.shape)
    _finite(A)
    U, S, Vh = np.linalg.svd(A, full_matrices=False)
    U, Vh = sign_convention(U[:, :k], Vh[:k])
    return SVDResult(U, S[:k], Vh)


def randomized_svd(A, k=None, *, tol=None, ord="fro", oversamples=10, power_iters="auto",
                   seed=None, sketch=None, block_size=16, center=False, mean=None):
    """Halko–Martinsson–Tropp; see :func:`lowrank_core.randomized_svd`. Sparse and
    operator ``A`` and the centring by their products, as SciPy computes them."""
    if tol is not None:
        return _to_tolerance(A, k, tol, ord, power_iters, seed, sketch, block_size)
    if k is None:
        raise TypeError("randomized_svd needs k (a rank) or tol (a relative error); "
                        "got neither")
    from .._sparse import is_operator, is_sparse

    if is_sparse(A) or is_operator(A):
        from scipy.sparse.linalg import aslinearoperator

        dtype = np.dtype(np.float32 if np.dtype(A.dtype) == np.float32 else np.float64)
        op = aslinearoperator(A)
        matmat, rmatmat = op.matmat, op.rmatmat
        if is_sparse(A):
            _finite(np.asarray(A.tocsr().data), "A")
    else:
        A = _checks.as_float_array(A, "A", ndim=2)
        _finite(A)
        dtype = A.dtype
        matmat, rmatmat = (lambda X: A @ X), (lambda Y: A.T @ Y)
    shape = A.shape
    k = _checks.check_k(k, shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, shape)
    columns = _checks.sketch_columns(k, oversamples, shape)
    if center:
        mean = (rmatmat(np.ones((shape[0], 1), dtype=dtype))[:, 0] / shape[0]).astype(dtype)
    if mean is not None:  # A - 1 mean^T by its products
        mean = np.asarray(mean, dtype=dtype)
        plain_matmat, plain_rmatmat = matmat, rmatmat
        matmat = lambda X: plain_matmat(X) - np.outer(np.ones(shape[0], dtype), mean @ X)  # noqa: E731
        rmatmat = lambda Y: plain_rmatmat(Y) - np.outer(mean, Y.sum(axis=0))  # noqa: E731
    if sketch is None:
        omega = gaussian_sketch(shape[1], columns, _checks.check_seed(seed), dtype)
    else:
        omega = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=dtype)
        if omega.shape != (shape[1], columns):
            raise ValueError(f"sketch must have shape {(shape[1], columns)}, got {omega.shape}")
        _finite(omega, "sketch")
    Q, _ = np.linalg.qr(matmat(omega))  # 2. range sample, orthonormalised
    for _ in range(power_iters):  # 3. power iterations
        Z, _ = np.linalg.qr(rmatmat(Q))
        Q, _ = np.linalg.qr(matmat(Z))
    Ub, S, Vh = np.linalg.svd(rmatmat(Q).T, full_matrices=False)  # 4. small SVD of Q^T A
    U, Vh = sign_convention(Q @ Ub[:, :k], Vh[:k])  # 5. lift back
    return SVDResult(U, S[:k], Vh)


def _orth(Y):
    return np.linalg.qr(Y)[0]


def grow_block(A, Q, B, omega, power_iters, done=lambda bound: False):
    """One block of randQB_EI (Yu–Gu–Li 2018): Q, B grown by the block from ``omega``.

    Returns ``(Q, B, bound, stopped)``: ``bound`` is HMT's bound on ``||A - Q B||_2``
    from the probes ``(I - Q Q^T) A omega`` for the basis *before* the block; when
    ``done(bound)`` the basis is returned as it was.
    """
    Y = A @ omega - Q @ (B @ omega)  # the residual R = A - Q B on the probes
    # HMT Lemma 4.1 with alpha = 10^(16 / r): wrong with probability at most 1e-16.
    alpha = 10.0 ** (16.0 / omega.shape[1])
    bound = alpha * np.sqrt(2 / np.pi) * np.linalg.norm(Y, axis=0).max()
    if done(bound):
        return Q, B, bound, True
    for _ in range(power_iters):  # Y <- R R^T Y = (I - Q Q^T) A A^T Y for Y orthogonal to Q
        Y = _orth(Y - Q @ (Q.T @ Y))
        Y = A @ (A.T @ Y)
        Y = Y - Q @ (Q.T @ Y)
    for _ in range(2):  # against the basis, twice
        Y = _orth(Y - Q @ (Q.T @ Y))
    return np.hstack([Q, Y]), np.vstack([B, Y.T @ A]), bound, False


def _sketch_columns(A, seed, sketch):
    """Columns j, j + 1, ... of the test matrix: the Philox sketch's or a given one's."""
    n = A.shape[1]
    drawn = 0

    def draw(count):
        nonlocal drawn
        if sketch is not None:
            block = sketch[:, drawn:drawn + count]
        else:
            z = gaussian_stream(seed, drawn * n, count * n, 0)
            block = z.reshape(count, n).T.astype(A.dtype)
        drawn += count
        return block

    left = (lambda: sketch.shape[1] - drawn) if sketch is not None else (lambda: np.inf)
    return draw, left


def _to_tolerance(A, k, tol, ord, power_iters, seed, sketch, block_size):
    from .._svd import _check_ord, _check_tol

    A = _checks.as_float_array(A, "A", ndim=2)
    tol = _check_tol(tol)
    spectral = _check_ord(ord) == "2"
    m, n = A.shape
    cap = min(m, n) if k is None else _checks.check_k(k, A.shape)
    power_iters = 2 if power_iters == "auto" else _checks.check_int(power_iters, "power_iters",
                                                                    minimum=0)
    _finite(A)
    if sketch is not None:
        sketch = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=A.dtype)
        seed = 0 if seed is None else seed
    else:
        seed = _checks.check_seed(seed)
    draw, left = _sketch_columns(A, seed, sketch)
    Q, B = np.zeros((m, 0), A.dtype), np.zeros((0, n), A.dtype)
    norm_f2 = float(np.sum(A.astype(np.float64) ** 2))
    goal2 = tol**2 * norm_f2
    largest = 0.0  # the largest sigma_1(B_i): a lower bound on ||A||_2
    reference, captured_at, captured = norm_f2, 0.0, 0.0
    for _ in range(8):
        converged = False
        while Q.shape[1] < cap and left() > 0 and not converged:
            b = int(min(block_size, cap - Q.shape[1], left()))
            before = Q.shape[1]
            Q, B, _, stopped = grow_block(
                A, Q, B, draw(b), power_iters,
                lambda bound: spectral and before > 0 and bound <= tol * largest)
            if stopped:
                converged = True
                continue
            Bi = B[before:].astype(np.float64)
            captured += float(np.sum(Bi**2))
            top_i = np.linalg.norm(Bi, 2)
            largest = max(largest, top_i)
            if spectral:
                converged = before > 0 and top_i <= tol * largest
            else:
                converged = reference - (captured - captured_at) <= goal2
        if spectral:
            break
        reference = float(np.sum((A - Q @ B).astype(np.float64) ** 2))
        captured_at = captured
        if reference <= goal2 or Q.shape[1] >= cap or left() == 0:
            break
    Ub, S, Vh = np.linalg.svd(B, full_matrices=False)
    l = S.shape[0]
    values = np.append(S.astype(np.float64), 0.0)

    def result(r):
        U, V = sign_convention(Q @ Ub[:, :r], Vh[:r])
        return U, S[:r], V

    if not spectral:
        floor = max(reference - (captured - captured_at), 0.0)
        tail = np.append(np.cumsum((values[:l] ** 2)[::-1])[::-1], 0.0)
        ok = np.nonzero(floor + tail[1:] <= goal2)[0]
        r = int(ok[0]) + 1 if ok.size else l
        U, S_r, V = result(r)
        error = np.sqrt(floor + tail[r])
        return ToleranceSVDResult(U, S_r, V, error=error, error_bound=error,
                                  norm=np.sqrt(norm_f2), tol=tol, ord="fro",
                                  tol_reached=floor + tail[r] <= goal2, basis_columns=l)
    top = values[0]
    r = 1
    while r < l and values[r] > SPECTRAL_MARGIN * tol * top:
        r += 1
    while True:
        U, S_r, V = result(r)
        e = estimate_error(A, (U, S_r, V), 2, seed=seed)
        if e <= SPECTRAL_MARGIN * tol * top or r == l:
            break
        r += 1
    return ToleranceSVDResult(U, S_r, V, error=e, error_bound=e.bound, norm=top, tol=tol,
                              ord=2, tol_reached=e <= tol * top, basis_columns=l)


def estimate_error(A, approx, ord=2, *, seed=None, probes=10, power_steps=4):
    """Power steps on the residual; see :func:`lowrank_core.estimate_error`."""
    from .._svd import _check_ord, _factors

    A = _checks.as_float_array(A, "A", ndim=2)
    _finite(A)
    spectral = _check_ord(ord) == "2"
    U, S, Vh = _factors(approx, A)
    E = A - (U * S) @ Vh  # formed here: the reference may
    if not spectral:
        value = float(np.sqrt(np.sum(E.astype(np.float64) ** 2)))
        return ErrorEstimate(value, bound=value, ord="fro", probes=probes)
    seed = _checks.check_seed(seed)
    n = A.shape[1]
    r = min(probes, n)
    W = gaussian_stream(seed, 0, n * r, ERROR_PROBE_STREAM).reshape(r, n).T.astype(A.dtype)
    Y = E @ W
    bound = PROBE_FACTOR * float(np.linalg.norm(Y.astype(np.float64), axis=0).max())
    if power_steps == 0:
        Y = E @ _orth(W)
    for _ in range(power_steps):
        if not np.any(Y):
            break
        Y = E @ _orth(E.T @ Y)
    value = float(np.linalg.norm(Y.astype(np.float64), 2))
    return ErrorEstimate(value, bound=max(bound, value), ord=2, probes=probes)


def singular_values(A):
    """``numpy.linalg.svd(A, compute_uv=False)``; see :func:`lowrank_core.singular_values`."""
    A = _checks.as_float_array(A, "A", min_ndim=2)
    _finite(A)
    return np.linalg.svd(A, compute_uv=False)
