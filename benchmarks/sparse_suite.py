"""``python -m benchmarks --suite sparse``: randomized SVD of sparse and operator input.

A Netflix-shaped synthetic rating matrix (480,189 x 17,770, 100 million stored values
with power-law row and column degrees, values 1..5, float32), smaller sparse matrices
and a LinearOperator around a dense matrix, each library in a process of its own
(alternating, ``--rounds`` times): lowrank_core against scikit-learn's
``randomized_svd`` (and ``PCA(svd_solver="arpack")`` for the centred rows),
``torch.svd_lowrank``/``pca_lowrank`` on a torch sparse tensor and
``scipy.sparse.linalg.svds`` (ARPACK, PROPACK). Reports the median time, the ratio to
lowrank_core (> 1: lowrank_core is faster), the largest relative error of the top-k
singular values against a high-accuracy reference, the estimated spectral residual
``||A - U S Vh||_2 / sigma_1`` and the peak memory beyond the matrix, as Markdown and
JSON in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("LOWRANK_BENCH_CACHE", "/tmp/lowrank_core-bench"))

# name: (rows, cols, stored values, dtype, kind)
MATRICES = {
    "netflix": (480_189, 17_770, 100_000_000, "float32", "ratings"),
    "sparse-1e-2": (100_000, 10_000, 10_000_000, "float64", "uniform"),
    "sparse-1e-4": (100_000, 10_000, 100_000, "float64", "uniform"),
    "operator": (20_000, 2_000, None, "float64", "dense"),
}
QUICK = {  # the same shapes scaled down, for a smoke run
    "netflix": (48_019, 1_777, 1_000_000, "float32", "ratings"),
    "sparse-1e-2": (10_000, 1_000, 100_000, "float64", "uniform"),
    "sparse-1e-4": (10_000, 1_000, 1_000, "float64", "uniform"),
    "operator": (2_000, 400, None, "float64", "dense"),
}


def power_law_degrees(count, total, exponent, rng):
    """`count` degrees summing to about `total`, Zipf-like (rank^-exponent)."""
    weights = (np.arange(1, count + 1, dtype=np.float64)) ** -exponent
    rng.shuffle(weights)
    return weights / weights.sum()


def generate(name, spec, seed=20261206):
    """The matrix `name` as CSR arrays (or a dense array), made reproducibly from the
    seed and cached as .npy files."""
    rows, cols, nnz, dtype, kind = spec
    stem = CACHE / f"{name}-{rows}x{cols}-{nnz}-{seed}"
    if kind == "dense":
        path = stem.with_suffix(".dense.npy")
        if not path.exists():
            CACHE.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(seed)
            sigma = 1.0 / np.arange(1, cols + 1)
            U, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
            V, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
            np.save(path, ((U * sigma) @ V.T).astype(dtype))
        return {"dense": str(path)}
    files = {part: f"{stem}.{part}.npy" for part in ("indptr", "indices", "data")}
    if not all(Path(f).exists() for f in files.values()):
        CACHE.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        if kind == "ratings":
            # Users and films with power-law activity and popularity; a rating's value
            # leans on the film's mean (1..5).
            p_row = power_law_degrees(rows, nnz, 0.6, rng)
            p_col = power_law_degrees(cols, nnz, 0.9, rng)
        else:
            p_row = np.full(rows, 1.0 / rows)
            p_col = np.full(cols, 1.0 / cols)
        counts = rng.multinomial(nnz, p_row)
        indptr = np.zeros(rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = np.empty(nnz, dtype=np.int32)
        data = np.empty(nnz, dtype=dtype)
        film_mean = rng.uniform(2.0, 4.5, size=cols)
        step = 5_000_000
        for start in range(0, nnz, step):  # in pieces: bounded temporaries
            stop = min(nnz, start + step)
            c = rng.choice(cols, size=stop - start, p=p_col).astype(np.int32)
            indices[start:stop] = c
            if kind == "ratings":
                data[start:stop] = np.clip(np.rint(film_mean[c] + rng.normal(0, 1, stop - start)),
                                           1, 5)
            else:
                data[start:stop] = rng.standard_normal(stop - start)
        if indptr[-1] < 2**31:
            indptr = indptr.astype(np.int32)
        for part, array in (("indptr", indptr), ("indices", indices), ("data", data)):
            np.save(files[part], array)
    return files


def load(files):
    import scipy.sparse as sp

    if "dense" in files:
        return np.load(files["dense"])
    indptr, indices, data = (np.load(files[p]) for p in ("indptr", "indices", "data"))
    shape = (len(indptr) - 1, int(indices.max()) + 1 if len(indices) else 0)
    return indptr, indices, data, shape


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak():
    """Resets the kernel's record of this process's peak RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_bytes():
    """VmHWM: the peak RSS since the last reset_peak()."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def spectral_residual(A, U, S, Vh, steps=12, seed=0):
    """||A - U S Vh||_2 by power steps on the residual operator (never formed)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(A.shape[1])
    x /= np.linalg.norm(x)
    value = 0.0
    for _ in range(steps):
        y = A @ x - U @ (S * (Vh @ x))
        z = A.T @ y - Vh.T @ (S * (U.T @ y))
        value = np.sqrt(np.linalg.norm(z))
        x = z / max(np.linalg.norm(z), 1e-300)
    return float(value)


