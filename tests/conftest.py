"""Shared fixtures and tolerances.

Tolerances are per dtype and relative to the scale of the problem (sigma_1):
results are compared with NumPy and the reference to rounding, not bit for bit.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lowrank_core import _core

try:
    from hypothesis import settings
except ImportError:  # pragma: no cover - hypothesis is a test requirement
    settings = None

# Hypothesis profiles, chosen with LOWRANK_CORE_HYPOTHESIS_PROFILE:
#   default: what CI and a plain `pytest` run. Few enough examples that the property
#     tests take seconds on 2 cores; derandomized, so every run (and every CI machine)
#     tries the same examples and a failure reproduces. No example database, so runs
#     leave nothing behind; a failure prints its reproduction blob.
#   deep: many more examples from a fresh random seed each run, to hunt for bugs
#     (LOWRANK_CORE_HYPOTHESIS_PROFILE=deep python -m pytest tests/test_properties.py).
# Tests that set max_examples themselves keep it; the rest of the profile applies.
if settings is not None:
    settings.register_profile("default", max_examples=200, deadline=None, derandomize=True,
                              database=None, print_blob=True)
    settings.register_profile("deep", max_examples=2000, deadline=None, derandomize=False,
                              print_blob=True)
    settings.load_profile(os.environ.get("LOWRANK_CORE_HYPOTHESIS_PROFILE", "default"))

# Relative tolerance for quantities computed in a dtype, scaled by sigma_1 or by
# the norm of the compared arrays.
RTOL = {np.dtype(np.float32): 2e-4, np.dtype(np.float64): 1e-10}


def rtol_for(dtype) -> float:
    dtype = np.dtype(dtype)
    return RTOL.get(dtype, RTOL[np.dtype(np.float64)])


def computed_dtype(dtype) -> np.dtype:
    """The precision lowrank_core computes an input dtype in."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def random_matrix(shape, dtype, seed=0):
    """A random matrix of the dtype; integer dtypes get small random integers."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-5, 6, size=shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(dtype)


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


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def float_dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def chunked():
    """Products of any size taken in chunks of rows by whichever thread is free
    (parallel.hpp, chunk_count: by default only from 4e9 flops)."""
    before = _core._testing.chunked_flops(0)
    yield
    _core._testing.chunked_flops(before)
