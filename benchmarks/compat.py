"""``python -m benchmarks --suite compat``: the drop-in entry points against the
functions they replace, in one run.

Rows, on the benchmark's standard matrices (benchmarks/cases.py: known singular
values), each library at its defaults unless said:

- ``lowrank_core.compat.sklearn.randomized_svd`` vs scikit-learn's
  ``sklearn.utils.extmath.randomized_svd`` (n_iter "auto": 7 for small k);
- ``lowrank_core.compat.torch.svd_lowrank`` vs ``torch.svd_lowrank`` on CPU tensors
  (q = k + 10, niter = 2);
- ``lowrank_core.compat.scipy.svds`` vs SciPy's ``svds`` with ARPACK and PROPACK
  (tol = 0: machine precision);
- ``lowrank_core.sklearn.PCA`` vs ``sklearn.decomposition.PCA(svd_solver="randomized")``,
  each as the last step of a ``Pipeline`` after a ``StandardScaler``.

Each (case, row, library) runs in a process of its own, ``--rounds`` times with the
libraries alternating; the median time is reported, with the ratio
time(theirs) / time(ours) (> 1: lowrank_core is faster) and the accuracy of each:
the largest error of the k singular values relative to sigma_1, and the Frobenius
error of the rank-k approximation over the Eckart–Young optimum (1 is optimal). For
the Pipeline rows, the Frobenius error of the PCA reconstruction of the centred,
scaled data over the optimum from its exact SVD.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from benchmarks import cases as case_module
from benchmarks.bottleneck_speed import cpu_name

ROWS = {  # row -> (our library, their libraries)
    "randomized_svd": ("lowrank_core", ["scikit-learn"]),
    "svd_lowrank": ("lowrank_core", ["torch"]),
    "svds": ("lowrank_core", ["scipy-arpack", "scipy-propack"]),
    "pca_pipeline": ("lowrank_core", ["scikit-learn"]),
}


def default_cases(quick: bool):
    if quick:
        return case_module.smoke_suite()
    Case = case_module.Case
    return ([Case(3000, 2000, 20, kind, "float64") for kind in case_module.SPECTRA]
            + [Case(3000, 2000, 20, "inverse", "float32"),
               Case(1000, 1000, 10, "inverse", "float64"),
               Case(5000, 2000, 50, "inverse", "float64")])


# --- the worker: one library, one row, one matrix ------------------------------------


def _call(row: str, library: str, A, k: int):
    """A function of no arguments that runs the row once and returns (U, s, Vt) (s
    descending) or, for the pipeline, the reconstruction of the centred data."""
    if row == "randomized_svd":
        if library == "lowrank_core":
            from lowrank_core.compat.sklearn import randomized_svd
        else:
            from sklearn.utils.extmath import randomized_svd
        return lambda: randomized_svd(A, k, random_state=0)
    if row == "svd_lowrank":
        import torch

        T = torch.from_numpy(A)
        if library == "lowrank_core":
            from lowrank_core.compat.torch import svd_lowrank
        else:
            svd_lowrank = torch.svd_lowrank

        def run():
            torch.manual_seed(0)
            U, s, V = svd_lowrank(T, q=k + 10)
            return U[:, :k].numpy(), s[:k].numpy(), V[:, :k].T.numpy()
        return run
    if row == "svds":
        if library == "lowrank_core":
            from lowrank_core.compat.scipy import svds
            solver = "arpack"
        else:
            from scipy.sparse.linalg import svds
            solver = library.split("-")[1]

        def run():
            U, s, Vt = svds(A, k, solver=solver, rng=0)
            order = np.argsort(s)[::-1]
            return U[:, order], s[order], Vt[order]
        return run
    if row == "pca_pipeline":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if library == "lowrank_core":
            from lowrank_core.sklearn import PCA
        else:
            from sklearn.decomposition import PCA

        def run():
            pipeline = make_pipeline(StandardScaler(), PCA(k, svd_solver="randomized",
                                                          random_state=0))
            Z = pipeline.fit_transform(A)
            return Z @ pipeline[-1].components_
        return run
    raise ValueError(row)


def _accuracy(row: str, A, result, sigma, k: int) -> dict:
    if row == "pca_pipeline":
        from sklearn.preprocessing import StandardScaler

        X = StandardScaler().fit_transform(A).astype(np.float64)
        exact = np.linalg.svd(X, compute_uv=False)
        optimum = float(np.sqrt(np.sum(exact[k:] ** 2)))
        return {"fro_ratio": float(np.linalg.norm(X - result)) / optimum}
    U, s, Vt = result
    A64 = A.astype(np.float64)
    residual = float(np.linalg.norm(A64 - (U.astype(np.float64) * s) @ Vt.astype(np.float64)))
    optimum = float(np.sqrt(np.sum(sigma[k:] ** 2)))
    return {"sv_error": float(np.max(np.abs(s.astype(np.float64) - sigma[:k])) / sigma[0]),
            "fro_ratio": residual / optimum}


def worker(job: dict) -> dict:
    A = np.load(job["matrix"])
    sigma = np.asarray(job["sigma"])
    run = _call(job["row"], job["library"], A, job["k"])
    result = run()  # warm-up (and the result whose accuracy is reported)
    times = []
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    out = {"seconds": min(times)}
    if job["accuracy"]:
        out.update(_accuracy(job["row"], A, result, sigma, job["k"]))
    return out


def run_worker(job: dict, timeout: float) -> dict:
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.compat", "--worker",
                               json.dumps(job)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over the {timeout:.0f} s limit"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(library: str) -> str | None:
    """Why ``library`` cannot run here, or None."""
    module = {"scikit-learn": "sklearn", "torch": "torch"}.get(library)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return f"{library} is not installed"
    return None


# --- the driver ----------------------------------------------------------------------


def measure(case, row, rounds, repeats, timeout) -> dict:
    path, sigma = case_module.materialise(case)
    ours, theirs = ROWS[row]
    libraries = [ours, *theirs]
    base = {"row": row, "matrix": str(path), "k": case.k, "repeats": repeats,
            "sigma": sigma.tolist()}
    runs = {name: [] for name in libraries}
    extras = {}
    for round_ in range(rounds):
        order = libraries[round_ % len(libraries):] + libraries[:round_ % len(libraries)]
        for name in order:
            why = available(name)
            out = ({"error": why} if why else
                   run_worker(dict(base, library=name, accuracy=round_ == 0), timeout))
            if "error" in out:
                extras.setdefault(name, {})["error"] = out["error"]
                continue
            runs[name].append(out["seconds"])
            if round_ == 0:
                extras[name] = {k: v for k, v in out.items() if k != "seconds"}
    entry = {"case": case.label(), "row": row, "libraries": {}}
    for name in libraries:
        info = dict(extras.get(name, {}))
        if runs[name]:
            info["seconds"] = statistics.median(runs[name])
        entry["libraries"][name] = info
    mine = entry["libraries"][ours].get("seconds")
    for name in theirs:
        other = entry["libraries"][name].get("seconds")
        if mine and other:
            entry["libraries"][name]["ratio"] = other / mine
    return entry


def markdown(report: dict) -> str:
    lines = [
        "# Drop-in entry points against the functions they replace",
        "",
        f"- date: {report['date']}",
        f"- CPU: {report['cpu']} ({report['cores']} cores), Python {report['python']}, "
        f"NumPy {report['numpy']}; {report['versions']}",
        f"- command: `{report['command']}`",
        f"- note: {report['note']}",
        "",
        f"Median of {report['rounds']} rounds (each the fastest of {report['repeats']} "
        "calls after a warm-up, in a process of its own, libraries alternating). "
        "ratio = their time / ours (> 1: lowrank_core is faster). sv error: the largest "
        "error of the k singular values over sigma_1; fro: Frobenius error over the "
        "Eckart–Young optimum (1 is optimal; for the pipeline rows, of the PCA "
        "reconstruction of the scaled data).",
        "",
        "| matrix | row | ours (s) | ours sv error | ours fro | theirs | their time (s) "
        "| ratio | their sv error | their fro |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def number(info, key, fmt):
        return format(info[key], fmt) if key in info else info.get("error", "-")

    for entry in report["rows"]:
        ours, theirs = ROWS[entry["row"]]
        mine = entry["libraries"][ours]
        for name in theirs:
            other = entry["libraries"][name]
            lines.append(
                f"| {entry['case']} | {entry['row']} | {number(mine, 'seconds', '.3f')} | "
                f"{number(mine, 'sv_error', '.1e')} | {number(mine, 'fro_ratio', '.4f')} | "
                f"{name} | {number(other, 'seconds', '.3f')} | {number(other, 'ratio', '.2f')} | "
                f"{number(other, 'sv_error', '.1e')} | {number(other, 'fro_ratio', '.4f')} |")
    return "\n".join(lines) + "\n"


def _versions() -> str:
    parts = []
    for module in ("lowrank_core", "sklearn", "torch", "scipy"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            parts.append(f"{module} not installed")
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --suite compat",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--name", default=None, help="file name stem (default: compat-date)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny matrices: keeps the suite working; timings meaningless")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"comma-separated rows to run (default: all of {', '.join(ROWS)})")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one library may take on one row and matrix")
    parser.add_argument("--note", default="no other job was running",
                        help="the conditions of the run, written into the results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    rows = [row for row in args.rows.split(",") if row]
    unknown = [row for row in rows if row not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    command = "python -m benchmarks --suite compat " + " ".join(
        sys.argv[1:] if argv is None else argv)
    entries = []
    for case in default_cases(args.quick):
        for row in rows:
            entry = measure(case, row, args.rounds, args.repeats, args.timeout)
            entries.append(entry)
            print(json.dumps(entry), flush=True)
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  cpu=cpu_name(), cores=os.cpu_count(), python=platform.python_version(),
                  numpy=np.__version__, versions=_versions(), command=command,
                  note=args.note, rounds=args.rounds, repeats=args.repeats, rows=entries)
    stem = args.name or f"compat-{datetime.date.today().isoformat()}"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{stem}.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.out, f"{stem}.md"), "w") as f:
        f.write(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
