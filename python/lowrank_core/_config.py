"""What this installation of lowrank_core is and what it runs on: :func:`show_config`."""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["show_config"]

#: the CUDA libraries the CUDA core loads (their file names start so)
_CUDA_LIBRARIES = ("libcublas", "libcublasLt", "libcusolver", "libcusparse", "libnvJitLink")


def _blas() -> str:
    # The core calls SciPy's BLAS and LAPACK (scipy.linalg.cython_blas/cython_lapack),
    # so the BLAS in use is the one SciPy was built with.
    try:
        import scipy

        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        text = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
        if blas.get("openblas configuration"):
            text += f" ({blas['openblas configuration']})"
        return f"SciPy {scipy.__version__}'s: {text}"
    except Exception as error:  # noqa: BLE001 - older SciPy has no mode="dicts"
        return f"SciPy's (its build configuration could not be read: {error})"


def _loaded_libraries(prefixes) -> list[str]:
    # The shared libraries of this process whose file names start with one of
    # `prefixes` (Linux: /proc/self/maps), by full path.
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith(prefixes))


def _cuda_section(build) -> dict:
    info = {"built": bool(build.HAS_CUDA), "toolkit": build.CUDA_VERSION,
            "architectures": build.CUDA_ARCHITECTURES if build.HAS_CUDA else None,
            "libraries": None, "load error": None}
    if build.HAS_CUDA:
        try:
            from . import _cuda  # noqa: F401  (loads cuBLAS and cuSOLVER)

            info["libraries"] = _loaded_libraries(_CUDA_LIBRARIES)
        except ImportError as error:
            info["load error"] = str(error)
    return info


def _config() -> dict:
    from . import __version__, _build_config, _core
    from ._backend import cpu_kernels, gpu_status

    limit, requested, recognised = _core._testing.isa_ceiling()
    usable, why = gpu_status()
    return {
        "lowrank_core": __version__,
        "built for": _build_config.BUILT_FOR,
        "location": os.path.dirname(os.path.abspath(__file__)),
        "python": f"{platform.python_implementation()} {platform.python_version()} "
                  f"({sys.platform}, {platform.machine()})",
        "cpu kernels": cpu_kernels(),
        "isa ceiling": {"ceiling": limit, "LOWRANK_CORE_ISA": requested or None,
                        "recognised": recognised},
        "blas": _blas(),
        "cuda": _cuda_section(_build_config),
        "gpu usable": usable,
        "gpu": why,
    }


def show_config(as_dict: bool = False):
    """What this installation is and what it runs on, for bug reports and for checking
    an install: the version and the wheel it came from, the CPU kernels the core picks
    on this machine (and ``LOWRANK_CORE_ISA``'s ceiling on them), the BLAS in use
    (SciPy's), whether the CUDA core is built, which CUDA libraries it loaded, and
    whether a GPU is usable and, if not, why.

    Parameters
    ----------
    as_dict : bool
        False (default): the report as text, one item a line. True: the same as a
        dict (keys ``"lowrank_core"``, ``"built for"``, ``"location"``, ``"python"``,
        ``"cpu kernels"``, ``"isa ceiling"``, ``"blas"``, ``"cuda"``, ``"gpu usable"``,
        ``"gpu"``).

    Never raises for a missing GPU, driver, CuPy or CUDA library: those are reported.

    Examples
    --------
    >>> import lowrank_core as lc
    >>> print(lc.show_config())  # doctest: +SKIP
    >>> lc.show_config(as_dict=True)["lowrank_core"] == lc.__version__
    True
    """
    config = _config()
    if as_dict:
        return config
    kernels, ceiling, cuda = config["cpu kernels"], config["isa ceiling"], config["cuda"]
    lines = [
        f"lowrank_core {config['lowrank_core']} ({config['built for']})",
        f"  location:     {config['location']}",
        f"  python:       {config['python']}",
        f"  cpu kernels:  products {kernels['products']}, amx {kernels['amx']}",
    ]
    if ceiling["LOWRANK_CORE_ISA"] is not None:
        note = "" if ceiling["recognised"] else \
            " (not one of generic, avx2, avx512, amx: ignored)"
        lines.append(f"  isa ceiling:  LOWRANK_CORE_ISA={ceiling['LOWRANK_CORE_ISA']}{note}")
    lines.append(f"  blas:         {config['blas']}")
    if cuda["built"]:
        lines.append(f"  cuda core:    built with CUDA {cuda['toolkit']} "
                     f"for {cuda['architectures']}")
        if cuda["load error"]:
            lines.append(f"  cuda libs:    not loaded: {cuda['load error']}")
        else:
            lines.append("  cuda libs:    " + (", ".join(cuda["libraries"]) or "none found"))
    else:
        lines.append("  cuda core:    not built (the CPU wheel, or a build without the toolkit)")
    lines.append(f"  gpu usable:   {config['gpu usable']} ({config['gpu']})")
    return "\n".join(lines)
