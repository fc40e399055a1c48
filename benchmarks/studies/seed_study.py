"""The randomized SVDs' errors over many sketches, library by library.

    python -m benchmarks.studies.seed_study [--sizes 10000x3000,20000x5000] [--dtypes float64]
        [--seeds 10] [--libraries numpy,torch] [--same-sketch]
        [--out benchmarks/results] [--name NAME]

The benchmark reports the error of one call per library (seed 0). At matched k, l
and q every library here computes the same subspace iteration from a Gaussian
sketch, so in exact arithmetic their errors have one distribution over the sketch,
and one draw from it says little: at 10000x3000, k = 100 on the 1/i spectrum, single
calls give 1.012 to 1.031 of the optimum between libraries and dtypes. Whether
lowrank_core's error is as good as the best alternative's is a question about
those distributions.

For each 1/i case of the CPU suite kept by --sizes and --dtypes, each library
computes its randomized SVD with seeds 0..N-1 in a process of its own, and the
spectral error / sigma_(k+1) of every result is measured in float64 (Lanczos on
the residual, as the benchmark does). The table gives each library's mean, the
standard error of that mean, the smallest and largest error, and lowrank_core's
mean divided by each other library's mean with the difference in standard errors
of the difference. Nothing is timed.

Ten sketches leave a standard error of 0.25-0.45% on each mean at the largest
sizes, too coarse to tell 1.001x apart. With --same-sketch the comparison is
paired instead: for each seed, the library's process draws the sketch that library
draws (its own generator, reproduced in benchmarks/libraries.py's SKETCHES), runs
the library, and runs lowrank_core with `sketch=` set to that same matrix. The
draw then cancels out of the ratio of the two errors; what is left is the
algorithms' difference (rounding, the normalisation between power iterations,
lowrank_core's float32 and bfloat16 iterations). The table gives each library's
mean error, ours from its sketches, the mean ratio ours/theirs with its standard
error, and the largest ratio over the seeds.
"""

from __future__ import annotations

import math
import statistics
import sys

from benchmarks import cases as case_module
from benchmarks.libraries import RANDOMIZED, available
from benchmarks.studies import study_main

OURS = "lowrank_core"


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", default=None,
                        help="comma-separated MxN sizes of the CPU suite (default: all)")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--seeds", type=int, default=10, help="sketches per library")
    parser.add_argument("--libraries", default=None,
                        help="comma-separated alternatives (default: every installed one)")
    parser.add_argument("--same-sketch", action="store_true",
                        help="pair each library's error with lowrank_core's from the same sketch")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per worker")


def cases(sizes: str | None, dtypes: str) -> list:
    keep = set(sizes.split(",")) if sizes else None
    wanted = dtypes.split(",")
    return [case for case in case_module.cpu_suite()
            if case.spectrum == "inverse" and case.dtype in wanted
            and (keep is None or f"{case.m}x{case.n}" in keep)]


def summary(errors: list[float]) -> dict:
    mean = statistics.fmean(errors)
    sem = statistics.stdev(errors) / math.sqrt(len(errors)) if len(errors) > 1 else float("nan")
    return {"mean": mean, "sem": sem, "min": min(errors), "max": max(errors), "n": len(errors)}


def paired_summary(pairs: list[list[float]]) -> dict:
    """Means of (ours, theirs) from the same sketches, and the per-seed ratio's mean,
    standard error and largest value."""
    ratios = [ours / theirs for ours, theirs in pairs]
    spread = summary(ratios)
    return {"n": len(pairs), "ours_mean": statistics.fmean(p[0] for p in pairs),
            "theirs_mean": statistics.fmean(p[1] for p in pairs),
            "ratio_mean": spread["mean"], "ratio_sem": spread["sem"], "ratio_max": spread["max"]}


