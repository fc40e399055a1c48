"""The randomized SVD of a Dask array, with the core computing each block.

:func:`lowrank_core.randomized_svd` comes here for a ``dask.array.Array`` (it
checks the type's module without importing Dask). The algorithm is the in-memory
one for row-major A (``cpp/lowrank/svd/range_finder.cpp``) with the matrix held in
blocks: the same Philox sketch for the seed, the same one product ``A^T (A W)`` and
one orthonormalisation per power iteration (two products where the spectrum asks
for them, by the same test), and the same last pass that gives both ``Q`` and
``B^T = A^T Q`` by Cholesky-QR. What the in-memory core does on the whole of A is
here a Dask task per row of blocks (the core's fused product on its blocks,
``lowrank_core._core._blocks``), a tree reduction of the small ``n x l`` and
``l x l`` results, and the orthonormalisation and small SVD on the client. X is
read ``q + 1`` times where the in-memory path reads it ``q + 1`` times.

Dask and distributed are optional (the ``[dask]`` extra); this module imports
Dask only when a Dask array arrives.
"""

from __future__ import annotations

import math
import os

import numpy as np
import scipy.linalg

from . import _checks
from ._core import _blocks, _testing, gaussian_sketch
from ._results import SVDResult

__all__ = ["is_dask_array", "randomized_svd", "not_for_dask"]

# Partial results summed per reduction task: a tree of depth log_8(row blocks).
_FANIN = 8


def is_dask_array(A) -> bool:
    """True for a ``dask.array.Array`` (checked without importing Dask)."""
    return type(A).__module__.split(".")[0] == "dask" and hasattr(A, "chunks")


def not_for_dask(name: str, A):
    """The TypeError for the routines that need every singular value of ``A``."""
    return TypeError(
        f"{name} of a Dask array is not computed: it needs every singular value of A, "
        "which no pass-efficient method gives exactly. lowrank_core.randomized_svd(A, k) "
        "gives the top-k singular values of a Dask array (S, accurate to the stated "
        f"tolerance of the randomized SVD); for the exact {name}, compute A "
        f"({name}(A.compute())) where it fits in memory"
    )


# --- the tasks (run on the workers; pure functions of their arguments) -----------

def _working_block(block, declared, dtype, position, shape, exponent):
    """A block of X as the core reads it, after the checks Dask cannot make."""
    if not isinstance(block, np.ndarray):
        raise TypeError(
            f"X's chunk {position} is a {type(block).__module__}.{type(block).__name__}; "
            "the Dask path of randomized_svd reads NumPy chunks (X.map_blocks(np.asarray))"
        )
    if block.dtype != declared:
        raise TypeError(
            f"X's chunk {position} has dtype {block.dtype}, but X.dtype is {declared}: the "
            f"chunks disagree with the array; make them agree (X.astype({declared.name}) "
            "does not convert chunks that already lie about their dtype: fix how X is made)"
        )
    if block.shape != shape:
        raise ValueError(
            f"X's chunk {position} has shape {block.shape}, but X.chunks says {shape}; "
            "call X.compute_chunk_sizes() or rechunk X"
        )
    block = block.astype(dtype, copy=False)
    if exponent:
        block = np.ldexp(block, -exponent).astype(dtype, copy=False)  # exact
    return _readable(block)


def _readable(array):
    """``array`` as the core reads it: contiguous and aligned for its dtype (arrays
    that arrive from another process may lie at any byte offset)."""
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    if not _checks._aligned(array):
        array = array.copy(order="A")
    return array


def _largest(block) -> float:
    """max |entry| without a temporary the size of the block; NaN propagates."""
    if block.size == 0:
        return 0.0
    return float(max(block.max(), -block.min()))