def worker(job):
    """One timed call in this process: prints a JSON line."""
    spec = job["spec"]
    files = job["files"]
    library, k, q, center = job["library"], job["k"], job["q"], job["center"]
    loaded = load(files)
    import scipy.sparse as sp
    from scipy.sparse.linalg import aslinearoperator

    if isinstance(loaded, np.ndarray):
        A = aslinearoperator(loaded) if library == "lowrank_core" else loaded
        cols = loaded.shape[1]
    else:
        indptr, indices, data, _ = loaded
        A = sp.csr_matrix((data, indices, indptr), shape=(spec[0], spec[1]), copy=False)
        cols = spec[1]
    l = k + 10
    if library.startswith("lowrank_core"):
        import lowrank_core as lc

        if "q=" in library:  # lowrank_core at more power iterations: equal accuracy
            q = int(library.split("q=")[1])

        def run():
            r = lc.randomized_svd(A, k, oversamples=10, power_iters=q, seed=0, center=center)
            return r.U, r.S, r.Vh
    elif library == "sklearn":
        from sklearn.utils.extmath import randomized_svd

        if center:
            from sklearn.decomposition import PCA

            def run():
                p = PCA(n_components=k, svd_solver="arpack", random_state=0).fit(A)
                return None, p.singular_values_, p.components_
        else:
            def run():
                return randomized_svd(A, k, n_oversamples=10, n_iter=q, random_state=0)
    elif library == "torch":
        import torch

        if isinstance(A, np.ndarray):
            T = torch.from_numpy(A)
        else:
            T = torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                        torch.from_numpy(A.indices.astype(np.int64)),
                                        torch.from_numpy(A.data), size=A.shape)
            if center:
                T = T.to_sparse_coo()

        def run():
            if center:
                U, S, V = torch.pca_lowrank(T, q=l, center=True, niter=q)
            else:
                U, S, V = torch.svd_lowrank(T, q=l, niter=q)
            return U[:, :k].numpy(), S[:k].numpy(), V[:, :k].numpy().T
    elif library.startswith("svds"):
        from scipy.sparse.linalg import svds

        solver = library.split("-")[1]

        def run():
            U, S, Vh = svds(A, k, solver=solver, random_state=0)
            order = np.argsort(S)[::-1]
            return U[:, order], S[order], Vh[order]
    else:
        raise ValueError(library)
    # The memory a call takes beyond the matrix and the imported libraries: the peak
    # RSS of the first call over the RSS before it, with the kernel's record of the
    # peak reset first (getrusage's ru_maxrss keeps the parent's peak across exec).
    before = rss_bytes()
    reset_peak()
    start = time.perf_counter()
    U, S, Vh = run()
    seconds = time.perf_counter() - start
    peak = peak_rss_bytes()
    if seconds < 5:  # short calls: a warm-up call first (threads, caches), then the timed one
        del U, S, Vh
        start = time.perf_counter()
        U, S, Vh = run()
        seconds = time.perf_counter() - start
    out = {"seconds": seconds, "memory_beyond": max(peak - before, 0),
           "S": [float(s) for s in np.asarray(S)[:k]]}
    if U is not None and not center and not isinstance(loaded, np.ndarray):
        out["residual"] = spectral_residual(A, np.asarray(U, dtype=np.float64),
                                            np.asarray(S, dtype=np.float64),
                                            np.asarray(Vh, dtype=np.float64))
    elif U is not None and not center:
        out["residual"] = spectral_residual(loaded, U, S, Vh)
    print(json.dumps(out))


