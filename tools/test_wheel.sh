#!/usr/bin/env bash
# Install a built wheel into a fresh virtual environment and run the tests against it,
# as a user without a compiler would have it:
#
#   tools/test_wheel.sh WHEEL [pytest arguments...]     (default: the whole suite)
#
# - the venv gets the wheel with its [test] extra from the package index (and, for a
#   CUDA flavour, NVIDIA's library wheels it declares); nothing is built;
# - the tests run from a copy of this tree without python/ (so the sources cannot be
#   imported; the tests read README.md, docs/ and benchmarks/ from the copy);
# - PATH holds the venv and the machine's tools less every C/C++/CUDA compiler, and
#   the script checks that none is found;
# - the build's environment variables (LOWRANK_CORE_CUDA, ...) are unset, and
#   LOWRANK_CORE_WHEEL_UNDER_TEST names the distribution, for tests/test_packaging.py.
# Environment: PYTHON (makes the venv; default python3, which must match the wheel's
# CPython version).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 WHEEL [pytest arguments...]" >&2; exit 2; }
wheel=$(realpath "$1"); shift
cd "$(dirname "$0")/.."
root=$PWD
PYTHON=${PYTHON:-python3}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The distribution's name, from the wheel's METADATA.
dist=$("$PYTHON" - "$wheel" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
print(next(l[6:] for l in meta.splitlines() if l.startswith("Name: ")))
PY
)

echo "+ fresh venv; pip install $(basename "$wheel")[test]"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --only-binary=:all: "$wheel[test]"

# The tree without the package's sources.
mkdir "$work/tree"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard \
    | grep -zv '^python/' | tar --null -T - -cf - | tar -xf - -C "$work/tree"
else
  tar --exclude=./python --exclude=./build --exclude=./wheelhouse -cf - . | tar -xf - -C "$work/tree"
fi

# A PATH without compilers: links to every other program on the current PATH.
mkdir "$work/bin"
IFS=: read -r -a dirs <<<"$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for program in "$dir"/*; do
    name=$(basename "$program")
    case $name in
      gcc|gcc-*|g++|g++-*|cc|c++|cpp|cpp-*|clang|clang-*|clang++*|nvcc|icx|icpx|tcc|\
      *-gcc|*-gcc-*|*-g++|*-g++-*|*-cc|*-c++) continue ;;
    esac
    [ -x "$program" ] && [ ! -e "$work/bin/$name" ] && ln -s "$program" "$work/bin/$name"
  done
done
clean_path="$work/venv/bin:$work/bin"
for compiler in gcc g++ cc c++ clang nvcc; do
  if PATH=$clean_path command -v "$compiler" >/dev/null; then
    echo "a compiler is still on the test PATH: $compiler" >&2
    exit 1
  fi
done
echo "  no compiler on the test PATH (gcc, g++, cc, c++, clang, nvcc: none found)"

cd "$work/tree"
run() {
  env -u LOWRANK_CORE_CUDA -u LOWRANK_CORE_WERROR -u LOWRANK_CORE_SANITIZE \
      -u LOWRANK_CORE_CUDA_ARCHS -u LOWRANK_CORE_FLAVOUR -u PYTHONPATH -u CUDACXX \
      PATH="$clean_path" LOWRANK_CORE_WHEEL_UNDER_TEST="$dist" "$@"
}
run python -c "
import sys, sysconfig, lowrank_core as lc
site = sysconfig.get_paths()['purelib']
assert lc.__file__.startswith(site), f'{lc.__file__} is not in {site}'
print(lc.show_config())"
echo "+ python -m pytest $* (against $dist from $(basename "$wheel"))"
run python -m pytest -p no:cacheprovider "$@"