def _row_pass(blocks, W, R, plan):
    """One row of blocks of X, one pass: Y = X_i W (times R where given), Z_i = X_i^T Y.

    ``blocks``: the row's chunks, left to right. ``W``: the (n x l) panel. ``R``:
    None, or an upper-triangular float64 factor that makes Y = X_i W R. Returns
    ``(Z_i, G_i, largest, Y)``: G_i = Y^T Y in float64, largest = max |X_i| when the
    plan asks for it (else 0), Y when the plan keeps it (else None).
    """
    declared, dtype, threads, row, shapes, offsets, exponent, check, keep = plan
    blocks = [_working_block(b, declared, dtype, (row, j), shapes[j], exponent)
              for j, b in enumerate(blocks)]
    W = _readable(np.asfortranarray(W))
    R = None if R is None else _readable(R)
    largest = max(_largest(b) for b in blocks) if check else 0.0
    if check and not math.isfinite(largest):
        largest = math.nan if math.isnan(largest) else math.inf
    if len(blocks) == 1 and R is None:
        Z, Y = _blocks.normal_product(blocks[0], W, threads)  # X_i read once
        Zs = [Z]
    else:
        Y = None
        for b, start, stop in zip(blocks, offsets[:-1], offsets[1:]):
            part = _blocks.product(b, _readable(np.asfortranarray(W[start:stop])), threads)
            with np.errstate(all="ignore"):  # (see _sum)
                Y = part if Y is None else Y + part
        if R is not None:
            Y = _times(Y, R, threads)
        Zs = [_blocks.transposed_product(b, Y, threads) for b in blocks]
    Z = Zs[0] if len(Zs) == 1 else np.concatenate(Zs, axis=0)
    G = _block_gram(Y, threads)
    return Z, G, largest, (Y if keep else None)


def _transposed_pass(blocks, Q, plan):
    """Z_i = X_i^T Q_i for the given rows of Q (the pass B^T = A^T Q)."""
    declared, dtype, threads, row, shapes, offsets, exponent = plan[:7]
    blocks = [_working_block(b, declared, dtype, (row, j), shapes[j], exponent)
              for j, b in enumerate(blocks)]
    Q = _readable(np.asfortranarray(Q))
    Zs = [_blocks.transposed_product(b, Q, threads) for b in blocks]
    return (Zs[0] if len(Zs) == 1 else np.concatenate(Zs, axis=0)), None, 0.0, None


def _sum(*parts):
    """Sum of (Z, G, largest, _) partial results; largest is the max (NaN wins)."""
    Z = parts[0][0].copy()
    G = None if parts[0][1] is None else parts[0][1].copy()
    largest = parts[0][2]
    for part in parts[1:]:
        # Where A's entries lie outside the safe range the first pass overflows; the
        # client then drops its sums and runs on scaled blocks (no warning meanwhile).
        with np.errstate(all="ignore"):
            Z += part[0]
            if G is not None:
                G += part[1]
        largest = math.nan if (math.isnan(largest) or math.isnan(part[2])) else max(
            largest, part[2])
    return Z, G, largest, None


def _as_part(G):
    return G, G, 0.0, None


def _select(result, index):
    return result[index]


def _times(Y, M, threads):
    """Y M (M upper-triangular float64) in float64, rounded to Y's type: the core's
    Cholesky-QR step (panel.hpp, times_upper)."""
    return _testing.panel_times_upper(_readable(np.asfortranarray(Y)), _readable(M), threads)


def _block_gram(Y, threads):
    """Y^T Y summed in float64 (panel.hpp, gram_upper): its upper triangle, the lower
    zero; the client mirrors it once the blocks' triangles are summed (_symmetric)."""
    return _testing.panel_gram(_readable(np.asfortranarray(Y)), threads)


def _symmetric(G):
    return np.triu(G) + np.triu(G, 1).T


def _lift(Q, Ub_t_k, signs):
    """U_i = Q_i Ub (the top k columns), with the sign convention's flips."""
    U = Q @ Ub_t_k.T
    return U * signs if signs is not None else U


def _column_peaks(U, start):
    """Per column: (|largest entry|, its value, its global row) of this block (first on ties)."""
    if U.shape[0] == 0:
        return np.full(U.shape[1], -1.0), np.zeros(U.shape[1]), np.full(U.shape[1], -1)
    rows = np.argmax(np.abs(U), axis=0)
    values = U[rows, np.arange(U.shape[1])]
    return np.abs(values).astype(np.float64), values.astype(np.float64), rows + start


def _peak_signs(*peaks):
    """The sign convention's flips: the largest-magnitude entry of each column
    positive; on ties, the first row (as the core and the reference)."""
    best_abs, best_val, best_row = peaks[0]
    best_abs, best_val, best_row = best_abs.copy(), best_val.copy(), best_row.copy()
    for a, v, r in peaks[1:]:
        better = (a > best_abs) | ((a == best_abs) & (r >= 0) & ((best_row < 0) | (r < best_row)))
        best_abs = np.where(better, a, best_abs)
        best_val = np.where(better, v, best_val)
        best_row = np.where(better, r, best_row)
    return np.where(best_val < 0, -1.0, 1.0)