def run(args) -> list[dict]:
    from benchmarks.__main__ import run_worker

    names = args.libraries.split(",") if args.libraries else [n for n in RANDOMIZED if n != OURS]
    alternatives = [n for n in names if not n.startswith(OURS) and available(RANDOMIZED[n][1])]
    libraries = alternatives if args.same_sketch else [OURS] + alternatives
    rows = []
    for case in cases(args.sizes, args.dtypes):
        path, sigma = case_module.materialise(case)
        job = {"op": "randomized_svd", "matrix": str(path), "k": case.k,
               "sketch": case.sketch, "power_iters": case.power_iters,
               "singular_values": sigma[: case.k + 1].tolist(),
               "seeds": list(range(args.seeds))}
        for name in libraries:
            print(f"{case.label()}: {name}, {args.seeds} seeds", file=sys.stderr, flush=True)
            out = run_worker(dict(job, library=name, same_sketch=args.same_sketch),
                             args.timeout)
            row = {"case": case.to_dict(), "label": case.label(), "library": name,
                   "same_sketch": args.same_sketch}
            if "error" in out:
                row["failed"] = out["error"]
            elif args.same_sketch:
                row["pairs"] = out["error_pairs"]
                row.update(paired_summary(out["error_pairs"]))
            else:
                row["errors"] = out["error_ratios"]
                row.update(summary(out["error_ratios"]))
            rows.append(row)
    return rows


def comparison(ours: dict, other: dict) -> tuple[float, float]:
    """Our mean / theirs, and the difference of the means in standard errors of it."""
    spread = math.hypot(ours["sem"], other["sem"])
    return ours["mean"] / other["mean"], (ours["mean"] - other["mean"]) / spread


def paired_markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"# Randomized SVD errors, each library against lowrank_core from its own "
             f"sketches ({meta['date']})", "",
             f"- CPU: {meta['cpu']}; command: `{meta['command']}`",
             "- Matched settings (l = k + 10, 4 power iterations), seeds 0..N-1. For each "
             "seed the library's process draws the sketch the library draws, runs the "
             "library, and runs lowrank_core with `sketch=` set to that matrix. error: "
             "spectral error / sigma_(k+1) in float64 (1 is optimal). ratio: lowrank_core's "
             "error / the library's from the same sketch, mean over the seeds with its "
             "standard error, and the largest.", "",
             "| case | library | N | their mean error | our mean error (their sketches) "
             "| mean ratio | s.e. | largest ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "ratio_mean" not in r:
            lines.append(f"| {r['label']} | {r['library']} | - | failed: "
                         f"{r.get('failed', '')[:50]} | | | | |")
            continue
        lines.append(f"| {r['label']} | {r['library']} | {r['n']} | {r['theirs_mean']:.5f} | "
                     f"{r['ours_mean']:.5f} | {r['ratio_mean']:.6f} | {r['ratio_sem']:.6f} | "
                     f"{r['ratio_max']:.6f} |")
    return "\n".join(lines) + "\n"


def markdown(rows: list[dict], meta: dict) -> str:
    if any(r.get("same_sketch") for r in rows):
        return paired_markdown(rows, meta)
    lines = [f"# Randomized SVD errors over many sketches ({meta['date']})", "",
             f"- CPU: {meta['cpu']}; command: `{meta['command']}`",
             "- Each library at the benchmark's matched settings (l = k + 10, 4 power "
             "iterations), seeds 0..N-1, each library in its own process. error: spectral "
             "error / sigma_(k+1) in float64 (1 is optimal). s.e.: standard error of the "
             "mean. ours/theirs: lowrank_core's mean / this library's mean; z: the "
             "difference of the means over its standard error (|z| < 2: no difference "
             "these seeds can show).", "",
             "| case | library | N | mean error | s.e. | min | max | ours/theirs | z |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    by_case: dict = {}
    for r in rows:
        by_case.setdefault(r["label"], []).append(r)
    for label, group in by_case.items():
        ours = next((r for r in group if r["library"] == OURS and "mean" in r), None)
        for r in group:
            if "mean" not in r:
                lines.append(f"| {label} | {r['library']} | - | failed: "
                             f"{r.get('failed', '')[:50]} | | | | | |")
                continue
            if ours is not None and r is not ours:
                ratio, z = comparison(ours, r)
                versus = f"{ratio:.5f} | {z:+.1f}"
            else:
                versus = " | "
            lines.append(f"| {label} | {r['library']} | {r['n']} | {r['mean']:.5f} | "
                         f"{r['sem']:.5f} | {r['min']:.5f} | {r['max']:.5f} | {versus} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    def stem(args):
        return "cpu-same-sketch" if args.same_sketch else "cpu-seeds"

    return study_main("seed_study", __doc__, stem, run, markdown, argv,
                      add_arguments=add_arguments)


if __name__ == "__main__":
    sys.exit(main())
