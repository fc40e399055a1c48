"""The examples in the docstrings run and print what they say."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pytest

import lowrank_core
from lowrank_core import _backend, _bottleneck, _rank, _svd, data

ROOT = Path(__file__).resolve().parents[1]


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
                 "entropy_rank", "relative_error", "Bottleneck", "pca"]:
        assert hasattr(lowrank_core.reference, name), name


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", ["README.md", "docs/benchmarks-history.md", "docs/reliability.md",
                                  "docs/dask.md"])
def test_relative_links_reach_a_file_and_heading(page):
    # Links to benchmark results, code and other pages must not outlive their target
    # (benchmarks/results/ keeps only the latest result of each suite and study).
    source = ROOT / page
    text = source.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.M)
            if anchor not in {_slug(h) for h in headings}:
                broken.append(target)
    assert not broken, broken


def test_version_is_written_once():
    # pyproject.toml takes the version from __init__.py (scikit-build-core's regex
    # provider), so the installed metadata and __version__ cannot disagree.
    import importlib.metadata

    from lowrank_core import _build_config

    # A CUDA wheel is the distribution lowrank-core-cuda12x/13x (README.md, "Installing").
    dist = "lowrank_core" if _build_config.BUILT_FOR == "source build" else _build_config.BUILT_FOR
    assert lowrank_core.__version__ == importlib.metadata.version(dist)
    assert "version = " not in (ROOT / "pyproject.toml").read_text().split("[tool.")[0]
