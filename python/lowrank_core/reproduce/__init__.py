"""``python -m lowrank_core reproduce {paper,blog}``: regenerate the source experiments.

Each writes ``report.md`` (tables), PNG figures (with matplotlib, the ``plot``
extra) and ``results.json`` (every number) into ``--out``.
"""

from __future__ import annotations

from pathlib import Path

from ._common import Output

__all__ = ["run"]

TITLES = {
    "paper": "Reproduction: neural-network vs SVD low-rank approximation",
    "blog": "Reproduction: low-rank matrices stay low-rank under elementwise nonlinearities",
}


def run(experiment: str, out: Path, *, device: str = "cpu", quick: bool = False,
        progress: bool = True, command: str | None = None, max_n: int | None = None,
        sqrt_max_n: int | None = None) -> Path:
    """Runs one reproduction and returns the path of its report.md."""
    if experiment not in TITLES:
        raise ValueError(f"experiment must be one of {sorted(TITLES)}, got {experiment!r}")
    command = command or (f"python -m lowrank_core reproduce {experiment} --out {out}"
                          f" --device {device}" + (" --quick" if quick else "") +
                          (f" --max-n {max_n}" if max_n else "") +
                          (f" --sqrt-max-n {sqrt_max_n}" if sqrt_max_n else ""))
    output = Output(Path(out), TITLES[experiment], command)
    if experiment == "blog":
        from . import blog as module
    else:
        from . import paper as module
    if experiment == "blog":
        module.run(output, device=device, quick=quick, progress=progress, max_n=max_n,
                   sqrt_max_n=sqrt_max_n)
    else:
        module.run(output, device=device, quick=quick, progress=progress)
    if output.skipped_figures:
        import sys

        print("skipped figures (matplotlib not installed): " + ", ".join(output.skipped_figures),
              file=sys.stderr)
    return output.write()
