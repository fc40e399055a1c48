"""``python -m benchmarks --suite dask``: randomized SVD of Dask arrays that do not fit
in the workers' memory, lowrank_core against ``dask.array.linalg.svd_compressed``.

Both run on one ``LocalCluster`` of worker processes (2 by default, one thread and a
memory limit each), with the same k, power iterations q and sketch width
l = k + oversamples, on arrays made chunk by chunk from a seed (``map_blocks``):
nothing holds the whole array, so every pass over X makes its chunks again. Each
chunk made is counted in a file (an honest count, not an assumption): passes = chunks
made / chunks in X. Reported: time, passes over X, peak memory of any worker
(resident set, sampled every 0.2 s), and the relative error of the top-k singular
values against the spectrum the construction has exactly.

The construction (``known_spectrum_block``): X = C diag(s) P, C's columns the first n
vectors of the orthonormal DCT-II basis of length m, P a signed permutation fixed by
the seed, s_j = 1 / (j + 1). Its singular values are s exactly (checked against
numpy.linalg.svd on a smaller instance, reported as ``construction_error``). Both
methods draw a Gaussian sketch, so neither depends on the singular vectors' basis.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

CASES = {  # name: (m, n, dtype, chunks)
    "tall": (1_000_000, 1_000, "float64", (25_000, 1_000)),
    "2d": (100_000, 20_000, "float32", (5_000, 5_000)),
    # The same in half as many rows per chunk: a row of chunks, which one lowrank_core
    # task holds, is 200 MB instead of 400 MB.
    "2d-narrow": (100_000, 20_000, "float32", (2_500, 5_000)),
}


def spectrum(n):
    return 1.0 / np.arange(1, n + 1, dtype=np.float64)


def signed_permutation(n, seed):
    rng = np.random.default_rng(seed)
    return rng.permutation(n), np.where(rng.random(n) < 0.5, -1.0, 1.0)


def known_spectrum_block(m, n, dtype, seed, counter, block_info=None):
    """Rows r0:r1, columns c0:c1 of X = C diag(s) P (see the module's docstring)."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    if counter:
        with open(counter, "ab") as f:  # one byte per chunk made (appends are atomic)
            f.write(b".")
    order, signs = signed_permutation(n, seed)
    j = order[c0:c1]  # X[:, c] = signs[c] s_j c_j with j = order[c]
    weight = np.where(j == 0, math.sqrt(1.0 / m), math.sqrt(2.0 / m)) * spectrum(n)[j] * \
        signs[c0:c1]
    theta = np.pi * j / m
    # cos((i0 + r + 1/2) theta) = cos(i0 theta) cos((r + 1/2) theta)
    #                            - sin(i0 theta) sin((r + 1/2) theta): the cosines of a
    # few hundred rows, then products only (a cosine per entry costs more than the
    # SVD's own work on it). i0 runs over multiples of R whatever the chunk, so any
    # chunking gives the same bits.
    R = 256
    r = (np.arange(R, dtype=np.float64)[:, None] + 0.5) * theta
    cos_r, sin_r = np.cos(r), np.sin(r)
    out = np.empty((r1 - r0, c1 - c0), dtype=dtype)
    for i0 in range(r0 - r0 % R, r1, R):
        first, last = max(i0, r0), min(i0 + R, r1)
        a = i0 * theta
        out[first - r0:last - r0] = cos_r[first - i0:last - i0] * (np.cos(a) * weight) - \
            sin_r[first - i0:last - i0] * (np.sin(a) * weight)
    return out


def make_array(m, n, dtype, chunks, seed, counter):
    import dask.array as da

    chunks = da.core.normalize_chunks(chunks, shape=(m, n))
    return da.map_blocks(known_spectrum_block, m, n, dtype, seed, counter, dtype=dtype,
                         chunks=chunks, meta=np.empty((0, 0), dtype))


def construction_error(m=20_000, n=500, seed=1):
    """max_i |sigma_i(X) - s_i| / s_1 of the construction at (m, n), by numpy.linalg.svd."""
    X = make_array(m, n, "float64", (5_000, n), seed, None).compute(scheduler="sync")
    values = np.linalg.svd(X, compute_uv=False)
    return float(np.abs(values - spectrum(n)).max() / spectrum(n)[0])


class PeakMemory:
    """The largest resident set of any worker while alive, sampled every 0.2 s."""

    def __init__(self, client):
        self.client, self.peak, self.done = client, 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        import psutil

        def rss():
            return psutil.Process().memory_info().rss

        while not self.done.is_set():
            try:
                self.peak = max([self.peak, *self.client.run(rss).values()])
            except Exception:  # noqa: BLE001 - a worker restarting; sample again
                pass
            self.done.wait(0.2)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def run_one(client, library, case, k, q, oversamples, seed, counter_dir):
    import dask
    import dask.array as da

    import lowrank_core as lc

    m, n, dtype, chunks = case
    counter = os.path.join(counter_dir, f"{library}-{m}x{n}")
    open(counter, "wb").close()
    X = make_array(m, n, dtype, chunks, seed, counter)
    client.run(lambda: __import__("gc").collect())
    with PeakMemory(client) as memory:
        start = time.perf_counter()
        if library == "lowrank_core":
            U, S, Vh = lc.randomized_svd(X, k, oversamples=oversamples, power_iters=q,
                                         seed=seed, compute=True)
        else:
            iterator = library.split(":")[1]
            u, s, v = da.linalg.svd_compressed(X, k, iterator=iterator, n_power_iter=q,
                                               n_oversamples=oversamples, seed=seed,
                                               compute=True)
            U, S, Vh = dask.compute(u, s, v)
        seconds = time.perf_counter() - start
    made = os.path.getsize(counter)
    blocks = X.numblocks[0] * X.numblocks[1]
    exact = spectrum(n)[:k]
    return {
        "library": library, "m": m, "n": n, "dtype": dtype, "chunks": list(chunks),
        "k": k, "q": q, "l": k + oversamples, "seconds": seconds,
        "passes": made / blocks, "peak_worker_bytes": memory.peak,
        "sv_error": float(np.abs(np.asarray(S) - exact).max() / exact[-1]),
        "orthogonality": float(np.abs(np.asarray(U, np.float64).T @ np.asarray(U, np.float64)
                                      - np.eye(k)).max()),
    }


def markdown(rows, meta):
    lines = [f"# Dask: randomized SVD of arrays larger than the workers' memory ({meta['date']})",
             "",
             f"{meta['workers']} worker processes x {meta['threads_per_worker']} thread, "
             f"memory limit {meta['memory_limit']} each; {meta['cpu']} ({meta['cores']} cores). "
             f"k = {meta['k']}, q = {meta['q']}, l = {meta['l']}. Arrays made chunk by chunk "
             "from a seed (X = C diag(1/i) P, exact spectrum; construction checked at "
             f"20000 x 500: max error {meta['construction_error']:.1e} sigma_1). "
             "svd_compressed:power is Dask's default iterator, :QR re-orthonormalises "
             "each product (as lowrank_core does). Ratio: time / lowrank_core's time "
             "(> 1: lowrank_core is faster). sv error: max_i<=k |S_i - s_i| / s_k.",
             "", f"Command: `{meta['command']}`", "",
             "| array | library | time (s) | ratio | passes over X | peak worker memory (GB) "
             "| sv error | U orthogonality |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    base = {}
    for row in rows:
        if row["library"] == "lowrank_core" and "seconds" in row:
            base[(row["m"], row["n"])] = row["seconds"]
    for row in rows:
        label = f"{row['m']} x {row['n']} {row['dtype']}, chunks {tuple(row['chunks'])}"
        if "error" in row:
            lines.append(f"| {label} | {row['library']} | failed: {row['error']} | | | | | |")
            continue
        ratio = row["seconds"] / base[(row["m"], row["n"])] if (row["m"], row["n"]) in base \
            else float("nan")
        lines.append(f"| {label} | {row['library']} | {row['seconds']:.1f} | {ratio:.2f} | "
                     f"{row['passes']:g} | {row['peak_worker_bytes'] / 1e9:.2f} | "
                     f"{row['sv_error']:.1e} | {row['orthogonality']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --suite dask",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="tall,2d",
                        help=f"comma-separated, of {', '.join(CASES)} (default: tall,2d)")
    parser.add_argument("--row-scale", type=float, default=1.0,
                        help="multiply each case's rows by this (a smaller run; default 1)")
    parser.add_argument("--libraries", default="lowrank_core,svd_compressed:power,"
                                                "svd_compressed:QR")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("-q", type=int, default=2, help="power iterations")
    parser.add_argument("--oversamples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default=None, help="file name stem (default: dask-date)")
    args = parser.parse_args(argv)

    import dask
    from dask.distributed import Client, LocalCluster

    from benchmarks.__main__ import cpu_model, write_results

    cases = []
    for name in args.cases.split(","):
        if name not in CASES:
            parser.error(f"unknown case {name!r}; choose from {', '.join(CASES)}")
        m, n, dtype, (cm, cn) = CASES[name]
        m = int(round(m * args.row_scale / cm)) * cm or cm
        cases.append((m, n, dtype, (cm, cn)))
    rows = []
    error = construction_error()
    with tempfile.TemporaryDirectory() as counter_dir, \
            LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                         memory_limit=args.memory_limit, processes=True,
                         dashboard_address=None) as cluster, Client(cluster) as client:
        for case in cases:
            for library in args.libraries.split(","):
                print(f"{case[0]} x {case[1]} {case[2]}: {library}", file=sys.stderr, flush=True)
                try:
                    row = run_one(client, library, case, args.k, args.q, args.oversamples,
                                  args.seed, counter_dir)
                except Exception as failure:  # noqa: BLE001 - reported in the table
                    row = {"library": library, "m": case[0], "n": case[1], "dtype": case[2],
                           "chunks": list(case[3]), "error": f"{type(failure).__name__}: "
                                                            f"{str(failure)[:200]}"}
                print(row, file=sys.stderr, flush=True)
                rows.append(row)
    import distributed

    import lowrank_core

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "versions": {"lowrank_core": lowrank_core.__version__, "dask": dask.__version__,
                     "distributed": distributed.__version__, "numpy": np.__version__},
        "workers": args.workers, "threads_per_worker": args.threads_per_worker,
        "memory_limit": args.memory_limit, "k": args.k, "q": args.q,
        "l": args.k + args.oversamples, "construction_error": error,
        "command": "python -m benchmarks --suite dask " + " ".join(
            argv if argv is not None else sys.argv[1:]),
    }
    stem = args.name or f"dask-{dt.date.today().isoformat()}"
    write_results(args.out, stem, meta, rows, markdown(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
