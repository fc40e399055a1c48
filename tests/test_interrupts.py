"""Ctrl-C (a real SIGINT) during a long call raises KeyboardInterrupt and leaves the
package usable.

Each case runs in a child process that starts a call which would take hours, and
the test sends it SIGINT. The child reports what it caught, how long after the
signal, and whether the next call still gives the right answer. The only clock in
here is a hang guard: a child that ignores the signal runs into the guard and the
test fails, whatever the machine's speed. The measured delays are printed
(`pytest -s`) for docs/reliability.md, not asserted.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import run_python

CHILD = textwrap.dedent(
    """
    import json, signal, sys, time
    import numpy as np
    import lowrank_core as lc

    # Ctrl-C as a terminal user gets it, also where this process inherited SIGINT
    # ignored (a background job of a shell without job control, as some CI runners
    # start it): Python then installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    case = sys.argv[1]
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1500, 1000))
    if case == "randomized_svd":
        run = lambda: lc.randomized_svd(A, 10, power_iters=10**7, seed=0)
    elif case == "randomized_svd-sparse":
        import scipy.sparse
        S = scipy.sparse.random(20000, 2000, density=0.01, format="csr", random_state=0)
        run = lambda: lc.randomized_svd(S, 10, power_iters=10**7, seed=0)
    elif case == "randomized_svd-operator":
        from scipy.sparse.linalg import aslinearoperator
        run = lambda: lc.randomized_svd(aslinearoperator(A), 10, power_iters=10**7, seed=0)
    elif case == "randomized_svd-tol":  # the adaptive range finder, to a tol it cannot reach
        run = lambda: lc.randomized_svd(A, None, tol=1e-300, power_iters=10**7, seed=0)
    elif case.startswith("bottleneck"):
        data = case.split("-")[1]
        # data='exact' stops at its tol by default (a fraction of a second here);
        # tol=0 runs the fixed budget, so Gauss-Newton's sweep loop is what is interrupted.
        stop = {"tol": 0.0} if data == "exact" else {}
        net = lc.Bottleneck(5, epochs=10**7, samples=4096, data=data, seed=0, **stop)
        run = lambda: net.fit(A[:40, :40])
    else:
        raise SystemExit("unknown case " + case)

    print("started", flush=True)
    caught = None
    try:
        run()
    except KeyboardInterrupt:
        caught = "KeyboardInterrupt"
    except BaseException as error:  # reported, not swallowed: the test fails on it
        caught = type(error).__name__
    caught_at = time.time()

    # Usable afterwards: the same routine on a small problem is right.
    B = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))  # rank 5: exact
    result = lc.randomized_svd(B, 5, seed=1)
    best = np.linalg.svd(B, compute_uv=False)
    usable = bool(np.allclose(result.S, best[:5], rtol=1e-6))
    net2 = lc.Bottleneck(3, epochs=2, samples=64, seed=0).fit(B[:10, :10])
    usable = usable and net2.rank_ <= 3
    print(json.dumps({"caught": caught, "caught_at": caught_at, "usable": usable}), flush=True)
    """
)


@pytest.mark.parametrize(
    "case", ["randomized_svd", "randomized_svd-sparse", "randomized_svd-operator",
             "randomized_svd-tol", "bottleneck-fixed", "bottleneck-stream", "bottleneck-exact"]
)
def test_sigint_during_a_long_call_raises_keyboard_interrupt(case):
    child = run_python(CHILD, case, sigint_after=1.0, name=case)  # well inside the core
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{case}: KeyboardInterrupt "
          f"{report['caught_at'] - child.sigint_sent_at:.3f} s after SIGINT")
    assert report["caught"] == "KeyboardInterrupt", report
    assert report["usable"], report


# One LAPACK call has no loop of the core's to poll in: it runs on a thread of its own
# while the calling thread polls, and Ctrl-C abandons it (bindings/interruptible.hpp).
LAPACK_CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import numpy as np
    import lowrank_core as lc
    from lowrank_core import _core

    signal.signal(signal.SIGINT, signal.default_int_handler)
    case, exit_normally = sys.argv[1], sys.argv[2] == "exit"
    rng = np.random.default_rng(0)
    # Large enough that the call takes many seconds on any machine the tests run on.
    A = rng.standard_normal((2500, 2500))
    run = {
        "svd": lambda: lc.svd(A, 5),
        "singular_values": lambda: lc.singular_values(A),
        "erank": lambda: lc.erank(A),
        "rank": lambda: lc.rank(A),
        "relative_error": lambda: lc.relative_error(A, A * 0.5, ord=2),
    }[case]
    print("started", flush=True)
    caught = None
    try:
        run()
    except KeyboardInterrupt:
        caught = "KeyboardInterrupt"
    except BaseException as error:
        caught = type(error).__name__
    caught_at = time.time()
    # Still running when KeyboardInterrupt came: interrupted before completion.
    abandoned = _core._testing.abandoned_calls()
    B = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 40))
    usable = bool(np.allclose(lc.svd(B, 5).S, np.linalg.svd(B, compute_uv=False)[:5]))
    usable = usable and lc.rank(B) == 5
    print(json.dumps({"caught": caught, "caught_at": caught_at, "abandoned": abandoned,
                      "usable": usable}), flush=True)
    if not exit_normally:
        os._exit(0)  # not waiting for the abandoned call (the "exit" case checks that)
    """
)


@pytest.mark.parametrize(
    "case, ending",
    [("svd", "exit"), ("singular_values", "quit"), ("erank", "quit"), ("rank", "quit"),
     ("relative_error", "quit")],
)
def test_sigint_during_one_long_lapack_call_raises_keyboard_interrupt(case, ending):
    child = run_python(LAPACK_CHILD, case, ending, sigint_after=0.5, name=case)  # in LAPACK
    # "exit": a normal exit waits for the abandoned call to end, and ends cleanly.
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{case}: KeyboardInterrupt "
          f"{report['caught_at'] - child.sigint_sent_at:.3f} s after SIGINT")
    assert report["caught"] == "KeyboardInterrupt", report
    assert report["abandoned"] == 1, report  # the call had not finished
    assert report["usable"], report
