"""What an installed copy says about itself (show_config), the instruction-set
ceiling LOWRANK_CORE_ISA (so the paths of an older CPU run here), and, when run by
tools/test_wheel.sh against an installed wheel, that the wheel is what was tested."""

from __future__ import annotations

import doctest
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import lowrank_core as lc
from lowrank_core import _backend, _build_config, _config, _core

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 300

# Set by tools/test_wheel.sh: the distribution whose installed wheel is under test.
WHEEL = os.environ.get("LOWRANK_CORE_WHEEL_UNDER_TEST")
needs_wheel = pytest.mark.skipif(
    not WHEEL, reason="tests of an installed wheel; tools/test_wheel.sh runs them")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    found = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(found.group(1).split()) if found else set()


def _child(code: str, isa: str | None) -> dict:
    """Runs ``code`` (which prints one JSON line) in a child with LOWRANK_CORE_ISA set
    (None: unset), returns what it printed."""
    env = dict(os.environ)
    env.pop("LOWRANK_CORE_ISA", None)
    if isa is not None:
        env["LOWRANK_CORE_ISA"] = isa
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


KERNELS = """
import json, numpy as np, lowrank_core as lc
from lowrank_core import _core
t = _core._testing
rng = np.random.default_rng(3)
U = np.linalg.qr(rng.standard_normal((600, 10)))[0]
V = np.linalg.qr(rng.standard_normal((300, 10)))[0]
S = np.logspace(0, -3, 10)
A = (U * S) @ V.T  # rank 10, known singular values
errors = {}
for dtype in ("float32", "float64"):
    r = lc.randomized_svd(A.astype(dtype), 10, seed=0)
    errors[dtype] = float(np.max(np.abs(r.S.astype(np.float64) - S)))
print(json.dumps({"ceiling": list(t.isa_ceiling()), "normal": t.normal_kernels(),
                  "panel": bool(t.panel_kernels()[0]), "amx": bool(t.amx()[0]),
                  "cpu_kernels": lc.cpu_kernels(), "errors": errors,
                  "config": lc.show_config()}))
"""


def test_isa_generic_runs_the_baseline_paths_and_stays_accurate():
    default = _child(KERNELS, None)
    generic = _child(KERNELS, "generic")
    assert default["ceiling"] == ["amx", "", True]
    assert generic["ceiling"] == ["generic", "generic", True]
    # Only BLAS products, no AVX-512 panels, no AMX: what an SSE2-only CPU runs.
    assert generic["normal"] == ["none"]
    assert generic["panel"] is False and generic["amx"] is False
    assert generic["cpu_kernels"] == {"products": "none", "amx": False}
    assert "LOWRANK_CORE_ISA=generic" in generic["config"]
    if {"avx2", "fma"} <= _cpu_flags():  # the ceiling changed what runs here
        assert "avx2" in default["normal"] and default["cpu_kernels"]["products"] != "none"
    for dtype, tol in (("float32", 1e-4), ("float64", 1e-10)):
        assert generic["errors"][dtype] < tol, generic["errors"]
        assert default["errors"][dtype] < tol, default["errors"]


def test_isa_avx2_ceiling_caps_the_products():
    capped = _child(KERNELS, "avx2")
    assert capped["ceiling"] == ["avx2", "avx2", True]
    assert set(capped["normal"]) <= {"none", "avx2"}
    assert capped["panel"] is False and capped["amx"] is False
    if {"avx2", "fma"} <= _cpu_flags():
        assert capped["normal"] == ["none", "avx2"]
        assert capped["cpu_kernels"]["products"] == "avx2"
    assert capped["errors"]["float64"] < 1e-10


def test_isa_unknown_name_is_reported_and_ignored():
    odd = _child(KERNELS, "sse9")
    assert odd["ceiling"] == ["amx", "sse9", False]
    assert "LOWRANK_CORE_ISA=sse9 (not one of generic, avx2, avx512, amx: ignored)" \
        in odd["config"]
    assert odd["normal"] == _child(KERNELS, None)["normal"]


def test_show_config_reports_this_install():
    config = lc.show_config(as_dict=True)
    assert config["lowrank_core"] == lc.__version__
    assert config["built for"] == _build_config.BUILT_FOR
    assert Path(config["location"]) == Path(lc.__file__).parent
    assert config["cpu kernels"] == lc.cpu_kernels()
    assert (config["gpu usable"], config["gpu"]) == _backend.gpu_status()
    assert config["cuda"]["built"] is bool(_build_config.HAS_CUDA)
    assert "blas" in config and config["blas"]
    text = lc.show_config()
    assert text.splitlines()[0] == f"lowrank_core {lc.__version__} ({_build_config.BUILT_FOR})"
    assert f"gpu usable:   {config['gpu usable']} ({config['gpu']})" in text
    if not config["gpu usable"]:
        assert config["gpu"]  # says why
    result = doctest.testmod(_config, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_metadata_files_carry_the_version():
    version = lc.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(version)}\]", changelog, re.M), \
        f"CHANGELOG.md has no section for {version}"
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf'^version: "{re.escape(version)}"(\s+#.*)?$', citation, re.M)
    assert "cff-version:" in citation and "references:" in citation


# --- run by tools/test_wheel.sh against an installed wheel ------------------------------