# --- the client -------------------------------------------------------------------

def _cholesky_inverse_factor(G):
    """(R^-1, R) with R^T R = G, or None where the core's Cholesky-QR step refuses
    (orthonormalize.cpp, cholesky_inverse_factor): the same LAPACK calls and bound."""
    R, info = scipy.linalg.lapack.dpotrf(G, lower=0, clean=1)
    if info != 0:
        return None
    diagonal = np.abs(np.diag(R))
    limit = 0.1 / math.sqrt(np.finfo(np.float64).eps)
    if not (diagonal.min() > 0) or not np.isfinite(diagonal.max()) or not (
            diagonal.max() <= limit * diagonal.min()):
        return None
    inverse, info = scipy.linalg.lapack.dtrtri(R, lower=0)
    if info != 0:
        return None
    return np.asfortranarray(np.triu(inverse)), R


def _panel_spread(G, k):
    """(sigma_1 / sigma_k)^2 of A from the Gram matrix of Y = A W (range_finder.cpp,
    panel_spread with power 1), +inf when it cannot tell."""
    eigenvalues = np.linalg.eigvalsh(G)  # ascending
    largest, kth = eigenvalues[-1], eigenvalues[len(eigenvalues) - k]
    if not (kth > 0) or not math.isfinite(largest):
        return math.inf
    return float(largest / kth)


def _one_product_suffices(dtype, spread):
    return float(np.finfo(dtype).eps) * spread <= 4e-3


def _one_cholesky_step_suffices(dtype, cond):
    return dtype == np.float32 and cond <= 3e3


def _safe_exponent(largest, dtype):
    """The power of two that brings A into LAPACK's safe range (lapack.hpp,
    outside_safe_range), or 0 when it is in it."""
    finfo = np.finfo(dtype)
    safe_small = math.sqrt(float(finfo.tiny)) / float(finfo.eps)
    if largest > 0 and (largest < safe_small or largest > 1 / safe_small):
        return int(np.frexp(largest)[1]) - 1  # ilogb
    return 0


