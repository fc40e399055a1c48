#!/usr/bin/env bash
# The GPU machine's one call: build with the CUDA core, run the GPU tests, run the GPU
# benchmark, and write everything under $OUT (a temporary folder when unset) for
# committing to benchmarks/results/.
#
#   OUT=/some/folder tools/gpu_check.sh          # from the repository root
#
# Needs no registry: the build is `pip install --no-build-isolation --no-deps .`, so
# the image must already have CMake, nvcc, pybind11, scikit-build-core, NumPy and
# SciPy (and CuPy and PyTorch for the tests and the contenders). Each step has a time
# limit (seconds: GPU_CHECK_BUILD_S, GPU_CHECK_TESTS_S, GPU_CHECK_BENCH_S; by default
# they add up to under 8 minutes) so that one slow step cannot take the others' time;
# a failed or cut step is recorded and the next one still runs (the benchmark writes
# its tables after each of its parts, so a cut one keeps what it measured). GPU_CHECK_QUICK=1 runs the benchmark at small sizes.
# Without a GPU it still builds, the GPU tests skip (saying why) and the benchmark
# writes that there is no GPU. Exit status: 0 when every step succeeded.
set -u -o pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d -t lowrank-gpu-check.XXXXXX)}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
BUILD_S=${GPU_CHECK_BUILD_S:-210}
TESTS_S=${GPU_CHECK_TESTS_S:-150}
BENCH_S=${GPU_CHECK_BENCH_S:-100}
STAMP=$(date -u +%Y-%m-%d)
SUMMARY="$OUT/summary.md"
status=0

step() {  # step NAME SECONDS LOG COMMAND...: runs COMMAND, records its exit status
    local name=$1 seconds=$2 log=$3
    shift 3
    local start=$SECONDS
    echo "== $name (limit ${seconds} s)" >&2
    timeout --kill-after=10 "$seconds" "$@" >"$log" 2>&1
    local rc=$?
    local note=""
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note=" (cut at the ${seconds} s limit)"; fi
    echo "- $name: exit status $rc$note, $((SECONDS - start)) s; log: $(basename "$log")" \
        >>"$SUMMARY"
    tail -n 3 "$log" >&2
    [ "$rc" -eq 0 ] || status=1
    return 0
}

{
    echo "# GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- Command: \`OUT=$OUT tools/gpu_check.sh\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi not available')"
    echo "- CUDA toolkit: $(nvcc --version 2>/dev/null | tail -n 1 || echo 'nvcc not found')"
    echo "- Python: $($PYTHON -c 'import sys; print(sys.version.split()[0])')"
    echo
} >"$SUMMARY"
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true

step "build (CUDA core on)" "$BUILD_S" "$OUT/build.log" \
    env LOWRANK_CORE_CUDA="${LOWRANK_CORE_CUDA:-ON}" \
    "$PYTHON" -m pip install --no-build-isolation --no-deps -v .

"$PYTHON" -c 'import lowrank_core._backend as b; print("gpu_status:", b.gpu_status())' \
    >>"$SUMMARY" 2>&1 || status=1

step "GPU tests (test_gpu.py, test_cupy_path.py, the xp tests' cupy cases)" "$TESTS_S" \
    "$OUT/gpu-tests.txt" \
    "$PYTHON" -m pytest -q -rs -p no:cacheprovider -k "cupy or test_gpu" tests \
    --junitxml="$OUT/gpu-tests.xml"
echo "  - $(tail -n 1 "$OUT/gpu-tests.txt")" >>"$SUMMARY"

bench_args=(--out "$OUT" --name "gpu-$STAMP")
[ "${GPU_CHECK_QUICK:-0}" = 1 ] && bench_args+=(--quick)
step "GPU benchmark (python -m benchmarks --suite gpu)" "$BENCH_S" "$OUT/gpu-benchmark.log" \
    "$PYTHON" -m benchmarks --suite gpu "${bench_args[@]}"

echo >>"$SUMMARY"
echo "Files: $(cd "$OUT" && ls | tr '\n' ' ')" >>"$SUMMARY"
cat "$SUMMARY"
echo "Everything is in $OUT" >&2
exit "$status"
