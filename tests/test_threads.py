"""Thread safety and the GIL.

* The public calls, run from 8 Python threads at once on shared input arrays, give
  the results of serial calls and leave the inputs unchanged.
* The compiled core releases the GIL during long computations: another Python
  thread keeps running meanwhile.

No test asserts on wall-clock time: they assert on results and on counts.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import lowrank_core as lc
from lowrank_core import _core, reference
from lowrank_core.data import decaying_spectrum

from helpers import assert_close, random_matrix

THREADS = 8
REPEATS = 2  # calls per thread, so that the threads' calls overlap for longer


def run_in_threads(function, threads=THREADS):
    """``function()`` called REPEATS times on each of ``threads`` threads, all
    released at once by a barrier; the list of every result. An exception in any
    thread is re-raised here."""
    barrier = threading.Barrier(threads)
    results, errors = [[] for _ in range(threads)], []

    def work(i):
        try:
            barrier.wait()
            for _ in range(REPEATS):
                results[i].append(function())
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)  # a hang guard only
    assert not any(worker.is_alive() for worker in workers), "a thread hung"
    if errors:
        raise errors[0]
    return [result for per_thread in results for result in per_thread]


# Comparisons here are to a tight per-dtype tolerance, not bit for bit: while
# another thread is inside the core, the core may run BLAS single-threaded (it sets
# OpenBLAS's thread count process-wide, see cpp/lowrank/runtime/parallel.hpp), and LAPACK calls
# (svd, singular_values) on a different number of threads round differently.
# randomized_svd splits its work by the configured count whatever runs beside it:
# test_randomized_svd_gives_the_serial_bits_from_8_threads compares its bits.
def svd_matches(got, want, dtype, A):
    scale = float(want.S[0])
    assert_close(got.S, want.S, dtype, scale=scale, factor=10)
    # U and Vh are compared through the rank-k matrix: it does not depend on how a
    # near-tie in the sign convention's largest entry rounds.
    assert_close(got.to_dense(), want.to_dense(), dtype, scale=scale, factor=10)


def shared_inputs():
    """(name, input array, call, comparison) for each public call; large enough that
    the work is threaded (the BLAS's threads, stacks across the core's threads), and
    one float64 randomized_svd large enough for its float32 power iterations."""
    A64 = random_matrix((320, 240), np.float64, seed=1)
    # 2 m n (k + 10) >= 5e7: float32 power iterations. A call that overlaps others
    # may see another BLAS thread count, which changes float32 rounding in the
    # subspace found, so the result agrees to float32's tolerance, not float64's.
    M64 = random_matrix((1200, 800), np.float64, seed=10)
    A32 = random_matrix((240, 320), np.float32, seed=2)
    F64 = np.asfortranarray(random_matrix((350, 250), np.float64, seed=3))
    B64 = random_matrix((150, 100), np.float64, seed=8)
    B32 = random_matrix((100, 150), np.float32, seed=9)
    stack = random_matrix((24, 30, 20), np.float64, seed=4)
    stack32 = random_matrix((24, 20, 30), np.float32, seed=5)
    small = random_matrix((30, 20), np.float32, seed=6)
    small64 = random_matrix((25, 20), np.float64, seed=7)

    def close_svd(dtype, A):
        return lambda got, want: svd_matches(got, want, dtype, A)

    def close(dtype):
        return lambda got, want: assert_close(got, want, dtype, factor=10)

    def equal(got, want):
        assert np.array_equal(got, want)

    def bottleneck_close(dtype):
        def check(got, want):
            assert_close(got[0], want[0], dtype, factor=100)  # the loss history
            assert_close(got[1], want[1], dtype, factor=100)  # the learned map
        return check

    def fit(A, **options):
        def run():
            net = lc.Bottleneck(4, epochs=2, samples=256, seed=11, **options).fit(A)
            return net.loss_history_, net.matrix()
        return run

    return [
        ("svd float64", B64, lambda: lc.svd(B64, 20), close_svd(np.float64, B64)),
        ("svd float32", B32, lambda: lc.svd(B32, 20), close_svd(np.float32, B32)),
        ("randomized_svd float64", A64, lambda: lc.randomized_svd(A64, 20, seed=5),
         close_svd(np.float64, A64)),
        ("randomized_svd float64 mixed", M64, lambda: lc.randomized_svd(M64, 20, seed=5),
         close_svd(np.float32, M64)),
        ("randomized_svd float32", A32, lambda: lc.randomized_svd(A32, 20, seed=5),
         close_svd(np.float32, A32)),
        ("randomized_svd Fortran", F64, lambda: lc.randomized_svd(F64, 10, seed=6,
                                                                  power_iters=2),
         close_svd(np.float64, F64)),
        ("singular_values stack", stack, lambda: lc.singular_values(stack), close(np.float64)),
        ("singular_values float32", stack32, lambda: lc.singular_values(stack32),
         close(np.float32)),
        ("rank stack", stack, lambda: lc.rank(stack), equal),
        ("rank hermitian", stack[:, :20, :20],
         lambda: lc.rank(stack[:, :20, :20], hermitian=True), equal),
        ("erank stack", stack, lambda: lc.erank(stack), close(np.float64)),
        ("stable_rank", B64, lambda: lc.stable_rank(B64), close(np.float64)),
        ("entropy_rank", stack32, lambda: lc.entropy_rank(stack32), close(np.float32)),
        ("relative_error", B32, lambda: lc.relative_error(B32, 0.5 * B32), close(np.float32)),
        ("Bottleneck fixed", small, fit(small), bottleneck_close(np.float32)),
        ("Bottleneck stream float64", small64, fit(small64, data="stream", dtype="float64"),
         bottleneck_close(np.float64)),
        ("Bottleneck exact", small, fit(small, data="exact"), bottleneck_close(np.float32)),
    ]


CASES = shared_inputs()


@pytest.mark.parametrize("name, A, function, matches", CASES, ids=[c[0] for c in CASES])
def test_concurrent_calls_match_serial_calls(name, A, function, matches):
    keep = A.copy()
    flags = (A.flags.c_contiguous, A.flags.f_contiguous, A.flags.writeable)
    want = function()
    results = run_in_threads(function)
    assert len(results) == THREADS * REPEATS
    for got in results:
        matches(got, want)
    assert np.array_equal(A, keep) and A.tobytes() == keep.tobytes()
    assert (A.flags.c_contiguous, A.flags.f_contiguous, A.flags.writeable) == flags


def test_different_calls_at_once_match_serial_calls():
    # All the calls above at the same time, each on its own thread, on shared arrays.
    wants = [function() for _, _, function, _ in CASES]
    copies = [A.copy() for _, A, _, _ in CASES]
    barrier = threading.Barrier(len(CASES))
    results, errors = [None] * len(CASES), []

    def work(i):
        try:
            barrier.wait()
            results[i] = CASES[i][2]()
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(CASES))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(worker.is_alive() for worker in workers)
    if errors:
        raise errors[0]
    for (name, A, _, matches), got, want, keep in zip(CASES, results, wants, copies):
        matches(got, want)
        assert np.array_equal(A, keep), name


# --- the GIL is released --------------------------------------------------------


def progress_during(call):
    """How many times a second Python thread advanced while ``call()`` ran.

    The switch interval is raised far above the length of the test, so the
    interpreter never takes the GIL away from the calling thread: the counting
    thread runs only while the caller has released the GIL itself (in the core) and
    the count is exactly 0 when it has not. The counter sleeps between steps, which
    releases the GIL, so the calling thread gets it back as soon as it asks.
    """
    count, stop = [0], threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1
            time.sleep(1e-5)

    old_interval = sys.getswitchinterval()
    thread = threading.Thread(target=counter)
    sys.setswitchinterval(1000.0)
    try:
        thread.start()
        before = count[0]
        call()
        after = count[0]
    finally:
        stop.set()
        sys.setswitchinterval(old_interval)
        thread.join(timeout=300)
    return after - before


def busy_python():
    """Pure Python: holds the GIL throughout."""
    total = 0
    for i in range(300_000):
        total += i
    return total


def test_the_progress_measure_sees_a_call_that_keeps_the_gil():
    # The control for the tests below: a call that never releases the GIL lets the
    # other thread make no progress at all.
    assert progress_during(busy_python) == 0


# Large enough to take a good fraction of a second on a slow machine (the counter
# steps every ~0.1 ms), small enough to stay quick.
LARGE = random_matrix((700, 500), np.float64, seed=20)


RELEASING_CALLS = {
    "svd": lambda: lc.svd(LARGE, 10),
    "randomized_svd": lambda: lc.randomized_svd(LARGE, 50, power_iters=4, seed=0),
    "singular_values": lambda: lc.singular_values(LARGE.reshape(7, 100, 500)),
    "Bottleneck.fit": lambda: lc.Bottleneck(10, epochs=1, samples=4000, seed=0).fit(
        LARGE[:200, :200]),
    "Bottleneck.fit exact": lambda: lc.Bottleneck(10, epochs=1, data="exact", seed=0).fit(
        LARGE[:60, :60]),
}


@pytest.mark.parametrize("name", list(RELEASING_CALLS))
def test_another_thread_runs_while_the_core_computes(name):
    # The core on one thread, so that a core of the machine is left for the counting
    # thread: on 2 cores the core's own two threads (one spinning between its
    # parts) left it as few as 2 steps in a 6 ms randomized_svd.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pytest.skip("needs threadpoolctl to run the core on one thread")
    with threadpool_limits(1, user_api="blas"):
        steps = progress_during(RELEASING_CALLS[name])
    assert steps >= 20, f"the other thread advanced only {steps} times during {name}"


# --- the core's worker threads after fork() ---------------------------------------


def forked(function, timeout=120):
    """``function()``'s bytes (it returns an array) computed in a forked child, or
    an assertion error when the child fails or does not finish in ``timeout`` s."""
    import os
    import select
    import signal
    import warnings

    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python >= 3.12 warns on fork() in a process with threads (the core's
        # workers are such threads: this test is about them).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: only this thread exists here
        code = 1
        try:
            os.close(read)
            data = np.ascontiguousarray(function()).tobytes()
            with os.fdopen(write, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    chunks, done = [], False
    try:
        while not done:
            ready, _, _ = select.select([read], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(read, 1 << 20)
            chunks.append(chunk)
            done = not chunk
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    assert done, f"the forked child did not finish in {timeout} s (hung?)"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    return b"".join(chunks)


def test_a_forked_child_computes_with_threads_of_its_own():
    # The parent's call leaves the core's worker threads waiting for work; a forked
    # child has none of them, so its calls must start their own (a child that
    # handed work to the parent's workers would wait forever). Same thread count,
    # same input, same seed: the child's result has the parent's bits.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pytest.skip("needs threadpoolctl to run the core on two threads")
    A = random_matrix((1200, 800), np.float32, seed=3)

    def call():
        r = lc.randomized_svd(A, 20, seed=5)
        return np.concatenate([r.U.ravel(), r.S, r.Vh.ravel()])

    with threadpool_limits(2, user_api="blas"):
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        if max(counts, default=1) < 2:
            pytest.skip("the BLAS runs one thread here: the core runs no workers")
        want = call()
        got = forked(call)
        again = call()  # and the parent's own workers still work after the fork
    assert got == want.tobytes()
    assert np.array_equal(again, want)


# --- the core's thread pool: parts no worker has begun ----------------------------


def test_the_caller_runs_parts_no_worker_has_begun():
    # More parts than cores, and parts that take no time: by the time the calling
    # thread has finished its own part, most workers have not begun theirs, and the
    # caller runs those itself (thread_pool.cpp) instead of waiting for the workers
    # to wake. Every part must still run exactly once in every run.
    import os

    parts = min(257, 4 * (os.cpu_count() or 1) + 1)
    once, by_caller = _core._testing.pool_parts(parts, 300)
    assert once, "a part ran twice or not at all"
    assert 0 < by_caller <= 300 * (parts - 1)
    assert _core._testing.pool_parts(1, 5) == (True, 0)  # one part: the caller's alone
    for bad in (0, 258):
        with pytest.raises(ValueError, match="parts"):
            _core._testing.pool_parts(bad, 1)


def test_results_do_not_depend_on_which_thread_ran_a_part():
    # With more threads than cores the caller runs many workers' parts itself, and
    # which ones varies from call to call; the bits must not (each part writes only
    # its own output), and they agree with the reference.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    A = decaying_spectrum(1500, 700, 0.7 ** np.arange(700), seed=21, dtype=np.float32)
    with threadpoolctl.threadpool_limits(8, user_api="blas"):
        counts = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas"]
        if max(counts, default=1) < 8:
            pytest.skip("the BLAS does not take 8 threads here")
        results = [lc.randomized_svd(A, 10, seed=3) for _ in range(6)]
    first = results[0]
    for again in results[1:]:
        assert all(np.array_equal(x, y) for x, y in zip(again, first))
    want = reference.randomized_svd(A, 10, power_iters=4, seed=3)
    svd_matches(first, want, np.float32, A)


def test_randomized_svd_gives_the_serial_bits_from_8_threads():
    # The same seed gives the same bits whatever runs beside the call: the work's
    # partition comes from the BLAS's configured thread count, not from the count
    # another call's single-threaded section sets meanwhile (cpp/lowrank/runtime/parallel.hpp).
    M64 = random_matrix((1200, 800), np.float64, seed=20)  # float32 power iterations
    M32 = M64.astype(np.float32)
    calls = {
        "float64 auto": lambda: lc.randomized_svd(M64, 10, seed=3),
        "float64 off": lambda: lc.randomized_svd(M64, 10, seed=3, mixed_precision=False),
        "float32": lambda: lc.randomized_svd(M32, 10, seed=3),
        "rank": lambda: np.asarray(lc.rank(M64[:300, :200])),
    }

    def bits(result):
        parts = (result.U, result.S, result.Vh) if hasattr(result, "S") else (result,)
        return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)

    serial = {name: bits(call()) for name, call in calls.items()}

    def all_calls():
        return {name: bits(call()) for name, call in calls.items()}

    for result in run_in_threads(all_calls):
        assert {name: result[name] == serial[name] for name in calls} == {
            name: True for name in calls}
