"""Memory: repeated calls leave the process's memory flat, and requests too large to
allocate are a MemoryError or a ValueError, never a crash.

The huge requests run in a subprocess, so that a crash fails the test instead of
killing pytest; its address space is capped a few GiB above what it uses after
import, so that "too large" means the same on every machine (whatever its memory
and overcommit settings) and a bug that really tries to allocate cannot exhaust it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import textwrap

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core

from helpers import random_matrix, run_python

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - a test requirement; then BLAS keeps its threads
    threadpool_limits = None

# --- repeated calls leave memory flat ---------------------------------------------

REPEATS = 200
WARM_UP = 30
# Every input below is 128 x 128 float64: 128 KiB. Each call copies its input at
# least once (the core's working copy) or returns at least that much, so leaking
# what one call allocates would grow the process by >= 128 KiB x 200 = 25 MiB. The
# bound is a third of that: room for the allocator's own noise (its arenas, one per
# core thread, fill up and keep pages), yet a leak of the working copy in more than
# about one call in three fails.
LEAK_UNIT = 128 * 128 * 8
BOUND = LEAK_UNIT * REPEATS // 3


def resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def growth(call):
    """How much the resident set grew over REPEATS calls, after WARM_UP calls."""
    for _ in range(WARM_UP):
        call()
    gc.collect()
    before = resident_bytes()
    for _ in range(REPEATS):
        call()
    gc.collect()
    return resident_bytes() - before


A = random_matrix((128, 128), np.float64, seed=0)
B = random_matrix((128, 128), np.float64, seed=1)
STACK = random_matrix((8, 64, 32), np.float64, seed=2)  # 8 x 16 KiB = 128 KiB
NAN = A.copy()
NAN[-1, -1] = np.nan
NAN_STACK = STACK.copy()
NAN_STACK[-1, -1, -1] = np.nan
NET = lc.Bottleneck(8, epochs=1, samples=128, dtype="float64", seed=0).fit(A)


def raises(error, call, *args, **kwargs):
    def run():
        with pytest.raises(error):
            call(*args, **kwargs)
    return run


CALLS = {
    "svd": lambda: lc.svd(A, 64),
    "randomized_svd": lambda: lc.randomized_svd(A, 32, seed=0),
    "randomized_svd sketch": lambda: lc.randomized_svd(A, 8, oversamples=0, sketch=B[:, :8]),
    "singular_values": lambda: lc.singular_values(STACK),
    "rank": lambda: lc.rank(A),
    "rank tol hermitian": lambda: lc.rank(STACK[:, :32, :], tol=0.1, hermitian=True),
    "erank": lambda: lc.erank(STACK),
    "stable_rank": lambda: lc.stable_rank(A),
    "entropy_rank": lambda: lc.entropy_rank(A),
    "relative_error": lambda: lc.relative_error(A, B),
    "Bottleneck.fit": lambda: lc.Bottleneck(8, epochs=1, samples=128, dtype="float64",
                                            seed=0).fit(A),
    "Bottleneck.fit exact": lambda: lc.Bottleneck(4, epochs=1, data="exact", seed=0).fit(
        A[:16, :16]),
    "Bottleneck.matrix": NET.matrix,
    "Bottleneck.factors": NET.factors,
    "Bottleneck.predict": lambda: NET.predict(B),
    # Errors raised in the core after it has allocated (a stack's output, the work
    # split across threads) must free what they allocated too.
    "svd NaN (error)": raises(ValueError, lc.svd, NAN, 4),
    "singular_values NaN (error)": raises(ValueError, lc.singular_values, NAN_STACK),
    "rank NaN (error)": raises(ValueError, lc.rank, NAN_STACK),
    "relative_error NaN (error)": raises(ValueError, lc.relative_error, A, NAN),
    "Bottleneck.fit NaN (error)": raises(ValueError, lc.Bottleneck(2).fit, NAN),
}


# Stacks keep the BLAS's threads: the core then splits them across its own threads,
# whose per-thread allocations are checked too. Single matrices run with one BLAS
# thread: the same allocations in the core, without a threaded LAPACK's slowness on
# small matrices when the machine is busy.
THREADED = {"singular_values", "rank tol hermitian", "erank", "singular_values NaN (error)",
            "rank NaN (error)"}


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                    reason="reads the resident set from /proc/self/statm (Linux only)")
@pytest.mark.parametrize("name", list(CALLS))
def test_repeated_calls_leave_memory_flat(name):
    single = threadpool_limits is not None and name not in THREADED
    with threadpool_limits(1, user_api="blas") if single else contextlib.nullcontext():
        grown = growth(CALLS[name])
    assert grown <= BOUND, (
        f"{name}: the resident set grew by {grown / 2**20:.1f} MiB over {REPEATS} calls "
        f"(bound {BOUND / 2**20:.1f} MiB; leaking one input copy per call would be "
        f"{LEAK_UNIT * REPEATS / 2**20:.0f} MiB)")


# --- huge requests ------------------------------------------------------------------

# Each is run in one subprocess, in turn; the subprocess reports what each raised.
HUGE_REQUESTS = {
    # A hidden layer of 2**48 units: weights of 2**50 bytes and more.
    "Bottleneck wide layer": "lc.Bottleneck(2, layers=(2**48, 2), epochs=1, samples=16, "
                             "seed=0).fit(A)",
    "Bottleneck wide layer, orthogonal": "lc.Bottleneck(2, layers=(2**48, 2), "
                                         "init='orthogonal', seed=0).fit(A)",
    # 2**62 units: widths[l] * widths[l+1] overflows a 64-bit integer.
    "Bottleneck width product overflows": "lc.Bottleneck(2, layers=(2**62, 2), seed=0).fit(A)",
    "Bottleneck two wide layers": "lc.Bottleneck(2, layers=(2**32, 2**32, 2), "
                                  "seed=0).fit(A)",
    "Bottleneck exact, width product overflows": "lc.Bottleneck(2, layers=(2**62, 2), "
                                                 "data='exact', seed=0).fit(A)",
    # The fixed training set is n x samples: 2**50 vectors.
    "Bottleneck samples": "lc.Bottleneck(2, epochs=1, samples=2**50, seed=0).fit(A)",
    "Bottleneck samples overflow": "lc.Bottleneck(2, epochs=1, samples=2**62, seed=0).fit(A)",
    "Bottleneck batch": "lc.Bottleneck(2, epochs=1, samples=2**50, batch_size=2**50, "
                        "data='stream', seed=0).fit(A)",
    # Broadcast views claim huge shapes with no memory behind them; any copy fails.
    "svd broadcast 2**31 x 2**31": "lc.svd(np.broadcast_to(1.0, (2**31, 2**31)), 1)",
    "randomized_svd broadcast": "lc.randomized_svd(np.broadcast_to(1.0, (2**40, 4)), 1, "
                                "seed=0)",
    "singular_values broadcast stack": "lc.singular_values(np.broadcast_to(1.0, "
                                       "(2**40, 2**20, 2**10)))",
    "erank broadcast stack": "lc.erank(np.broadcast_to(1.0, (2**30, 64, 64)))",
    "rank threshold broadcast": "lc.rank(A, tol=np.broadcast_to(0.0, (2**40,)))",
    "predict broadcast batch": "lc.Bottleneck(2, epochs=1, samples=16, seed=0).fit(A)"
                               ".predict(np.broadcast_to(1.0, (2**48, 4)))",
}

RUNNER = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import lowrank_core as lc

    # Cap the address space 4 GiB above what the process maps now.
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 4 * 2**30, resource.RLIM_INFINITY))
    A = np.ones((5, 4))
    for name, code in json.loads(sys.argv[1]).items():
        print("running", name, flush=True)
        try:
            eval(code)
            outcome = ("returned", "")
        except Exception as error:
            outcome = (type(error).__name__, str(error)[:200])
        print("outcome", json.dumps([name, *outcome]), flush=True)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="caps the subprocess's address space with RLIMIT_AS (Linux)")
def test_huge_requests_raise_instead_of_crashing():
    process = run_python(RUNNER, json.dumps(HUGE_REQUESTS))
    lines = process.stdout.splitlines()
    running = [line for line in lines if line.startswith("running")]
    assert process.returncode == 0, (
        f"the subprocess died (return code {process.returncode}) during "
        f"'{running[-1][8:] if running else '?'}':\n{process.stderr[-2000:]}")
    outcomes = {name: (kind, message) for name, kind, message in
                (json.loads(line[8:]) for line in lines if line.startswith("outcome"))}
    assert set(outcomes) == set(HUGE_REQUESTS)
    for name, (kind, message) in outcomes.items():
        # numpy's own "Unable to allocate ..." is a MemoryError subclass; its
        # "array is too big" and "iterator is too large" are ValueErrors.
        assert kind in ("MemoryError", "_ArrayMemoryError", "ValueError"), (name, kind, message)
        if name.startswith("Bottleneck") and kind == "ValueError":
            # Sizes past 64-bit products are refused before the core sees them, by name.
            assert "the network is too large" in message and "values" in message, message
    # Where a product of widths overflows 64 bits, always that ValueError.
    for name in ("Bottleneck width product overflows", "Bottleneck two wide layers",
                 "Bottleneck exact, width product overflows", "Bottleneck samples overflow"):
        assert outcomes[name][0] == "ValueError", (name, outcomes[name])


def test_oversamples_beyond_the_matrix_are_capped():
    # The sketch has min(k + oversamples, min(m, n)) columns: a huge oversamples is
    # the full sketch, not a huge allocation.
    A = random_matrix((30, 20), np.float64, seed=3)
    capped = lc.randomized_svd(A, 3, oversamples=10**15, seed=4)
    full = lc.randomized_svd(A, 3, oversamples=17, seed=4)
    assert np.array_equal(capped.S, full.S) and np.array_equal(capped.U, full.U)


# --- freed blocks kept for the next call (cpp/lowrank/runtime/block_cache.hpp) ---------------------

CACHE_ON = _core._testing.block_cache()[0]
needs_cache = pytest.mark.skipif(not CACHE_ON,
                                 reason="the block cache is off under AddressSanitizer")

FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import lowrank_core as lc

    # Loaded, not computed: no large block made and freed before the calls, which
    # would have raised the C library's thresholds and hidden the faults.
    A = np.load(sys.argv[1])
    for _ in range(3):
        lc.randomized_svd(A, 10, power_iters=4, seed=0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        lc.randomized_svd(A, 10, power_iters=4, seed=0)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
""")


@needs_cache
@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="counts page faults with getrusage (Linux)")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_repeated_calls_fault_no_pages_in(tmp_path, dtype):
    # Without the cache each call's panels went back to the kernel and came back as
    # fresh pages: 152 page faults a call in float32, 281 in float64.
    path = tmp_path / "A.npy"
    np.save(path, random_matrix((1000, 1000), dtype, seed=3))
    process = run_python(FAULTS, path)
    assert process.returncode == 0, process.stderr[-3000:]
    per_call = float(process.stdout.split()[-1])
    assert per_call < 10, f"{per_call:.0f} page faults a call"


@needs_cache
def test_kept_blocks_stay_within_the_budget():
    shapes = [(1000, 900), (900, 1000), (3000, 300), (300, 3000), (1500, 1400), (2000, 1100)]
    for i, (m, n) in enumerate(shapes):
        for dtype in (np.float32, np.float64):
            lc.randomized_svd(random_matrix((m, n), dtype, seed=i), 20, seed=0)
            kept = _core._testing.block_cache()[1]
            assert 0 < kept <= 64 * 2**20, kept
