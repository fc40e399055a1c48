"""Turn a wheel built with the CUDA core into one of the CUDA distributions.

    python tools/wheel_flavour.py WHEEL FLAVOUR OUTDIR      (FLAVOUR: cuda12 or cuda13)

The import package is ``lowrank_core`` in every flavour; the distribution is renamed
(``lowrank_core`` -> ``lowrank-core-cuda13x``, as CuPy names ``cupy-cuda13x``) and
declares NVIDIA's pip wheels of the libraries ``_cuda`` loads, which
``auditwheel repair --exclude`` then leaves out of the wheel (tools/build_wheels.sh).
The RECORD is written anew. Prints the new wheel's path. Standard library only.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import sys
import zipfile
from pathlib import Path

#: distribution name, the CUDA major version, and the NVIDIA wheels _cuda loads from
#: (cuBLAS and cuBLASLt, cuSOLVER, and cuSOLVER's own cuSPARSE and nvJitLink). CUDA 13's
#: wheels carry no suffix and install into site-packages/nvidia/cu13/lib; CUDA 12's
#: carry -cu12 and install one folder per library (CMakeLists.txt's rpath lists both).
FLAVOURS = {
    "cuda12": ("lowrank-core-cuda12x", 12, [
        "nvidia-cublas-cu12>=12.0,<13",
        "nvidia-cusolver-cu12>=11.4,<12",
        "nvidia-cusparse-cu12>=12.0,<13",
        "nvidia-nvjitlink-cu12>=12.0,<13",
    ]),
    "cuda13": ("lowrank-core-cuda13x", 13, [
        "nvidia-cublas>=13.0,<14",
        "nvidia-cusolver>=12.0,<13",
        "nvidia-cusparse>=12.6,<13",
        "nvidia-nvjitlink>=13.0,<14",
    ]),
}

#: the libraries auditwheel must leave out (they come from the wheels above)
EXCLUDED = ["libcublas.so.*", "libcublasLt.so.*", "libcusolver.so.*", "libcusparse.so.*",
            "libnvJitLink.so.*"]


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def convert(wheel: Path, flavour: str, outdir: Path) -> Path:
    if flavour not in FLAVOURS:
        raise SystemExit(f"flavour must be one of {sorted(FLAVOURS)}, got {flavour!r}")
    name, _, requires = FLAVOURS[flavour]
    parts = wheel.name[:-len(".whl")].split("-")
    old_dist, version, tags = parts[0], parts[1], parts[2:]
    new_dist = name.replace("-", "_")
    old_info, new_info = f"{old_dist}-{version}.dist-info", f"{new_dist}-{version}.dist-info"
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    names = [info.filename for info, _ in entries]
    if not any(n.startswith("lowrank_core/_cuda") for n in names):
        raise SystemExit(f"{wheel.name} has no lowrank_core/_cuda: build it with LOWRANK_CORE_CUDA=ON")
    out = outdir / ("-".join([new_dist, version, *tags]) + ".whl")
    rows = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.is_dir():  # folders are implied by their files (and not in RECORD)
                continue
            path = info.filename
            if path.startswith(old_info + "/"):
                path = new_info + path[len(old_info):]
            if path == f"{new_info}/RECORD":
                continue
            if path == f"{new_info}/METADATA":
                data = _metadata(data.decode("utf-8"), name, requires).encode("utf-8")
            new = zipfile.ZipInfo(path, date_time=info.date_time)
            new.external_attr = info.external_attr
            new.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(new, data)
            rows.append((path, _record_hash(data), str(len(data))))
        rows.append((f"{new_info}/RECORD", "", ""))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        target.writestr(f"{new_info}/RECORD", text.getvalue())
    return out


def _metadata(text: str, name: str, requires: list[str]) -> str:
    head, sep, body = text.partition("\n\n")  # headers, then the long description
    lines = head.split("\n")
    lines = [f"Name: {name}" if line.startswith("Name: ") else line for line in lines]
    # The new requirements go after the last unconditional one (before the extras').
    last = max(i for i, line in enumerate(lines)
               if line.startswith("Requires-Dist: ") and "extra ==" not in line)
    new = [f"Requires-Dist: {r}" for r in requires if f"Requires-Dist: {r}" not in lines]
    lines[last + 1:last + 1] = new  # (a wheel converted before keeps its requirements)
    return "\n".join(lines) + sep + body


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--exclude":
        print(" ".join(EXCLUDED))
    elif len(sys.argv) == 4:
        print(convert(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])))
    else:
        raise SystemExit(__doc__)
