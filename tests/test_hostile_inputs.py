"""Odd and hostile use of the public API: every public function on odd inputs (in a
child process, so that a crash fails the test instead of ending pytest), the package
after fork(), and callbacks that call back into the package.

Every call must either succeed with finite results or raise ValueError or TypeError
(NotFittedError for an unfitted network); anything else (a crash, another exception,
a NaN from finite input) fails.
"""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest

import lowrank_core as lc

from helpers import random_matrix, run_python

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import lowrank_core as lc

    class Unreadable:  # as a torch bfloat16 tensor: np.asarray raises TypeError
        def __array__(self, *args, **kwargs):
            raise TypeError("Got unsupported ScalarType BFloat16")

    rng = np.random.default_rng(0)
    top = np.finfo(np.float64).max
    inputs = {
        "empty": np.zeros((0, 3)), "1x1": np.ones((1, 1)), "row": np.ones((1, 7)),
        "column": np.ones((7, 1)), "0-d": np.float64(3.0), "1-d": np.arange(4.0),
        "3-d": rng.standard_normal((2, 4, 3)), "neg zeros": -np.zeros((5, 4)),
        "near max": rng.uniform(-1, 1, (5, 4)) * top, "tiny": rng.standard_normal((5, 4)) * 1e-310,
        "float32 near max": (rng.uniform(-1, 1, (5, 4)) * 3.4e38).astype(np.float32),
        "subnormal float32": np.full((4, 4), 1e-45, np.float32),
        "float16": rng.standard_normal((5, 4)).astype(np.float16),
        "int8 min": np.full((4, 3), -128, np.int8), "uint64 max": np.full((3, 3), 2**64 - 1, np.uint64),
        "bool": rng.random((5, 4)) > 0.5, "nan": np.full((3, 3), np.nan),
        "inf": np.full((3, 3), -np.inf), "complex": np.ones((3, 3), complex),
        "object": np.array([[1, "a"], [2, 3]], dtype=object), "strings": np.array([["1", "2"]]),
        "masked": np.ma.masked_array(np.ones((3, 3)), np.eye(3, dtype=bool)),
        "unreadable": Unreadable(), "ragged": [[1.0, 2.0], [3.0]], "None": None,
        "dict": {"a": 1}, "nested list": [[1, 2, 3], [4, 5, 6]],
        "reversed": rng.standard_normal((6, 5))[::-1, ::-1],
        "broadcast": np.broadcast_to(np.arange(4.0), (5, 4)),
    }
    calls = {
        "svd": lambda A: lc.svd(A, 1),
        "randomized_svd": lambda A: lc.randomized_svd(A, 1, seed=0),
        "singular_values": lambda A: lc.singular_values(A),
        "rank": lambda A: lc.rank(A),
        "erank": lambda A: lc.erank(A),
        "stable_rank": lambda A: lc.stable_rank(A),
        "entropy_rank": lambda A: lc.entropy_rank(A),
        "relative_error": lambda A: lc.relative_error(A, np.ones(np.shape(A))),
        "relative_error(ord=2)": lambda A: lc.relative_error(A, np.ones(np.shape(A)), ord=2),
        "Bottleneck.fit": lambda A: lc.Bottleneck(1, epochs=1, samples=16, seed=0).fit(A).matrix(),
        "Bottleneck.predict": lambda A: lc.Bottleneck(1, epochs=1, samples=16, seed=0).fit(
            np.ones((3, np.shape(A)[-1] if np.ndim(A) else 1))).predict(A),
    }

    def finite(result):
        parts = [result.U, result.S, result.Vh] if hasattr(result, "S") else [result]
        return all(np.all(np.isfinite(np.asarray(part, dtype=float))) for part in parts)

    outcomes = []
    for input_name, A in inputs.items():
        for call_name, call in calls.items():
            try:
                with np.errstate(all="ignore"):
                    result = call(A)
                # Finite input, finite output, except where the true value is past the
                # float maximum: singular values of a matrix near it, and the relative
                # error against a zero or tiny A (infinite by definition for zero A).
                ok = (finite(result) or input_name in ("near max", "float32 near max")
                      or (call_name.startswith("relative_error")
                          and input_name in ("neg zeros", "tiny")))
                outcome = "ok" if ok else "non-finite result"
            except (ValueError, TypeError) as error:
                outcome = "refused" if str(error) else "refused without a message"
            except BaseException as error:  # noqa: BLE001 - reported, fails the test
                outcome = f"{type(error).__name__}: {error}"
            outcomes.append([input_name, call_name, outcome])
    print(json.dumps(outcomes))
    """
)


def test_every_public_function_survives_odd_inputs():
    child = run_python(CHILD, timeout=600)
    assert child.returncode == 0, child.stderr
    outcomes = json.loads(child.stdout.strip().splitlines()[-1])
    bad = [o for o in outcomes if o[2] not in ("ok", "refused")]
    assert not bad, bad
    assert len(outcomes) == 29 * 11
    # The inputs that must be refused are refused by every function.
    for input_name, _, outcome in outcomes:
        if input_name in ("nan", "inf", "complex", "object", "strings", "masked", "unreadable",
                          "ragged", "None", "dict"):
            assert outcome == "refused", (input_name, outcome)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_public_function_works_in_a_child_forked_after_use():
    A = random_matrix((300, 200), np.float64, seed=50)
    A32 = A.astype(np.float32)
    calls = {
        "svd": lambda: lc.svd(A, 3).S,
        "randomized_svd": lambda: lc.randomized_svd(A, 3, seed=1).S,
        "randomized_svd float32": lambda: lc.randomized_svd(A32, 3, seed=1).S,
        "singular_values": lambda: lc.singular_values(A),
        "rank": lambda: np.asarray(lc.rank(A), float),
        "erank": lambda: np.asarray(lc.erank(A)),
        "relative_error": lambda: np.asarray(lc.relative_error(A, A * 0.5, ord=2)),
        "Bottleneck": lambda: lc.Bottleneck(2, epochs=1, samples=64, seed=0).fit(A[:8, :6]).matrix(),
    }
    parent = {name: call().tobytes() for name, call in calls.items()}  # the pool is started
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, only bytes through the pipe
        try:
            same = {name: call().tobytes() == parent[name] for name, call in calls.items()}
            os.write(write, json.dumps(same).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    same = json.loads(report)
    assert same == {name: True for name in calls}, same
    assert {name: call().tobytes() for name, call in calls.items()} == parent


def test_a_callback_may_call_back_into_the_package():
    A = random_matrix((6, 5), np.float32, seed=51)
    net = lc.Bottleneck(2, epochs=3, samples=64, seed=0)
    seen = []

    def callback(epoch, loss):
        # Every kind of call, the fitted network's own outputs included.
        seen.append((lc.svd(A, 2).S[0], lc.rank(A), net.matrix().shape, net.rank_,
                     lc.Bottleneck(1, epochs=1, samples=16, seed=1).fit(A).rank_))

    net.fit(A, callback=callback)
    assert len(seen) == 3 and all(s[2] == (6, 5) and s[3] <= 2 and s[4] == 1 for s in seen)
    want = lc.Bottleneck(2, epochs=3, samples=64, seed=0).fit(A)
    np.testing.assert_array_equal(net.matrix(), want.matrix())


def test_a_callback_that_fits_the_same_network_again_leaves_the_outer_fit():
    A = random_matrix((6, 5), np.float32, seed=52)
    B = random_matrix((6, 5), np.float32, seed=53)
    net = lc.Bottleneck(2, epochs=2, samples=64, seed=0)
    inner = []

    def callback(epoch, loss):
        if not inner:
            inner.append(net.fit(B).matrix())

    net.fit(A, callback=callback)
    want = lc.Bottleneck(2, epochs=2, samples=64, seed=0).fit(A)
    np.testing.assert_array_equal(net.matrix(), want.matrix())
    np.testing.assert_array_equal(net.loss_history_, want.loss_history_)
    np.testing.assert_array_equal(inner[0], lc.Bottleneck(2, epochs=2, samples=64, seed=0)
                                  .fit(B).matrix())