def reference(name, spec, files, k, center):
    """High-accuracy top-k singular values: lowrank_core's randomized SVD in float64
    with a sketch of 2k + 20 columns and 30 power iterations, whose triplets are
    checked by their residuals ||A^T u_i - s_i v_i|| (reported)."""
    cache = CACHE / f"reference-{name}-{spec[0]}x{spec[1]}-{k}-{int(center)}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import scipy.sparse as sp
    import lowrank_core as lc

    loaded = load(files)
    if isinstance(loaded, np.ndarray):
        A = loaded.astype(np.float64)
    else:
        indptr, indices, data, _ = loaded
        A = sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=spec[:2])
    r = lc.randomized_svd(A, k, oversamples=k + 20, power_iters=30, seed=12345, center=center)
    mean = np.asarray(A.mean(axis=0)).ravel() if center else np.zeros(A.shape[1])
    AtU = A.T @ r.U - np.outer(mean, r.U.sum(axis=0))
    worst = float(np.max(np.linalg.norm(AtU - r.Vh.T * r.S, axis=0)) / r.S[0])
    out = {"S": r.S.tolist(), "triplet_residual": worst}
    cache.write_text(json.dumps(out))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --suite sparse",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--name", default=None, help="file name stem (default: sparse-date)")
    parser.add_argument("--quick", action="store_true", help="the shapes scaled down")
    parser.add_argument("--matrices", default=",".join(MATRICES))
    parser.add_argument("--libraries",
                        default="lowrank_core,sklearn,torch,svds-arpack,svds-propack")
    parser.add_argument("--ranks", default="20,100")
    parser.add_argument("--q", type=int, default=4)
    parser.add_argument("--more-q", default="10",
                        help="extra lowrank_core rows at these power iterations (equal accuracy)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--note", default="no other job was running",
                        help="the conditions of the run, written into the results")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0

    table = QUICK if args.quick else MATRICES
    rows = []
    for name in args.matrices.split(","):
        spec = table[name]
        files = generate(name, spec)
        ranks = [int(r) for r in args.ranks.split(",")]
        if spec[4] == "dense":
            ranks = ranks[:1]
        for k in ranks:
            for center in ((False, True) if name == "netflix" else (False,)):
                ref = reference(name, spec, files, k, center)
                libraries = [lib for lib in args.libraries.split(",")
                             if not (center and lib.startswith("svds"))]
                libraries[1:1] = [f"lowrank_core q={q}" for q in args.more_q.split(",") if q]
                results = {lib: [] for lib in libraries}
                for round_ in range(args.rounds):
                    order = libraries[round_ % len(libraries):] + libraries[:round_ % len(libraries)]
                    for lib in order:
                        job = {"spec": list(spec), "files": files, "library": lib, "k": k,
                               "q": args.q, "center": center}
                        try:
                            done = subprocess.run(
                                [sys.executable, "-m", "benchmarks.sparse_suite", "--worker",
                                 json.dumps(job)], capture_output=True, text=True,
                                timeout=args.timeout)
                            if done.returncode != 0:
                                tail = done.stderr.strip().splitlines()
                                results[lib].append({"error": tail[-1] if tail else "failed"})
                            else:
                                results[lib].append(json.loads(done.stdout.strip().splitlines()[-1]))
                        except subprocess.TimeoutExpired:
                            results[lib].append({"error": f"over {args.timeout:.0f} s"})
                row = {"matrix": name, "shape": spec[:2], "nnz": spec[2], "dtype": spec[3],
                       "k": k, "q": args.q, "center": center,
                       "reference_triplet_residual": ref["triplet_residual"], "libraries": {}}
                ours = None
                for lib, runs in results.items():
                    good = [r for r in runs if "error" not in r]
                    if not good:
                        row["libraries"][lib] = {"error": runs[0]["error"] if runs else "not run"}
                        continue
                    first = good[0]
                    S = np.asarray(first["S"], dtype=np.float64)
                    R = np.asarray(ref["S"][: len(S)])
                    entry = {"seconds": statistics.median(r["seconds"] for r in good),
                             "s_error": float(np.max(np.abs(S - R) / R[0])),
                             "memory_beyond_mb": first["memory_beyond"] / 2**20}
                    if "residual" in first:
                        entry["residual"] = first["residual"] / ref["S"][0]
                    row["libraries"][lib] = entry
                    if lib == "lowrank_core":
                        ours = entry["seconds"]
                for entry in row["libraries"].values():
                    if ours and "seconds" in entry:
                        entry["ratio"] = entry["seconds"] / ours
                rows.append(row)
                print(json.dumps(row), flush=True)

    date = dt.date.today().isoformat()
    stem = args.name or f"sparse-{date}"
    import lowrank_core

    command = "python -m benchmarks --suite sparse " + " ".join(
        sys.argv[1:] if argv is None else argv)
    report = {"date": date, "command": command, "note": args.note,
              "lowrank_core": lowrank_core.__version__, "cpus": os.cpu_count(), "rows": rows}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, stem + ".json").write_text(json.dumps(report, indent=1) + "\n")
    Path(args.out, stem + ".md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report) -> str:
    lines = [f"# Sparse and operator input, {report['date']}", "",
             f"`{report['command']}` ({report['cpus']} CPUs; {report['note']}). Time: median "
             "of the rounds; ratio: time / lowrank_core's (> 1: lowrank_core is faster); "
             "S error: max |s_i - s_i(ref)| / s_1(ref) over the top k; residual: "
             "||A - U S Vh||_2 / s_1(ref), estimated by 12 power steps (uncentred rows "
             "only); memory: peak RSS of the call beyond the loaded matrix and the imported "
             "libraries. `lowrank_core q=N`: N power iterations instead of the row's q. "
             "Reference: lowrank_core in float64 with 2k + 20 columns and 30 power "
             "iterations; its largest triplet residual ||A^T u_i - s_i v_i|| / s_1 is "
             "given per row.", "",
             "| matrix | k | centred | library | time (s) | ratio | S error | residual | memory (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['matrix']} {row['shape'][0]}x{row['shape'][1]}, nnz "
                     f"{row['nnz'] or 'dense'}, {row['dtype']}, q = {row['q']} | {row['k']} | "
                     f"{row['center']} | (reference: triplet residual "
                     f"{row['reference_triplet_residual']:.1e}) | | | | | |")
        for lib, e in row["libraries"].items():
            if "error" in e:
                lines.append(f"| {row['matrix']} | {row['k']} | {row['center']} | {lib} | "
                             f"{e['error']} | | | | |")
                continue
            residual = f"{e['residual']:.3e}" if "residual" in e else ""
            lines.append(f"| {row['matrix']} | {row['k']} | {row['center']} | {lib} | "
                         f"{e['seconds']:.2f} | {e.get('ratio', float('nan')):.2f} | "
                         f"{e['s_error']:.1e} | {residual} | {e['memory_beyond_mb']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
