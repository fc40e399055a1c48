#!/usr/bin/env bash
# The sanitizer run of docs/reliability.md, also run by .ci/run: builds lowrank_core
# with AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover: any
# report aborts) in a virtual environment of its own, then, under the sanitizers,
#   1. the tests that cover every binding (tests/ less the slow end-to-end ones and
#      the RSS check, which ASan's quarantine would distort),
#   2. tools/leak_check.py (LeakSanitizer over every binding, with a self-test),
#   3. tools/fuzz_bindings.py (atheris): first every input of FUZZ_CORPUS, if given,
#      then new mutations: FUZZ_RUNS inputs in all (default 150000, about 40 s) from
#      FUZZ_SEED (default 1), nearly the same each time; or, with FUZZ_SECONDS set, that
#      many seconds from a random seed.
# Exits non-zero when any step fails or a sanitizer reports.
#
# atheris's coverage feedback does not work with libasan preloaded (libasan provides
# the coverage symbols), so under the sanitizers the fuzzer mutates blindly. .ci/run
# therefore first fuzzes a plain build coverage-guided, growing a corpus, and hands
# it over here as FUZZ_CORPUS to be replayed under ASan and UBSan.
#
#   tools/sanitize.sh                                     # everything
#   FUZZ_SECONDS=600 FUZZ_CORPUS=corpus/ tools/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${SANITIZE_VENV:-build/sanitize-venv}
fuzz_args=(-seed="${FUZZ_SEED:-1}" -runs="${FUZZ_RUNS:-150000}")
if [ -n "${FUZZ_SECONDS:-}" ]; then fuzz_args=(-max_total_time="$FUZZ_SECONDS"); fi

python3 -m venv "$venv"
# shellcheck disable=SC1091
. "$venv/bin/activate"
pip install -q --upgrade pip
pip install -q numpy scipy "pytest>=7" "hypothesis>=6" "threadpoolctl>=3" atheris \
  "scikit-build-core>=0.11" "pybind11>=2.12"
# The CUDA core's host side is instrumented too where a toolkit is found (AUTO).
LOWRANK_CORE_SANITIZE=address,undefined LOWRANK_CORE_WERROR=ON \
  pip install -q --no-build-isolation --no-deps -C build-dir=build/sanitize .

libasan=$(${CXX:-g++} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "sanitize.sh: libasan.so not found (${CXX:-g++} -print-file-name=libasan.so)" >&2
  exit 1
fi
# libstdc++ preloaded too: the python binary does not link it, and ASan's __cxa_throw
# interceptor must find it at start-up or the first C++ exception aborts.
export LD_PRELOAD="$libasan $(${CXX:-g++} -print-file-name=libstdc++.so)"
# CPython leaves memory behind at exit by design: leaks are checked by leak_check.py,
# which keeps only those whose allocation passes through lowrank_core.
# allocator_may_return_null: malloc of a request too large to allocate returns NULL
# (NumPy's MemoryError), as without ASan. (A throwing `new` aborts regardless, so the
# fuzzer leaves unallocatable sizes out under ASan.)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_init_order=1:check_initialization_order=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "+ sanitizers: pytest"
python -m pytest -q -p no:cacheprovider \
  --ignore=tests/test_demo.py --ignore=tests/test_reproduce.py \
  --ignore=tests/test_benchmarks.py --ignore=tests/test_docs.py --ignore=tests/test_memory.py
echo "+ sanitizers: leak check"
python tools/leak_check.py
echo "+ sanitizers: fuzzing (${fuzz_args[*]})"
# atheris writes a crashing input to the working directory; its bytes are also in the
# log (Base64 line). pipefail: the fuzzer's exit status, not grep's, decides.
fuzz_dir=$(mktemp -d)
trap 'rm -rf "$fuzz_dir"' EXIT
harness=$PWD/tools/fuzz_bindings.py
corpus=()
if [ -n "${FUZZ_CORPUS:-}" ]; then corpus=("$(cd "$FUZZ_CORPUS" && pwd)"); fi
(cd "$fuzz_dir" && PYTHONHASHSEED=0 python "$harness" "${corpus[@]}" "${fuzz_args[@]}" -print_final_stats=1 \
  2>&1 | grep -v '^INFO: Instrumenting' | tail -30)
echo "sanitizers: no report"
