"""``python -m benchmarks``: lowrank_core against the alternatives, side by side.

Each (case, operation, library) is timed in a process of its own (BLAS and
OpenMP pools that spin-wait slow each other down when they share a process),
in ``--rounds`` rounds that alternate the libraries, ``--repeats`` timed calls
per round after one warm-up. Reports the median, the ratio to lowrank_core
(> 1: lowrank_core is faster) and the accuracy each reached, as Markdown and JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks import cases as case_module
from benchmarks.libraries import OPERATIONS, available

# Suites with a command line of their own: name -> module (its main(argv)).
OWN_SUITES = {
    "gpu": "benchmarks.gpu",
    "bottleneck": "benchmarks.bottleneck_speed",
    "dask": "benchmarks.dask_suite",
    "tolerance": "benchmarks.tolerance",
    "sparse": "benchmarks.sparse_suite",
    "compat": "benchmarks.compat",
}
OWN_OPTIONS = tuple(OWN_SUITES)
EXACT_LIMIT = 3000 * 2000  # exact SVD/rank/singular values only up to this many entries


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def core_kernels() -> str:
    """lowrank_core's product kernels on this machine, for the report."""
    from lowrank_core import _core

    amx_available, amx_enabled = _core._testing.amx()
    amx = ("AMX (bfloat16 pieces) for the power iterations where the spectrum allows"
           if amx_available and amx_enabled else "no AMX")
    return f"{_core._testing.normal_kernel()} products, {amx}"


def run_worker(job: dict, timeout: float) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(job)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def schedule(case, rounds, repeats):
    """(rounds, repeats, warm-up) for a case: fewer calls and no warm-up call for the
    biggest cases (a randomized SVD of 20000 x 5000 at k = 200 takes seconds per
    call, so one-time costs vanish in it)."""
    if case.m * case.n * case.sketch > 5e9:
        return min(rounds, 2), 1, False
    return rounds, repeats, True


def measure(case, op, libraries, rounds, repeats, timeout, warmup=True):
    path, sigma = case_module.materialise(case)
    base = {"op": op, "matrix": str(path), "k": case.k, "sketch": case.sketch,
            "power_iters": case.power_iters, "repeats": repeats, "warmup": warmup,
            "singular_values": sigma[: case.k + 1].tolist() if op != "singular_values"
            else sigma.tolist()}
    runs = {name: [] for name in libraries}
    by_round = {name: [None] * rounds for name in libraries}  # each round's median
    extras = {}
    for round_ in range(rounds):
        order = libraries[round_ % len(libraries):] + libraries[: round_ % len(libraries)]
        for name in order:
            out = run_worker(dict(base, library=name, check_unmodified=round_ == 0,
                                  accuracy=round_ == 0), timeout)
            if "error" in out:
                extras[name] = {"error": out["error"]}
                continue
            times = out.pop("times")
            runs[name].extend(times)
            by_round[name][round_] = statistics.median(times)
            extras.setdefault(name, out)
    rows = []
    reference = statistics.median(runs["lowrank_core"]) if runs.get("lowrank_core") else None
    for name in libraries:
        row = {"case": case.to_dict(), "label": case.label(), "op": op, "library": name}
        row.update(extras.get(name, {}))
        if runs[name]:
            median = statistics.median(runs[name])
            row.update(median_s=median, samples=len(runs[name]),
                       ratio=median / reference if reference else None,
                       round_medians_s=by_round[name])
            if reference and name != "lowrank_core":
                # The two libraries' medians within each round (minutes apart at most), so a
                # slow spell of the machine that spans a round moves both.
                row["round_ratios"] = [mine / ours for mine, ours in
                                       zip(by_round[name], by_round["lowrank_core"])
                                       if mine is not None and ours is not None]
        rows.append(row)
    return rows


