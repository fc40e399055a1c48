"""LeakSanitizer over every binding of the core (run by tools/sanitize.sh).

Runs a workload that calls each public routine and each raw entry point of
``lowrank_core._core`` many times, in a child Python under LeakSanitizer (the
sanitizer build, LD_PRELOAD=libasan.so, PYTHONMALLOC=malloc so that Python objects
are malloc blocks LSan can see), and reads LSan's report at exit. CPython itself
leaves memory behind at exit, so only leaks whose allocation stack passes through
lowrank_core's own code count. Exit status 1 on any such leak.

A self-test first leaks a block on purpose (through ctypes) and checks that the
same pipeline reports it, so a sanitizer that is not active, or a report format
the parser no longer understands, fails the check instead of passing it silently.

    python tools/leak_check.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap

WORKLOAD = textwrap.dedent(
    """
    import numpy as np
    import lowrank_core as lc
    from lowrank_core import _core

    repeats = {repeats}
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        A = rng.standard_normal((40, 30)).astype(dtype)
        F = np.asfortranarray(A)
        stack = rng.standard_normal((3, 8, 6)).astype(dtype)
        for _ in range(repeats):
            lc.svd(A, 5); lc.svd(F, 3)
            lc.randomized_svd(A, 5, seed=1); lc.randomized_svd(F, 4, seed=2)
            lc.randomized_svd(A, 5, seed=1, sketch=rng.standard_normal((30, 15)).astype(dtype))
            lc.singular_values(stack); lc.rank(stack); lc.rank(A, rtol=1e-3)
            lc.erank(stack); lc.stable_rank(A); lc.entropy_rank(A)
            lc.relative_error(A, F, ord="fro"); lc.relative_error(A, 0 * A)
            net = lc.Bottleneck(3, epochs=1, samples=64, dtype=np.dtype(dtype).name, seed=0)
            net.fit(A[:12, :10]).predict(A[:4, :10]); net.factors(); net.matrix()
            lc.Bottleneck(2, epochs=1, data="exact", seed=0).fit(A[:6, :6])
            raw = _core.bottleneck_network(np.dtype(dtype).name, [6, 4, 2, 6], True,
                                           "orthogonal", "momentum", 1e-3, 1, 32, 8,
                                           "stream", 3)
            raw.fit(A[:6, :6]); raw.parameters(); raw.intercept(); raw.singular_values()
            X = np.ascontiguousarray(A[:10, :6])
            raw.batch_gradients(X[:5], X[5:]); raw.step(1e-3)
            raw.exact_gradients(A[:6, :6])
            _core.gaussian_sketch(7, 3, 5, np.dtype(dtype).name)
            # Error paths: every exception thrown through the bindings.
            for bad in (lambda: _core.svd(A, 0),
                        lambda: _core.randomized_svd(
                            A, _core.RandomizedSvdOptions(rank=50, sketch_columns=60)),
                        lambda: lc.svd(np.full((3, 3), np.nan, dtype), 1),
                        lambda: lc.Bottleneck(9).fit(A[:4, :4]),
                        lambda: _core.bottleneck_network("float64", [4, 2**40, 4], True,
                                                         "he_normal", "adam", 1e-3, 1, 8,
                                                         4, "fixed", 0)):
                try:
                    bad()
                except (ValueError, TypeError, MemoryError, RuntimeError):
                    pass
    print("workload done")
    """
)

SELF_TEST = textwrap.dedent(
    """
    import ctypes
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    leaked = libc.malloc(4096)  # never freed, on purpose
    print("self-test leaked one block")
    """
)

RECORD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")


def leak_records(report: str):
    """(kind, bytes, stack frames) for each record of an LSan report."""
    records, current = [], None
    for line in report.splitlines():
        match = RECORD.match(line.strip())
        if match:
            current = (match.group(1), int(match.group(2)), [])
            records.append(current)
        elif current is not None and line.strip().startswith("#"):
            current[2].append(line.strip())
        elif not line.strip():
            current = None
    return records


def run_under_lsan(code: str) -> tuple[str, str]:
    """Runs `code` in a child Python with leak detection on; returns (stdout, LSan report)."""
    with tempfile.TemporaryDirectory() as folder:
        log = os.path.join(folder, "lsan")
        env = dict(os.environ)
        env["PYTHONMALLOC"] = "malloc"
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               f":detect_leaks=1:exitcode=0:fast_unwind_on_malloc=0:log_path={log}").lstrip(":")
        env["LSAN_OPTIONS"] = "report_objects=0:max_leaks=0"
        child = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                               text=True, timeout=1800)
        if child.returncode != 0:
            sys.exit(f"the workload failed (exit {child.returncode}):\n{child.stderr[-4000:]}")
        report = ""
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as handle:
                report += handle.read()
        return child.stdout, report


def ours(frames) -> bool:
    return any(re.search(r"lowrank_core|/_core\.|/_cuda\.|lowrank::", frame) for frame in frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        sys.exit("leak_check: run under the sanitizer build with LD_PRELOAD=libasan.so "
                 "(tools/sanitize.sh does both)")

    _, report = run_under_lsan(SELF_TEST)
    planted = [r for r in leak_records(report)
               if r[1] == 4096 and any("ctypes" in f or "ffi" in f for f in r[2])]
    if not planted:
        print(report[-4000:])
        sys.exit("leak_check self-test: LeakSanitizer did not report the planted leak")
    print("self-test: the planted 4096-byte leak was reported")

    out, report = run_under_lsan(WORKLOAD.format(repeats=args.repeats))
    assert "workload done" in out, out
    records = leak_records(report)
    mine = [r for r in records if ours(r[2])]
    print(f"workload: {args.repeats} repeats of every binding; LSan reported "
          f"{len(records)} leak records in all (CPython's own at exit), "
          f"{len(mine)} with lowrank_core in the allocation stack")
    for kind, size, frames in mine:
        print(f"\n{kind} leak of {size} bytes:\n  " + "\n  ".join(frames[:25]))
    return 1 if mine else 0


if __name__ == "__main__":
    sys.exit(main())
