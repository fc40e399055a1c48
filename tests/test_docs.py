"""The examples in the docstrings run and print what they say."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import lowrank_core
from lowrank_core import _backend, _bottleneck, _rank, _svd, data


@pytest.mark.parametrize("module", [_svd, _rank, _bottleneck, _backend, data], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    np.set_printoptions(legacy=False)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_api_is_pinned():
    for name in lowrank_core.__all__:
        assert hasattr(lowrank_core, name), name
        assert getattr(lowrank_core, name).__doc__, f"{name} has no docstring"
    for name in ["svd", "randomized_svd", "singular_values", "rank", "erank", "stable_rank",
                 "entropy_rank", "relative_error", "Bottleneck"]:
        assert hasattr(lowrank_core.reference, name), name
