"""Fixtures and Hypothesis profiles. The helpers the tests import (matrices,
tolerances per dtype, the child-process runner) are in tests/helpers.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lowrank_core import _backend, _core

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


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module a behavioural test runs on: NumPy always (the CPU core), CuPy
    where a GPU is usable (the CUDA core); the same assertions hold for both."""
    if request.param == "numpy":
        return np
    available, why = _backend.gpu_status()
    if not available:
        pytest.skip(f"needs CuPy and a CUDA GPU (gpu_available() is False: {why})")
    import cupy

    return cupy