def _thread_share():
    """Core threads per block task: the machine's cores over the tasks that run at
    once on it, as the scheduler in use runs them (at least 1). One number for all
    tasks, fixed on the client, so a task's bits do not depend on where it runs."""
    import dask

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is not None and type(client).__name__ == "Client":
        per_host = {}
        for address, worker in client.scheduler_info(n_workers=-1)["workers"].items():
            host = worker.get("host") or address.rsplit(":", 1)[0]
            per_host[host] = per_host.get(host, 0) + int(worker.get("nthreads", 1))
        running = max(per_host.values(), default=1)
    elif scheduler is dask.local.get_sync:
        running = 1
    else:
        running = int(dask.config.get("num_workers", None) or cores)
    return max(1, cores // max(1, running))


class _Driver:
    """Builds and computes the passes over X, counting them."""

    def __init__(self, X, dtype, exponent, threads):
        import dask

        self.dask = dask
        self.rows = X.to_delayed()  # (row blocks, column blocks) of Delayed
        self.row_chunks, self.col_chunks = X.chunks
        self.row_offsets = np.concatenate([[0], np.cumsum(self.row_chunks)]).astype(int)
        self.col_offsets = tuple(int(c) for c in np.concatenate([[0], np.cumsum(self.col_chunks)]))
        self.declared = X.dtype
        self.dtype = dtype
        self.exponent = exponent
        self.threads = threads
        self.passes = 0
        self.name = X.name

    def _plan(self, i, check=False, keep=False):
        shapes = tuple((int(self.row_chunks[i]), int(c)) for c in self.col_chunks)
        return (self.declared, self.dtype, self.threads, i, shapes, self.col_offsets,
                self.exponent, check, keep)

    def _reduce(self, parts):
        delayed = self.dask.delayed
        while len(parts) > 1:
            parts = [delayed(_sum, pure=True)(*parts[i:i + _FANIN])
                     for i in range(0, len(parts), _FANIN)]
        return parts[0]

    def row_parts(self, W, R=None, *, check=False, keep=False):
        delayed = self.dask.delayed
        Wd = delayed(np.asfortranarray(W), pure=True)
        Rd = None if R is None else delayed(R, pure=True)
        return [delayed(_row_pass, pure=True)(list(self.rows[i]), Wd, Rd,
                                              self._plan(i, check, keep))
                for i in range(len(self.row_chunks))]

    def normal_pass(self, W, R=None, *, check=False):
        """Z = sum_i X_i^T (X_i W R), G = (X W R)^T (X W R), max |X|: one pass."""
        self.passes += 1
        (Z, G, largest, _), = self.dask.compute(self._reduce(self.row_parts(W, R, check=check)))
        return Z, _symmetric(G), largest

    def kept_pass(self, W, *, check=False):
        """As normal_pass, keeping Y = X W in the workers' memory (a Dask array chunked
        like X's rows, persisted): one pass."""
        import dask.array as da

        self.passes += 1
        delayed = self.dask.delayed
        parts = self.row_parts(W, check=check, keep=True)
        l = W.shape[1]
        Y = da.concatenate([
            da.from_delayed(delayed(_select, pure=True)(p, 3), (int(m), l), dtype=self.dtype)
            for p, m in zip(parts, self.row_chunks)], axis=0)
        total = self._reduce(parts)
        Y, total = self.dask.persist(Y, total)
        (Z, G, largest, _), = self.dask.compute(total)
        return Z, _symmetric(G), largest, Y

    def transposed_pass(self, Q):
        """B^T = X^T Q for Q a Dask array chunked like X's rows: one pass."""
        self.passes += 1
        delayed = self.dask.delayed
        Qrows = Q.rechunk((self.row_chunks, Q.shape[1])).to_delayed()[:, 0]
        parts = [delayed(_transposed_pass, pure=True)(list(self.rows[i]), Qrows[i],
                                                     self._plan(i))
                 for i in range(len(self.row_chunks))]
        (Z, _, _, _), = self.dask.compute(self._reduce(parts))
        return Z

    # Passes over Y (in memory), not over X.
    def times(self, Y, M):
        return Y.map_blocks(_times, M, self.threads, dtype=self.dtype)

    def gram(self, Y):
        delayed = self.dask.delayed
        grams = [delayed(_block_gram, pure=True)(b, self.threads)
                 for b in Y.to_delayed()[:, 0]]
        parts = [delayed(_as_part, pure=True)(g) for g in grams]
        (G, _, _, _), = self.dask.compute(self._reduce(parts))
        return _symmetric(G)


def _orthonormal_rows(driver, Y, G=None):
    """An orthonormal basis of the distributed Y's columns (orthonormalize(Y, final)):
    Cholesky-QR2 from the reduced Gram matrices; Householder QR of the blocks (Dask's
    TSQR) where a Cholesky step refuses."""
    import dask.array as da

    for _ in range(2):
        factor = _cholesky_inverse_factor(driver.gram(Y) if G is None else G)
        G = None
        if factor is None:
            Q, _ = da.linalg.tsqr(Y.rechunk({1: -1}))
            return driver.dask.persist(Q.astype(driver.dtype))[0]
        Y = driver.dask.persist(driver.times(Y, factor[0]))[0]
    return Y


def _range_and_product(driver, W, k, power_iters, m):
    """Steps 2-3 as range_finder does them for row-major A: Q (Dask, m x l) and
    Bt = A^T Q (n x l). Returns None when A's largest entry turns out to lie outside
    the safe range; its value is then in driver.outside."""
    dtype = driver.dtype
    l = W.shape[1]
    checked = False

    def check(largest):
        if math.isnan(largest) or math.isinf(largest):
            raise ValueError("X contains NaN or Inf")
        exponent = _safe_exponent(largest, dtype)
        if exponent and driver.exponent == 0:
            driver.outside = exponent
            return False
        return True

    spread = math.nan
    for _ in range(power_iters):
        if math.isnan(spread):
            Z, G, largest = driver.normal_pass(W, check=not checked)
            if not checked:
                checked = True
                if not check(largest):
                    return None
            spread = _panel_spread(G, k)
            if not _one_product_suffices(dtype, spread):
                factor = _cholesky_inverse_factor(G)
                if factor is not None:  # else A^T A W: the same span (Y rank-deficient)
                    Z, _, _ = driver.normal_pass(W, factor[0])
        elif _one_product_suffices(dtype, spread):
            Z, _, _ = driver.normal_pass(W)
        else:
            # Two products: Y = A W orthonormalised, then A^T Y. The Gram matrix of Y
            # takes a pass of its own, as the in-memory path's Y = A W does.
            _, G, _ = driver.normal_pass(W)
            factor = _cholesky_inverse_factor(G)
            Z, _, _ = driver.normal_pass(W, None if factor is None else factor[0])
        W = _blocks.orthonormalize(_readable(np.asfortranarray(Z)), False)

    if m >= 4 * l:
        # Q = orth(Y) and Bt = A^T Q from the one pass Y = A W, Z = A^T Y
        # (range_finder.cpp, orthonormalize_with_product), else a pass for A^T Q.
        Z, G, largest, Y = driver.kept_pass(W, check=not checked)
        if not checked and not check(largest):
            return None
        got = _with_product(driver, Y, Z, G, k)
        if got is not None:
            return got
        Q = _orthonormal_rows(driver, Y)
        return Q, driver.transposed_pass(Q)
    # Too few rows for Cholesky-QR: Y (m x l, m < 4 l) is small; on the client.
    import dask.array as da

    _, _, largest, Y = driver.kept_pass(W, check=not checked)
    if not checked and not check(largest):
        return None
    Q = _blocks.orthonormalize(_readable(np.asfortranarray(Y.compute())), True)
    Q = da.from_array(Q, chunks=(driver.row_chunks, l))
    return Q, driver.transposed_pass(Q)


def _with_product(driver, Y, Z, G, k):
    """orthonormalize_with_product (range_finder.cpp) on the distributed Y: Q = Y R^-1
    and Bt = Z R^-1 by Cholesky-QR (two steps where one does not suffice), when
    eps (sigma_1 / sigma_l)(sigma_1 / sigma_{k+1}) <= 1; None otherwise."""
    dtype = driver.dtype
    l = G.shape[0]
    factor = _cholesky_inverse_factor(G)
    if l == 0 or factor is None:
        return None
    r1 = factor[0]
    s = np.linalg.svd(r1, compute_uv=False)  # of R^-1, descending
    first, last = 1 / s[-1], 1 / s[0]
    following = 1 / s[l - 1 - min(k, l - 1)]
    if not (float(np.finfo(dtype).eps) * (first / last) * (first / following) <= 1.0):
        return None
    if _one_cholesky_step_suffices(dtype, first / last):
        Q = driver.dask.persist(driver.times(Y, r1))[0]
        return Q, _times(Z, r1, 1)
    Q1 = driver.dask.persist(driver.times(Y, r1))[0]
    second = _cholesky_inverse_factor(driver.gram(Q1))
    if second is None:
        return None
    r2 = second[0]
    Q = driver.dask.persist(driver.times(Q1, r2))[0]
    both = np.asfortranarray(np.triu(r1 @ r2))  # trmm: R1^-1 R2^-1, upper triangular
    return Q, _times(Z, both, 1)


def _squares(block) -> float:
    block = np.asarray(block, dtype=np.float64)
    return float(np.einsum("ij,ij->", block, block))


def frobenius_squared(X) -> float:
    """||X||_F^2 in float64: one more pass over X, for the tolerance mode."""
    import dask

    delayed = dask.delayed
    parts = [delayed(_squares, pure=True)(b) for b in X.to_delayed().ravel()]
    total, = dask.compute(delayed(sum)(parts))
    return float(total)


def _check_array(X):
    import dask.array as da

    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim}-D with shape {X.shape}")
    if any(isinstance(c, float) and math.isnan(c) for axis in X.chunks for c in axis):
        raise ValueError(
            "X has unknown chunk sizes (NaN in X.chunks, e.g. after boolean indexing); "
            "call X.compute_chunk_sizes() first, or give the chunk sizes where X is made")
    if _checks.is_cupy(X._meta):
        raise TypeError(
            "X is a Dask array of CuPy chunks; the Dask path of randomized_svd runs the "
            "CPU core on NumPy chunks only (X.map_blocks(cupy.asnumpy) moves them, or "
            "compute X and pass the CuPy array to run the CUDA core)")
    kind = X.dtype.kind
    if kind == "c":
        raise TypeError(f"X is complex ({X.dtype}); complex input is not supported")
    if kind in "biu":
        return np.dtype(np.float64)
    if kind == "f" and X.dtype.itemsize <= 4:
        return np.dtype(np.float32)
    if kind == "f" and X.dtype.itemsize == 8:
        return np.dtype(np.float64)
    raise TypeError(f"X has dtype {X.dtype}; expected a real floating, integer or bool array")