def add_arithmetic(row, machine) -> None:
    """For lowrank_core's randomized SVD: the flops and bytes of A it moves, and the
    fraction of the machine's GEMM rate and memory bandwidth they amount to."""
    if row["op"] != "randomized_svd" or row["library"] != "lowrank_core" or "median_s" not in row:
        return
    case = row["case"]
    m, n, q = case["m"], case["n"], case["power_iters"]
    l = min(case["k"] + case["oversamples"], m, n)
    item = 4 if case["dtype"] == "float32" else 8
    flops = (2 * q + 2) * 2.0 * m * n * l  # the products with A; QR and small SVD are O((m+n) l^2)
    # Fused power iterations read A once each, and one pass gives both Q and B (row-major
    # A, as here, when Y is well enough conditioned; otherwise B takes one pass more).
    passes = q + 1
    seconds = row["median_s"]
    row["arithmetic"] = {"gflop": flops / 1e9, "gflops": flops / seconds / 1e9,
                         "passes_over_A": passes,
                         "a_read_gbs": passes * m * n * item / seconds / 1e9}
    gemm = machine.get(f"gemm_gflops_{case['dtype']}")
    if gemm:
        row["arithmetic"]["fraction_of_gemm_rate"] = flops / seconds / 1e9 / gemm
    if machine.get("read_gbs"):
        row["arithmetic"]["fraction_of_bandwidth"] = row["arithmetic"]["a_read_gbs"] / machine[
            "read_gbs"]


def accuracy_text(row) -> str:
    if "error" in row:
        return "failed: " + row["error"][:60]
    if "error_ratio" in row:
        return f"{row['error_ratio']:.5f}"
    if "max_relative_error" in row:
        return f"{row['max_relative_error']:.1e}"
    if "rank" in row:
        return str(row["rank"])
    return ""