@needs_wheel
def test_the_installed_wheel_is_under_test():
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(lc.__file__).resolve().is_relative_to(site), lc.__file__
    assert Path(_core.__file__).resolve().is_relative_to(site), _core.__file__
    assert importlib.metadata.version(WHEEL) == lc.__version__
    assert _build_config.BUILT_FOR == WHEEL
    assert not ROOT.joinpath("python", "lowrank_core").exists()  # a copy without sources


@needs_wheel
def test_no_compiler_is_on_path():
    found = {tool: shutil.which(tool) for tool in ("gcc", "g++", "cc", "c++", "clang", "nvcc")}
    assert not any(found.values()), found


@needs_wheel
def test_the_wheel_declares_what_it_loads():
    requires = importlib.metadata.requires(WHEEL) or []
    plain = [r for r in requires if "extra ==" not in r]
    nvidia = [r for r in plain if r.startswith("nvidia-")]
    if _build_config.HAS_CUDA:
        names = {re.match(r"[\w-]+", r).group(0) for r in nvidia}
        suffix = "-cu12" if _build_config.CUDA_VERSION.startswith("12.") else ""
        assert {f"nvidia-cublas{suffix}", f"nvidia-cusolver{suffix}"} <= names, requires
        cuda = lc.show_config(as_dict=True)["cuda"]
        assert cuda["load error"] is None
        # cuBLAS and cuSOLVER come from NVIDIA's wheels in this environment.
        site = str(Path(sysconfig.get_paths()["purelib"]).resolve())
        for name in ("libcublas.so", "libcusolver.so"):
            paths = [p for p in cuda["libraries"] if os.path.basename(p).startswith(name)]
            assert paths and all(str(Path(p).resolve()).startswith(site) for p in paths), \
                cuda["libraries"]
        if not lc.gpu_available():
            assert lc.show_config(as_dict=True)["gpu"]
    else:
        assert not nvidia, requires
        assert not list(Path(lc.__file__).parent.glob("_cuda.*.so")), "the CPU wheel has _cuda"



def _wheel_flavour():
    import importlib.util

    spec = importlib.util.spec_from_file_location("wheel_flavour", ROOT / "tools" / "wheel_flavour.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record_ok(archive) -> bool:
    import base64
    import csv
    import hashlib

    record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    rows = list(csv.reader(archive.read(record).decode().splitlines()))
    listed = {row[0] for row in rows}
    for path, digest, size in rows:
        if path == record:
            continue
        data = archive.read(path)
        expected = "sha256=" + base64.urlsafe_b64encode(
            hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != expected or int(size) != len(data):
            return False
    return listed == set(archive.namelist())


def test_wheel_flavour_renames_and_declares_the_cuda_libraries(tmp_path):
    import zipfile

    flavour = _wheel_flavour()
    source = tmp_path / "lowrank_core-0.1.0-cp311-cp311-linux_x86_64.whl"
    metadata = ("Metadata-Version: 2.2\nName: lowrank_core\nVersion: 0.1.0\n"
                "Requires-Dist: numpy>=1.24\nRequires-Dist: scipy>=1.10\n"
                'Requires-Dist: pytest>=7; extra == "test"\nProvides-Extra: test\n\n# readme\n')
    with zipfile.ZipFile(source, "w") as z:
        z.writestr("lowrank_core/", b"")  # a folder entry, as wheels have
        z.writestr("lowrank_core/__init__.py", "")
        z.writestr("lowrank_core/_cuda.cpython-311-x86_64-linux-gnu.so", b"\x7fELF")
        z.writestr("lowrank_core-0.1.0.dist-info/METADATA", metadata)
        z.writestr("lowrank_core-0.1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        z.writestr("lowrank_core-0.1.0.dist-info/RECORD", "stale,,\n")
    out = flavour.convert(source, "cuda13", tmp_path)
    assert out.name == "lowrank_core_cuda13x-0.1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert not any(n.startswith("lowrank_core-0.1.0.dist-info") for n in names)
        text = z.read("lowrank_core_cuda13x-0.1.0.dist-info/METADATA").decode()
        assert _record_ok(z)
    headers = text.split("\n\n")[0].splitlines()
    assert "Name: lowrank-core-cuda13x" in headers
    requires = [h[len("Requires-Dist: "):] for h in headers if h.startswith("Requires-Dist: ")]
    assert requires[:2] == ["numpy>=1.24", "scipy>=1.10"]
    assert requires[2:6] == flavour.FLAVOURS["cuda13"][2]
    assert requires[6] == 'pytest>=7; extra == "test"'
    assert text.endswith("# readme\n")
    # A wheel without the CUDA core cannot become a CUDA flavour.
    with zipfile.ZipFile(tmp_path / "cpu.whl", "w") as z:
        z.writestr("lowrank_core/_core.so", b"")
    cpu = tmp_path / "lowrank_core-0.1.0-cp311-cp311-linux_x86_64.whl"
    (tmp_path / "cpu.whl").replace(cpu)
    with pytest.raises(SystemExit, match="no lowrank_core/_cuda"):
        flavour.convert(cpu, "cuda12", tmp_path)
    # Converting a converted wheel changes nothing (a repair step may see it twice).
    (tmp_path / "again").mkdir()
    again = flavour.convert(out, "cuda13", tmp_path / "again")
    with zipfile.ZipFile(again) as z:
        assert z.read("lowrank_core_cuda13x-0.1.0.dist-info/METADATA").decode() == text
    with pytest.raises(SystemExit, match="flavour must be one of"):
        flavour.convert(out, "cuda11", tmp_path)