def randomized_svd(X, k, *, oversamples=10, power_iters="auto", seed=None, sketch=None,
                   mixed_precision="auto", compute=False):
    """:func:`lowrank_core.randomized_svd` of a Dask array (see its docstring).

    Returns ``SVDResult(U, S, Vh)``: ``U`` a Dask array (m, k) chunked like X's
    rows (its blocks computed from the range basis kept in memory, not from X),
    ``S`` and ``Vh`` NumPy arrays; with ``compute=True``, ``U`` computed too. The
    computation runs in X's precision (as ``mixed_precision=False``); the argument
    is checked and otherwise unused. Each power iteration reads X once (twice where
    the spectrum asks for HMT's two products, by the in-memory path's rule), and the
    range basis Q with ``B^T = X^T Q`` one more time: ``q + 1`` passes.
    """
    dtype = _check_array(X)
    shape = tuple(int(s) for s in X.shape)
    k = _checks.check_k(k, shape)
    oversamples = _checks.check_int(oversamples, "oversamples", minimum=0)
    power_iters = _checks.resolve_power_iters(power_iters, k, shape)
    l = _checks.sketch_columns(k, oversamples, shape)
    _checks.check_mixed_precision(mixed_precision)
    if not isinstance(compute, (bool, np.bool_)):
        raise TypeError(f"compute must be True or False, got {type(compute).__name__}")
    m, n = shape
    if sketch is None:
        W = gaussian_sketch(n, l, _checks.check_seed(seed), dtype.name)
    else:
        if is_dask_array(sketch):
            sketch = sketch.compute()
        W = _checks.as_float_array(sketch, "sketch", ndim=2, dtype=dtype)
        if W.shape != (n, l):
            raise ValueError(
                f"sketch must have shape (n, min(k + oversamples, min(m, n))) = {(n, l)}, "
                f"got {W.shape}")
        largest = float(np.abs(W).max()) if W.size else 0.0
        if not math.isfinite(largest):
            raise ValueError("sketch contains NaN or Inf")
        if largest > 0:  # only its span matters: entries of order 1, as the Gaussian's
            W = np.ldexp(W, -(int(np.frexp(largest)[1]) - 1)).astype(dtype)
        W = np.asfortranarray(W)

    threads = _thread_share()
    driver = _Driver(X, dtype, 0, threads)
    driver.outside = 0
    got = _range_and_product(driver, W, k, power_iters, m)
    if got is None:
        # ||A||^2 would overflow or underflow: run on blocks scaled by a power of
        # two (exact), and scale the singular values back (as the in-memory core).
        exponent = driver.outside
        passes = driver.passes
        driver = _Driver(X, dtype, exponent, threads)
        driver.passes = passes
        got = _range_and_product(driver, W, k, power_iters, m)
    else:
        exponent = 0
    Q, Bt = got
    s, V, ub_t = _blocks.small_svd(_readable(np.asfortranarray(Bt)))
    S = np.ldexp(s[:k], exponent).astype(dtype) if exponent else s[:k].copy()
    Vh = np.ascontiguousarray(V[:, :k].T)
    ub_k = np.ascontiguousarray(ub_t[:k])

    # The sign convention over the blocks of U = Q Ub: a pass over Q, not over X.
    import dask

    delayed = dask.delayed
    starts = np.concatenate([[0], np.cumsum(Q.chunks[0])[:-1]]).astype(int)
    peaks = [delayed(_column_peaks, pure=True)(delayed(_lift, pure=True)(b, ub_k, None), int(r))
             for b, r in zip(Q.to_delayed()[:, 0], starts)]
    signs, = dask.compute(delayed(_peak_signs, pure=True)(*peaks))
    U = Q.map_blocks(_lift, ub_k, signs.astype(dtype), dtype=dtype,
                     chunks=(Q.chunks[0], (k,)))
    Vh = Vh * signs.astype(dtype)[:, None]
    if compute:
        U = U.compute()
    return SVDResult(U, S, Vh)

