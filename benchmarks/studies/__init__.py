"""One-off studies: the measurements behind single decisions of the core.

Each runs as ``python -m benchmarks.studies.<name>`` and says in its docstring which
decision it measured (a limit, a margin, a path) and where the core uses it:

- ``precision_study``: the AMX (bfloat16 pieces) limits of the power iterations.
- ``copy_range_study``: float64's product after the iterations from the float32 copy.
- ``contract_study``: the leak margin of verified mixed precision.
- ``seed_study``: every library's randomized SVD error over many sketches.

They write ``<stem>-<date>.md`` and ``.json`` to ``benchmarks/results/`` (``--out``,
``--name`` change that); the suites that ``python -m benchmarks`` runs are in the
folder above.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"


def study_main(module: str, description: str, stem, run, markdown, argv=None,
               ready=None, add_arguments=None) -> int:
    """The command line of a study: ``--out`` and ``--name``, and what
    ``add_arguments(parser)`` adds; runs ``run()`` (``run(args)`` with added arguments)
    unless ``ready()`` says why not, and writes its rows as JSON and
    ``markdown(rows, meta)`` under ``--out``, named ``<stem>-<date>`` by default
    (``stem`` a string, or a function of the parsed arguments)."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.studies.{module}",
                                     description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="file name stem (default: what-date)")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    why_not = ready() if ready else None
    if why_not:
        print(why_not, file=sys.stderr)
        return 0
    from benchmarks.__main__ import cpu_model, write_results

    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu_model(),
            "command": f"python -m benchmarks.studies.{module} " + " ".join(
                argv if argv is not None else sys.argv[1:])}
    rows = run(args) if add_arguments else run()
    what = stem(args) if callable(stem) else stem
    name = args.name or f"{what}-{dt.date.today().isoformat()}"
    write_results(args.out, name, meta, rows, markdown(rows, meta))
    return 0
