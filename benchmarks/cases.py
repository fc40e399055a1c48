"""Benchmark matrices with known singular values, generated once and cached."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SPECTRA = ("inverse", "exponential", "lowrank_noise")


def spectrum(kind: str, p: int, k: int) -> np.ndarray:
    """p singular values: 1/i, exp(-i/10), or k values in [0.5, 1] over a 1e-3 floor."""
    i = np.arange(1, p + 1, dtype=np.float64)
    if kind == "inverse":
        return 1.0 / i
    if kind == "exponential":
        return np.exp(-(i - 1) / 10.0)
    if kind == "lowrank_noise":
        s = np.full(p, 1e-3)
        r = min(k, p)
        s[:r] = 1.0 - 0.5 * np.arange(r) / max(r, 1)
        return s
    raise ValueError(f"unknown spectrum {kind!r}; choose from {SPECTRA}")


@dataclass(frozen=True)
class Case:
    m: int
    n: int
    k: int
    spectrum: str
    dtype: str
    oversamples: int = 10
    power_iters: int = 4

    @property
    def sketch(self) -> int:
        return min(self.k + self.oversamples, self.m, self.n)

    def label(self) -> str:
        return f"{self.m}x{self.n} k={self.k} {self.spectrum} {self.dtype}"

    def key(self) -> str:
        spec = json.dumps({"m": self.m, "n": self.n, "spectrum": self.spectrum,
                           "k": self.k if self.spectrum == "lowrank_noise" else 0})
        return hashlib.sha1(spec.encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return asdict(self)


def cache_dir() -> Path:
    path = Path(os.environ.get("LOWRANK_BENCH_CACHE",
                               Path.home() / ".cache" / "lowrank_core_bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def materialise(case: Case) -> tuple[Path, np.ndarray]:
    """The case's matrix saved as .npy (C order, case dtype), and its singular values."""
    s = spectrum(case.spectrum, min(case.m, case.n), case.k)
    path = cache_dir() / f"{case.key()}-{case.dtype}.npy"
    if not path.exists():
        source = cache_dir() / f"{case.key()}-float64.npy"
        if source.exists():
            A = np.load(source)
        else:
            rng = np.random.default_rng(12345)
            p = s.size
            U, _ = np.linalg.qr(rng.standard_normal((case.m, p)))
            V, _ = np.linalg.qr(rng.standard_normal((case.n, p)))
            A = (U * s) @ V.T
            np.save(source, A)
        if case.dtype != "float64":
            np.save(path, A.astype(case.dtype))
        del A
    return path, s


def cpu_suite() -> list[Case]:
    """The full CPU run: the target size with every spectrum and dtype, and a size
    ladder from 1000x1000 to 20000x5000 with k from 10 to 200 on 1/i."""
    cases = []
    for dtype in ("float64", "float32"):
        for kind in SPECTRA:
            cases.append(Case(3000, 2000, 20, kind, dtype))
        for m, n, k in [(1000, 1000, 10), (5000, 2000, 50), (10000, 3000, 100),
                        (20000, 5000, 200)]:
            cases.append(Case(m, n, k, "inverse", dtype))
    return cases


def smoke_suite() -> list[Case]:
    """Tiny sizes: keeps the suite working (run by the tests); timings meaningless."""
    return [Case(60, 40, 5, "inverse", "float64"), Case(40, 60, 5, "lowrank_noise", "float32")]
