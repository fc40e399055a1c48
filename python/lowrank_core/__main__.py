"""The command line: ``python -m lowrank_core demo``."""

from __future__ import annotations

import argparse
import sys


def _ranks(text: str) -> tuple[int, ...]:
    try:
        ranks = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not ranks or min(ranks) < 1:
        raise argparse.ArgumentTypeError("ranks must be positive integers")
    return ranks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lowrank_core",
        description="Low-rank matrix approximation with a compiled core.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="approximate a built-in image at a few ranks and compare with the optimum")
    demo.add_argument("--size", type=int, default=256, help="image side (default 256)")
    demo.add_argument("--ranks", type=_ranks, default=None,
                      help="comma-separated ranks (default 1,5,10,20,50)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the random methods")

    reproduce = commands.add_parser(
        "reproduce", help="regenerate the source paper's or blog's experiments (report, figures)")
    reproduce.add_argument("experiment", choices=["paper", "blog"])
    reproduce.add_argument("--out", default=None,
                           help="output folder (default: reproduction-<experiment>)")
    reproduce.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    reproduce.add_argument("--quick", action="store_true", help="small sizes, seconds")
    reproduce.add_argument("--no-progress", action="store_true", help="no progress bar")
    reproduce.add_argument("--max-n", type=int, default=None,
                           help="blog: the largest n, a power of two >= 256 (default 4096; "
                                "256 with --quick)")
    reproduce.add_argument("--sqrt-max-n", type=int, default=None,
                           help="blog: the largest n of the k = round(sqrt(n)) experiment, a "
                                "power of two >= 256 (default 4096; 256 with --quick)")

    args = parser.parse_args(argv)
    if args.command == "reproduce":
        from . import reproduce as reproduction

        if args.max_n is not None and (args.max_n < 256 or args.max_n & (args.max_n - 1)):
            parser.error("--max-n must be a power of two >= 256")
        if args.sqrt_max_n is not None and (args.sqrt_max_n < 256
                                            or args.sqrt_max_n & (args.sqrt_max_n - 1)):
            parser.error("--sqrt-max-n must be a power of two >= 256")
        report = reproduction.run(args.experiment, args.out or f"reproduction-{args.experiment}",
                                  device=args.device, quick=args.quick,
                                  progress=not args.no_progress, max_n=args.max_n,
                                  sqrt_max_n=args.sqrt_max_n)
        print(f"wrote {report} (tables), results.json and figures beside it")
    elif args.command == "demo":
        from . import _demo

        if args.size < 8:
            parser.error("--size must be at least 8")
        _demo.run(size=args.size, ranks=args.ranks or _demo.DEFAULT_RANKS, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
