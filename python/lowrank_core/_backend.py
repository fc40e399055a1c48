"""The one dispatch point: which compiled core runs on an array.

NumPy arrays go to ``lowrank_core._core`` (C++ on the CPU). CuPy arrays go to
the CUDA core, which mirrors ``_core`` name for name; a CuPy array given to a
build without it is an error, never a silent copy to the host.
"""

from __future__ import annotations

from . import _core
from ._checks import is_cupy

__all__ = ["backend_for", "gpu_available", "gpu_status"]


def backend_for(*arrays):
    """The module whose functions run on ``arrays`` (all on one device)."""
    on_gpu = [is_cupy(a) for a in arrays]
    if not any(on_gpu):
        return _core
    if not all(on_gpu):
        raise TypeError(
            "arrays are on different devices (NumPy and CuPy); move them to one device "
            "explicitly (lowrank_core never copies between devices silently)"
        )
    return _cuda_backend()


def _cuda_backend():
    try:
        from . import _cuda_api
    except ImportError as error:
        from . import _build_config

        why = ("CuPy or the CUDA libraries could not be loaded" if _build_config.HAS_CUDA
               else "this build of lowrank_core has no CUDA core")
        raise TypeError(
            f"a CuPy array was given, but {why} ({error}); install a build with CUDA and "
            "CuPy, or pass a NumPy array"
        ) from error
    return _cuda_api


def gpu_available() -> bool:
    """True when CuPy arrays can run here: this build has the CUDA core
    (``lowrank_core._cuda``), CuPy imports, and a CUDA GPU is usable. Never raises.

    Examples
    --------
    >>> import lowrank_core as lc
    >>> isinstance(lc.gpu_available(), bool)
    True
    """
    return gpu_status()[0]


def cpu_kernels() -> dict:
    """The kernels the CPU core's randomized SVD runs on this machine.

    Returns
    -------
    dict
        ``"products"``: the instruction set of the product kernels that stream A
        once per power iteration, ``"avx512"``, ``"avx2"`` or ``"none"`` (BLAS);
        ``"amx"``: whether the power iterations may run on AMX tiles in bfloat16
        pieces where the spectrum allows (this CPU has AMX-BF16 and the OS grants
        it; see ``mixed_precision`` in :func:`randomized_svd`).

    Examples
    --------
    >>> import lowrank_core as lc
    >>> sorted(lc.cpu_kernels())
    ['amx', 'products']
    """
    amx_available, amx_enabled = _core._testing.amx()
    return {"products": _core._testing.normal_kernel(),
            "amx": bool(amx_available and amx_enabled)}


def gpu_status() -> tuple[bool, str]:
    """``(gpu_available(), why)``: the reason in words (for skip messages). Never raises."""
    try:
        from . import _build_config

        if not _build_config.HAS_CUDA:
            return False, "this build of lowrank_core has no CUDA core (_cuda)"
        from . import _cuda

        if _cuda.device_count() < 1:
            return False, "no usable CUDA GPU (or no driver new enough for the CUDA " \
                f"{_build_config.CUDA_VERSION} runtime)"
        try:
            import cupy
        except ImportError:
            major = str(_build_config.CUDA_VERSION).split(".")[0]
            dist = _build_config.BUILT_FOR if _build_config.BUILT_FOR.startswith(
                "lowrank-core-cuda") else "lowrank_core"
            return False, f"CuPy is not installed (pip install \"{dist}[cuda{major}]\")"
        if not cupy.cuda.is_available():
            return False, "CuPy sees no usable CUDA GPU"
        return True, "CUDA core, CuPy and a GPU are present"
    except Exception as error:  # noqa: BLE001 - any failure means "no usable GPU"
        return False, f"checking for a GPU failed: {type(error).__name__}: {error}"
