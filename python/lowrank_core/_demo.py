"""``python -m lowrank_core demo``: approximate a built-in image at a few ranks."""

from __future__ import annotations

import time

import numpy as np

import lowrank_core as lc

from .data import test_image

DEFAULT_RANKS = (1, 5, 10, 20, 50)


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


# The bottleneck network in the demo: exact gradients (no sampling) for one epoch of
# 1000 steps, so the whole demo stays a few seconds; with the default 10 epochs it
# comes closer to the optimum (see lowrank_core.Bottleneck).
BOTTLENECK_EPOCHS = 1


def _methods(seed: int):
    """(name, function A, k -> rank-k approximation as a dense matrix)."""
    yield "svd", lambda A, k: lc.svd(A, k).to_dense()
    yield "randomized_svd", lambda A, k: lc.randomized_svd(A, k, seed=seed).to_dense()
    yield "bottleneck", lambda A, k: lc.Bottleneck(
        k, data="exact", epochs=BOTTLENECK_EPOCHS, seed=seed).fit(A).matrix()


def run(size: int = 256, ranks=DEFAULT_RANKS, seed: int = 0, out=print) -> list[dict]:
    """Print (and return) each method's error beside the optimum at each rank."""
    A = test_image(size)
    sigma = lc.singular_values(A)
    out(f"lowrank_core demo: the built-in {size} x {size} test image "
        "(lowrank_core.data.test_image)")
    out(f"  rank {lc.rank(A)}, erank {lc.erank(A):.2f}, stable rank {lc.stable_rank(A):.2f}, "
        f"entropy rank {lc.entropy_rank(A):.2f}")
    out("  error = ||A - A_k||_2 / ||A||_2; optimum = sigma_(k+1) / sigma_1 (Eckart-Young)")
    out(f"  bottleneck: the linear network n -> n -> k -> n, float32, {BOTTLENECK_EPOCHS} "
        f"epoch(s) of {1000 * BOTTLENECK_EPOCHS} exact gradient steps (data='exact')")
    out("")
    header = (f"{'method':<16} {'k':>4} {'error':>10} {'optimum':>10} {'ratio':>8} "
              f"{'rank':>5} {'erank':>7} {'time (ms)':>10}")
    out(header)
    out("-" * len(header))
    rows = []
    for k in ranks:
        if not 1 <= k <= min(A.shape):
            continue
        optimum = float(sigma[k] / sigma[0]) if k < sigma.size else 0.0
        for name, approximate in _methods(seed):
            approximation, seconds = _timed(approximate, A, k)
            error = lc.relative_error(A, approximation)
            row = dict(method=name, k=k, error=error, optimum=optimum,
                       ratio=error / optimum if optimum > 0 else float("nan"),
                       rank=lc.rank(approximation), erank=lc.erank(approximation),
                       seconds=seconds)
            rows.append(row)
            out(f"{name:<16} {k:>4} {error:>10.5f} {optimum:>10.5f} {row['ratio']:>8.4f} "
                f"{row['rank']:>5} {row['erank']:>7.3f} {1e3 * seconds:>10.2f}")
    return rows


if __name__ == "__main__":  # pragma: no cover
    np.set_printoptions(precision=4)
    run()
