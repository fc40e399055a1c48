"""Helpers shared by the tests: matrices, tolerances per dtype, arrays on either
device, and a child-process runner with a hang guard.

Tolerances are per dtype and relative to the scale of the problem (sigma_1):
results are compared with NumPy and the reference to rounding, not bit for bit.

Imported as ``helpers`` (pyproject's pytest ``pythonpath`` puts tests/ on the path).
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

# --- tolerances per dtype ---------------------------------------------------------------

# Relative tolerance for quantities computed in a dtype, scaled by sigma_1 or by
# the norm of the compared arrays.
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}


def rtol_for(dtype) -> float:
    dtype = np.dtype(dtype)
    return RTOL.get(dtype, RTOL[np.dtype(np.float64)])


def computed_dtype(dtype) -> np.dtype:
    """The precision lowrank_core computes an input dtype in."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def assert_close(actual, expected, dtype, scale=None, factor=1.0):
    """|actual - expected| <= factor * rtol(dtype) * scale (default: max |expected|)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if scale is None:
        scale = max(float(np.abs(expected).max(initial=0.0)), 1e-300)
    error = float(np.abs(actual - expected).max(initial=0.0))
    bound = factor * rtol_for(dtype) * scale
    assert error <= bound, f"max error {error:.3e} > {bound:.3e}"


# --- matrices ---------------------------------------------------------------------------


def random_matrix(shape, dtype, seed=0):
    """A random matrix of the dtype; integer dtypes get small random integers."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(dtype)


def low_rank(shape, r, dtype=np.float64, seed=0):
    """A matrix (or stack of matrices, shape[:-2]) of rank r: a product of Gaussian
    factors m x r and r x n, in float64, then cast to the dtype."""
    rng = np.random.default_rng(seed)
    batch, (m, n) = shape[:-2], shape[-2:]
    X = rng.standard_normal(batch + (m, r))
    Y = rng.standard_normal(batch + (r, n))
    return (X @ Y).astype(dtype)


def spectral_error(A, result):
    """||A - U diag(S) Vh||_2, all in float64."""
    A64 = np.asarray(A, dtype=np.float64)
    dense = (result.U.astype(np.float64) * result.S) @ result.Vh.astype(np.float64)
    return np.linalg.norm(A64 - dense, 2)


# --- arrays on either device (the xp fixture: conftest.py) ------------------------------


def on_gpu(xp) -> bool:
    """Whether xp is CuPy (the arrays live on a GPU)."""
    return xp.__name__ == "cupy"


def to_device(xp, A, layout="C"):
    """A copy of the host array A as an xp array, C- or Fortran-ordered."""
    A = xp.asarray(A)
    return xp.asfortranarray(A) if layout == "F" else xp.ascontiguousarray(A)


def to_host(x):
    """A NumPy array of x: x itself for NumPy, a copy for CuPy (for comparisons only)."""
    return x.get() if type(x).__module__.startswith("cupy") else np.asarray(x)


# --- child processes --------------------------------------------------------------------

HANG_GUARD_S = 300


@dataclasses.dataclass
class Finished:
    """A child process that ended: its exit status, its output, and when SIGINT was
    sent to it (time.time(); None where none was)."""

    returncode: int
    stdout: str
    stderr: str
    sigint_sent_at: float | None = None


def run_python(code, *args, timeout=HANG_GUARD_S, sigint_after=None, name="the child"):
    """Runs ``python -c code *args`` in a child process, output captured as text.

    With ``sigint_after`` (seconds), the child must first print "started"; it is sent
    SIGINT that long after. The only clock is the hang guard: a child still running
    ``timeout`` s later is killed and the test fails, whatever the machine's speed,
    instead of hanging pytest.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sent_at = None
    try:
        if sigint_after is not None:
            assert child.stdout.readline().strip() == "started", child.stderr.read()
            time.sleep(sigint_after)
            child.send_signal(signal.SIGINT)
            sent_at = time.time()
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        if sent_at is not None:
            pytest.fail(f"{name}: SIGINT did not stop the call within {timeout} s")
        pytest.fail(f"{name} did not finish within {timeout} s (hung?)")
    finally:
        if child.poll() is None:
            child.kill()
    return Finished(child.returncode, out, err, sent_at)