def markdown(rows, meta) -> str:
    lines = [f"# lowrank_core CPU benchmarks ({meta['date']})", "",
             f"- CPU: {meta['cpu']} ({meta['cores']} cores), threads: {meta['threads']}",
             f"- Command: `{meta['command']}`",
             f"- lowrank_core kernels: {meta.get('kernels', 'not recorded')}",
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
             "- Not installed: " + (", ".join(k for k, v in meta["versions"].items() if not v)
                                    or "none"),
             "- Each library timed in its own process, libraries alternating over "
             f"{meta['rounds']} rounds of {meta['repeats']} calls after a warm-up call (cases "
             "above 5e9 m*n*l: 2 rounds of 1 call, no warm-up); median shown. ratio = library "
             "time / lowrank_core time (> 1: lowrank_core faster); by round: the smallest and "
             "largest of that ratio taken round by round (each round's medians).",
             "- accuracy: randomized/exact SVD: spectral error / sigma_(k+1) (1 is optimal); "
             "singular values: max error / sigma_1; rank: the rank found.",
             ""]
    machine = meta.get("machine") or {}
    if machine:
        lines += [f"- Machine yardsticks: GEMM {machine.get('gemm_gflops_float64', 0):.0f} GF/s "
                  f"(float64), {machine.get('gemm_gflops_float32', 0):.0f} GF/s (float32) on "
                  f"3000x3000 products; reading memory {machine.get('read_gbs', 0):.1f} GB/s.", ""]
    for op in dict.fromkeys(r["op"] for r in rows):
        lines += [f"## {op}", "",
                  "| case | library | median (s) | ratio | by round | accuracy |",
                  "|---|---|---:|---:|---:|---:|"]
        for r in (r for r in rows if r["op"] == op):
            median = f"{r['median_s']:.4f}" if "median_s" in r else "-"
            ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
            spread = r.get("round_ratios")
            by_round = f"{min(spread):.2f}-{max(spread):.2f}" if spread else "-"
            lines.append(f"| {r['label']} | {r['library']} | {median} | {ratio} | {by_round} | "
                         f"{accuracy_text(r)} |")
        lines.append("")
    arithmetic = [r for r in rows if "arithmetic" in r]
    if arithmetic:
        lines += ["## lowrank_core's randomized SVD against the machine", "",
                  "The GEMM rate is the case dtype's. Where the spectrum allows, float64 runs "
                  "its power iterations in float32, and (with AMX) the power iterations run "
                  "in bfloat16 pieces, so these rows can pass 100%. A read counts the case "
                  "dtype's bytes for every pass.", "",
                  "| case | GFLOP | GF/s | of GEMM rate | passes over A | A read (GB/s) | "
                  "of bandwidth |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in arithmetic:
            a = r["arithmetic"]
            lines.append(f"| {r['label']} | {a['gflop']:.2f} | {a['gflops']:.1f} | "
                         f"{100 * a.get('fraction_of_gemm_rate', 0):.0f}% | {a['passes_over_A']} | "
                         f"{a['a_read_gbs']:.1f} | {100 * a.get('fraction_of_bandwidth', 0):.0f}% |")
        lines.append("")
    return "\n".join(lines)


def write_results(out: Path, stem: str, meta: dict, rows: list, text: str) -> None:
    """Writes ``stem``.json (meta and rows) and ``stem``.md (text) to ``out``; prints text."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    (out / f"{stem}.md").write_text(text)
    print(text)


def split_suite(argv):
    """(suite, the rest of ``argv``) when ``argv`` asks for a suite with options of its
    own (OWN_SUITES), else (None, argv)."""
    for i, arg in enumerate(argv):
        for suite in OWN_OPTIONS:
            if arg == "--suite" and argv[i + 1:i + 2] == [suite]:
                return suite, argv[:i] + argv[i + 2:]
            if arg == f"--suite={suite}":
                return suite, argv[:i] + argv[i + 1:]
    return None, argv


def main(argv=None) -> int:
    suite, rest = split_suite(list(sys.argv[1:] if argv is None else argv))
    if suite in OWN_SUITES:
        return importlib.import_module(OWN_SUITES[suite]).main(rest)
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="These suites take options of their own (python -m "
                                            "benchmarks --suite NAME --help): " + ", ".join(
                                                f"{name} ({module.replace('.', '/')}.py)"
                                                for name, module in OWN_SUITES.items())
                                            + ". One-off studies: benchmarks/studies/.")
    parser.add_argument("--suite", choices=["cpu", "smoke", *OWN_OPTIONS], default="cpu")
    parser.add_argument("--ops", default=",".join(OPERATIONS),
                        help="comma-separated operations (default: all)")
    parser.add_argument("--libraries", default=None,
                        help="comma-separated libraries (default: every installed one)")
    parser.add_argument("--sizes", default=None,
                        help="comma-separated MxN sizes to keep from the suite (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default=None, help="file name stem (default: suite-date)")
    args = parser.parse_args(argv)

    suite = case_module.cpu_suite() if args.suite == "cpu" else case_module.smoke_suite()
    if args.sizes:
        keep = set(args.sizes.split(","))
        suite = [case for case in suite if f"{case.m}x{case.n}" in keep]
    ops = [op for op in args.ops.split(",") if op]
    for op in ops:
        if op not in OPERATIONS:
            parser.error(f"unknown operation {op!r}; choose from {', '.join(OPERATIONS)}")
    modules = {name: module for op in OPERATIONS.values() for name, (_, module) in op.items()}
    versions = {name: available(module) for name, module in modules.items()}
    wanted = args.libraries.split(",") if args.libraries else list(modules)
    for name, version in versions.items():
        if version is None and name in wanted:
            print(f"note: {name} is not installed; skipped", file=sys.stderr)

    rows = []
    for case in suite:
        for op in ops:
            if op != "randomized_svd" and (case.m * case.n > EXACT_LIMIT or case.spectrum !=
                                           "inverse"):
                continue
            libraries = [name for name in OPERATIONS[op]
                         if name == "lowrank_core" or (name in wanted and versions.get(name))]
            print(f"{case.label()}: {op} ({', '.join(libraries)})", file=sys.stderr, flush=True)
            rounds, repeats, warmup = schedule(case, args.rounds, args.repeats)
            rows += measure(case, op, libraries, rounds, repeats, args.timeout, warmup)

    machine = {} if args.suite == "smoke" else run_worker({"op": "probe"}, args.timeout)
    for row in rows:
        add_arithmetic(row, machine)
    meta = {
        "machine": machine,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cores": os.cpu_count(),
        "threads": os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS")
        or "library defaults (all cores)",
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in
                                                      (argv if argv is not None else sys.argv[1:])),
        "python": platform.python_version(), "versions": versions,
        "rounds": args.rounds, "repeats": args.repeats, "kernels": core_kernels(),
    }
    stem = args.name or f"{args.suite}-{dt.date.today().isoformat()}"
    write_results(args.out, stem, meta, rows, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
