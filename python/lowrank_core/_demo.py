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


def _bottleneck(A, k, seed):
    """The network trained with data="exact" at its defaults: Gauss-Newton sweeps until
    the gradient of the expected loss has fallen to tol (1e-7 of its first value), at
    most max_epochs sweeps; the fitted network says whether it got there."""
    net = lc.Bottleneck(k, data="exact", seed=seed).fit(A)
    return net.matrix(), net


def _methods(seed: int):
    """(name, function A, k -> (rank-k approximation as a dense matrix, network or None))."""
    yield "svd", lambda A, k: (lc.svd(A, k).to_dense(), None)
    yield "randomized_svd", lambda A, k: (lc.randomized_svd(A, k, seed=seed).to_dense(), None)
    yield "bottleneck", lambda A, k: _bottleneck(A, k, seed)


def run(size: int = 256, ranks=DEFAULT_RANKS, seed: int = 0, out=print) -> list[dict]:
    """Print (and return) each method's error beside the optimum at each rank."""
    A = test_image(size)
    sigma = lc.singular_values(A)
    out(f"lowrank_core demo: the built-in {size} x {size} test image "
        "(lowrank_core.data.test_image)")
    out(f"  rank {lc.rank(A)}, erank {lc.erank(A):.2f}, stable rank {lc.stable_rank(A):.2f}, "
        f"entropy rank {lc.entropy_rank(A):.2f}")
    out("  error = ||A - A_k||_2 / ||A||_2; optimum = sigma_(k+1) / sigma_1 (Eckart-Young)")
    out("  bottleneck: the linear network n -> n -> k -> n, float32, trained on the expected "
        "loss (data='exact') until it converges; 'training' says after how many sweeps")
    out("")
    header = (f"{'method':<16} {'k':>4} {'error':>10} {'optimum':>10} {'ratio':>8} "
              f"{'rank':>5} {'erank':>7} {'time (ms)':>10}  training")
    out(header)
    out("-" * len(header))
    rows = []
    for k in ranks:
        if not 1 <= k <= min(A.shape):
            continue
        optimum = float(sigma[k] / sigma[0]) if k < sigma.size else 0.0
        for name, approximate in _methods(seed):
            (approximation, net), seconds = _timed(approximate, A, k)
            error = lc.relative_error(A, approximation)
            row = dict(method=name, k=k, error=error, optimum=optimum,
                       ratio=error / optimum if optimum > 0 else float("nan"),
                       rank=lc.rank(approximation), erank=lc.erank(approximation),
                       seconds=seconds)
            training = ""
            if net is not None:
                row.update(epochs=len(net.loss_history_), converged=net.converged_,
                           relative_gradient=net.relative_gradient_)
                training = (f"converged in {row['epochs']} sweeps" if net.converged_ else
                            f"stopped after {row['epochs']} sweeps, gradient at "
                            f"{net.relative_gradient_:.1e} of its start")
            rows.append(row)
            out(f"{name:<16} {k:>4} {error:>10.5f} {optimum:>10.5f} {row['ratio']:>8.4f} "
                f"{row['rank']:>5} {row['erank']:>7.3f} {1e3 * seconds:>10.2f}  {training}")
    return rows


if __name__ == "__main__":  # pragma: no cover
    np.set_printoptions(precision=4)
    run()
