"""The GPU benchmark: lowrank_core's CUDA core against what a CuPy or PyTorch user has.

    python -m benchmarks --suite gpu [--quick] [--out DIR] [--name STEM]

1. Randomized SVD, float32 and float64, at 8192 x 8192, 32768 x 8192 and
   100000 x 2000, k = 100 (10 oversamples, 7 power iterations: lowrank_core's
   "auto" for these sizes), on matrices with a known spectrum (sigma_i = 1/i), so
   the spectral error is reported against the optimum sigma_(k+1). Against
   ``torch.svd_lowrank`` on CUDA, Halko-Martinsson-Tropp written in a few lines of
   CuPy, and cuSOLVER's ``gesvdr`` where CuPy reaches it.
2. Singular values and numerical rank of stacks against ``cupy.linalg``.
3. The bottleneck network (data="fixed", Adam, batch 32) against the same network
   in PyTorch on CUDA: seconds per epoch.

Every call is timed in this process after one warm-up, with the device
synchronised around it; the median of the repeats is shown. Without a usable GPU
(no CUDA core in the build, no CuPy, no device) the report says why and the
command succeeds, so a script can run it anywhere. Results: ``<out>/<stem>.md``
and ``.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RSVD_SIZES = [(8192, 8192), (32768, 8192), (100000, 2000)]
QUICK_SIZES = [(2048, 1024)]
K, OVERSAMPLES, POWER_ITERS = 100, 10, 7
STACKS = [(1000, 32, 32), (100, 128, 128), (10, 512, 512)]
QUICK_STACKS = [(100, 32, 32)]


def _versions() -> dict:
    versions = {}
    for name in ("lowrank_core", "cupy", "torch", "numpy"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            versions[name] = None
    return versions


def _nvidia_smi() -> str | None:
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def gpu_meta(cupy) -> dict:
    runtime = cupy.cuda.runtime
    properties = runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    return {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "memory_gib": round(properties["totalGlobalMem"] / 2**30, 1),
        "driver": runtime.driverGetVersion(),
        "cuda_runtime_cupy": runtime.runtimeGetVersion(),
        "nvidia_smi": _nvidia_smi(),
    }


def timed(call, sync, repeats):
    """(median seconds, last result) of ``repeats`` calls after one warm-up."""
    result = call()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# ---- 1. randomized SVD ------------------------------------------------------------


# The functions below take the array module ``xp`` (CuPy; NumPy in the tests, which
# run them on the CPU) and ``sync``, which waits for the device.


def known_spectrum(xp, m, n, dtype, seed=0):
    """A (m, n) matrix U diag(1/i) V^T with random orthonormal U, V, and its spectrum
    (a NumPy array)."""
    rng = xp.random.default_rng(seed)
    p = min(m, n)
    U, _ = xp.linalg.qr(rng.standard_normal((m, p), dtype=np.float64))
    V, _ = xp.linalg.qr(rng.standard_normal((n, p), dtype=np.float64))
    sigma = 1.0 / np.arange(1, p + 1, dtype=np.float64)
    A = ((U * xp.asarray(sigma)) @ V.T).astype(dtype)
    del U, V
    return A, sigma


def spectral_error(xp, A, U, S, Vh, iterations=30, seed=1):
    """||A - U diag(S) Vh||_2 by power iteration on the residual (float64)."""
    x = xp.random.default_rng(seed).standard_normal(A.shape[1])
    A64 = A.astype(np.float64) if A.dtype != np.float64 else A
    U, S, Vh = (a.astype(np.float64) for a in (U, S, Vh))
    norm = 0.0
    for _ in range(iterations):
        y = A64 @ x - U @ (S * (Vh @ x))
        x = A64.T @ y - Vh.T @ (S * (U.T @ y))
        norm = float(xp.linalg.norm(x))
        if norm == 0:
            return 0.0
        x /= norm
    return math.sqrt(norm)


def halko(xp, A, k, l, q, seed):
    """Halko-Martinsson-Tropp Algorithms 4.4 and 5.1, as a CuPy user would write them."""
    omega = xp.random.default_rng(seed).standard_normal((A.shape[1], l), dtype=A.dtype)
    Q, _ = xp.linalg.qr(A @ omega)
    for _ in range(q):
        Z, _ = xp.linalg.qr(A.T @ Q)
        Q, _ = xp.linalg.qr(A @ Z)
    Ub, S, Vh = xp.linalg.svd(Q.T @ A, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k], Vh[:k]


def gesvdr_reachable() -> str:
    try:
        from cupy_backends.cuda.libs import cusolver
    except ImportError as error:
        return f"not reachable ({error})"
    if hasattr(cusolver, "xgesvdr"):
        return "CuPy binds cusolverDnXgesvdr, but this benchmark does not call it yet"
    return "not reachable (CuPy has no binding for cusolverDnXgesvdr)"


def randomized_svd_rows(xp, torch, sizes, repeats, sync, k=K):
    import lowrank_core as lc

    l = k + OVERSAMPLES
    rows = []
    for m, n in sizes:
        for dtype in ("float32", "float64"):
            A, sigma = known_spectrum(xp, m, n, dtype)
            optimum = float(sigma[k])
            contenders = {
                "lowrank_core": lambda: lc.randomized_svd(A, k, oversamples=OVERSAMPLES,
                                                          power_iters=POWER_ITERS, seed=0),
                f"{xp.__name__} (HMT in a few lines)": lambda: halko(xp, A, k, l,
                                                                      POWER_ITERS, 0),
            }
            if torch is not None:
                A_torch = torch.as_tensor(A, device="cuda")

                def torch_call():
                    torch.manual_seed(0)
                    U, S, V = torch.svd_lowrank(A_torch, q=l, niter=POWER_ITERS)
                    return (xp.asarray(U[:, :k]), xp.asarray(S[:k]),
                            xp.asarray(V[:, :k].T.contiguous()))

                contenders["torch.svd_lowrank"] = torch_call
            reference_time = None
            for library, call in contenders.items():
                row = {"op": "randomized_svd", "case": f"{m}x{n} {dtype} k={k}",
                       "library": library}
                try:
                    seconds, (U, S, Vh) = timed(call, sync, repeats)
                    row.update(median_s=seconds,
                               error_ratio=spectral_error(xp, A, U, S, Vh) / optimum)
                    if library == "lowrank_core":
                        reference_time = seconds
                    if reference_time:
                        row["ratio"] = seconds / reference_time
                except Exception as error:  # noqa: BLE001 - a failed contender is a row
                    row["error"] = f"{type(error).__name__}: {error}"[:200]
                rows.append(row)
            rows.append({"op": "randomized_svd", "case": f"{m}x{n} {dtype} k={k}",
                         "library": "cuSOLVER gesvdr", "note": gesvdr_reachable()})
            if torch is None:
                rows.append({"op": "randomized_svd", "case": f"{m}x{n} {dtype} k={k}",
                             "library": "torch.svd_lowrank",
                             "error": "PyTorch with CUDA is not available"})
            del A
    return rows


# ---- 2. stacks --------------------------------------------------------------------


def stack_rows(xp, stacks, repeats, sync):
    import lowrank_core as lc

    rows = []
    for shape in stacks:
        for dtype in ("float32", "float64"):
            A = xp.random.default_rng(2).standard_normal(shape, dtype=dtype)
            case = f"{'x'.join(map(str, shape))} {dtype}"
            want = None
            for op, library, call in [
                ("singular_values", "lowrank_core", lambda: lc.singular_values(A)),
                ("singular_values", f"{xp.__name__}.linalg.svd",
                 lambda: xp.linalg.svd(A, compute_uv=False)),
                ("rank", "lowrank_core", lambda: lc.rank(A)),
                ("rank", f"{xp.__name__}.linalg.matrix_rank",
                 lambda: xp.linalg.matrix_rank(A)),
            ]:
                row = {"op": op, "case": case, "library": library}
                try:
                    seconds, result = timed(call, sync, repeats)
                    row["median_s"] = seconds
                    if op == "singular_values":
                        if want is None:
                            want = result
                        scale = float(xp.abs(want).max())
                        row["max_relative_error"] = float(xp.abs(result - want).max()) / scale
                    else:
                        row["rank"] = int(xp.asarray(result).max())
                except Exception as error:  # noqa: BLE001
                    row["error"] = f"{type(error).__name__}: {error}"[:200]
                rows.append(row)
    return rows


# ---- 3. the bottleneck network -----------------------------------------------------


def bottleneck_rows(xp, torch, n, rank, samples, epochs, sync):
    import lowrank_core as lc

    A = xp.random.default_rng(3).standard_normal((n, n), dtype=np.float32)
    case = f"{n}x{n} rank {rank}, {samples} samples, batch 32, Adam, float32"
    rows = []
    net = lc.Bottleneck(rank, epochs=1, samples=samples, seed=0).fit(A)  # warm-up
    start = time.perf_counter()
    net = lc.Bottleneck(rank, epochs=epochs, samples=samples, seed=0).fit(A)
    sync()
    rows.append({"op": "bottleneck", "case": case, "library": "lowrank_core",
                 "median_s": (time.perf_counter() - start) / epochs,
                 "loss": float(net.loss_history_[-1])})
    if torch is None:
        rows.append({"op": "bottleneck", "case": case, "library": "torch",
                     "error": "PyTorch with CUDA is not available"})
        return rows
    from torch import nn

    torch.manual_seed(0)
    A_t = torch.as_tensor(A, device="cuda")
    X = torch.randn(samples, n, device="cuda")
    T = X @ A_t.T
    model = nn.Sequential(nn.Linear(n, n), nn.Linear(n, rank), nn.Linear(rank, n)).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()

    def epoch():
        order = torch.randperm(samples, device="cuda")
        for start in range(0, samples, 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss = loss_fn(model(X[batch]), T[batch])
            loss.backward()
            optimizer.step()
        return float(loss)

    epoch()  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        loss = epoch()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / epochs
    rows.append({"op": "bottleneck", "case": case, "library": "torch",
                 "median_s": seconds, "loss": loss, "ratio": seconds / rows[0]["median_s"]})
    return rows


# ---- the report -------------------------------------------------------------------


def markdown(rows, meta) -> str:
    lines = [f"# lowrank_core GPU benchmarks ({meta['date']})", "",
             f"- Command: `{meta['command']}`"]
    if meta.get("skipped"):
        lines += [f"- Not run: {meta['skipped']}", ""]
        return "\n".join(lines)
    gpu = meta["gpu"]
    lines += [f"- GPU: {gpu['gpu']} ({gpu['memory_gib']} GiB), driver API "
              f"{gpu['driver']}, CUDA runtime {gpu['cuda_runtime_cupy']} (CuPy's), "
              f"lowrank_core built with CUDA {meta['lowrank_core_cuda']}",
              f"- nvidia-smi: {gpu['nvidia_smi'] or 'not available'}",
              "- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v),
              f"- Each call timed after one warm-up, device synchronised around it; median of "
              f"{meta['repeats']}. ratio = library time / lowrank_core time (> 1: lowrank_core "
              "faster). Randomized SVD accuracy: spectral error / sigma_(k+1) (1 is optimal) "
              "on sigma_i = 1/i; singular values: max error / sigma_1 against lowrank_core's.",
              ""]
    for op in dict.fromkeys(r["op"] for r in rows):
        lines += [f"## {op}", "", "| case | library | median (s) | ratio | accuracy |",
                  "|---|---|---:|---:|---:|"]
        for r in (r for r in rows if r["op"] == op):
            median = f"{r['median_s']:.4f}" if "median_s" in r else "-"
            ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
            if "error" in r:
                accuracy = "failed: " + r["error"][:80]
            elif "note" in r:
                accuracy = r["note"]
            elif "error_ratio" in r:
                accuracy = f"{r['error_ratio']:.4f}"
            elif "max_relative_error" in r:
                accuracy = f"{r['max_relative_error']:.1e}"
            elif "rank" in r:
                accuracy = f"max rank {r['rank']}"
            else:
                accuracy = f"loss {r['loss']:.4g}" if "loss" in r else ""
            lines.append(f"| {r['case']} | {r['library']} | {median} | {ratio} | {accuracy} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --suite gpu",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default=None, help="file name stem (default: gpu-date)")
    args = parser.parse_args(argv)

    from benchmarks.__main__ import write_results
    from lowrank_core import _backend, _build_config

    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks --suite gpu " + " ".join(
            shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
        "python": platform.python_version(), "versions": _versions(),
        "repeats": args.repeats, "lowrank_core_cuda": _build_config.CUDA_VERSION,
    }
    stem = args.name or f"gpu-{dt.date.today().isoformat()}"
    available, why = _backend.gpu_status()
    if not available:
        meta["skipped"] = f"no usable GPU here ({why})"
        write_results(args.out, stem, meta, [], markdown([], meta))
        return 0

    import cupy

    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    meta["gpu"] = gpu_meta(cupy)
    rows = []
    sync = cupy.cuda.Device().synchronize

    def free():
        cupy.get_default_memory_pool().free_all_blocks()

    steps = [
        ("randomized SVD", lambda: randomized_svd_rows(
            cupy, torch, QUICK_SIZES if args.quick else RSVD_SIZES, args.repeats, sync)),
        ("stacks", lambda: stack_rows(cupy, QUICK_STACKS if args.quick else STACKS,
                                      args.repeats, sync)),
        ("bottleneck", lambda: bottleneck_rows(cupy, torch, 256 if args.quick else 1024,
                                               32, 2000 if args.quick else 10_000, 2, sync)),
    ]
    for label, step in steps:
        print(f"gpu benchmark: {label}", file=sys.stderr, flush=True)
        try:
            rows += step()
        except Exception as error:  # noqa: BLE001 - report what ran, say what failed
            rows.append({"op": label, "case": "-", "library": "-",
                         "error": f"{type(error).__name__}: {error}"[:200]})
        free()
        write_results(args.out, stem, meta, rows, markdown(rows, meta))  # after each step
    return 0


if __name__ == "__main__":
    sys.exit(main())
