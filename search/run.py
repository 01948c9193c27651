"""Command line: ``python -m search.run SPEC [options]`` runs a sweep.

This module is the command line only: it parses the arguments, loads the spec (with ``--set``
overrides) and hands over to the sweep (:func:`search.sweep.run_sweep`) or the dry run
(:mod:`search.dry_run`).

User errors (a malformed spec, missing data, an unreachable cluster, an occupied run dir, a
GPU request on a machine without one, a damaged run dir on ``--resume``) print one line starting
with ``error:`` and exit with status 2 before anything is written. A sweep in which every trial
failed exits with status 1. SIGINT, SIGTERM and SIGHUP stop the sweep cleanly (exit 130, 143,
129) with one line naming the ``--resume`` command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.cli import EXIT_INTERRUPTED, fail
from search.sweep import SweepOptions, run_sweep

__all__ = ["SweepOptions", "build_parser", "main", "run_sweep"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Run a multi-objective Ray Tune + Optuna sweep described by a YAML spec.",
    )
    parser.add_argument("spec", help="path to the sweep spec (YAML), e.g. spaces/quickstart.yaml")
    parser.add_argument("--storage", metavar="DIR", help="parent of the run dir (default: run.storage); the run dir is DIR/NAME")
    parser.add_argument("--name", help="sweep name (default: the spec's name)")
    parser.add_argument("--num-samples", type=int, metavar="N", help="number of trials (overrides run.num_samples)")
    parser.add_argument("--address", metavar="ADDR", help="join a Ray cluster ('auto', 'HOST:PORT' or 'ray://HOST:PORT'); default: start Ray locally")
    parser.add_argument("--num-cpus", type=int, metavar="N", help="CPUs for a local Ray (default: all)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a spec value by dotted path (run.seed=3), or pin a searched parameter (model.width=128); repeatable",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate, print the resolved space and a few sampled configs; run nothing")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in the existing run dir")
    parser.add_argument(
        "--warm-start", dest="warm_start", action="append", default=[], metavar="RUN_DIR",
        help="tell the new sweep's study what an earlier sweep trained, before the first suggestion; repeatable",
    )
    parser.add_argument(
        "--warm-start-any", action="store_true",
        help="with --warm-start: take what fits from a sweep of another family, data set or objectives too",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while loading (imports, spec, data): nothing started yet
        print("\ninterrupted before the sweep started: nothing was run", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.address:
        from search.ray_session import bind_local_ray_to_loopback

        bind_local_ray_to_loopback()  # before anything imports Ray
    # Imports after argument parsing keep --help fast.
    from search.spec import SpecError, load_spec

    overrides = list(args.overrides)
    if args.num_samples is not None:
        if args.num_samples < 1:
            return fail("--num-samples must be >= 1")
        overrides.append(f"run.num_samples={args.num_samples}")
    try:
        spec = load_spec(args.spec, overrides)
    except SpecError as exc:
        return fail(str(exc))
    if args.resume and not args.dry_run:
        from search.resume import as_started
        from search.rundir import RunDir

        given = args.num_samples is not None or any(o.partition("=")[0].strip() == "run.num_samples" for o in args.overrides)
        run_dir = RunDir.at(args.storage or spec.run.storage, args.name or spec.name)
        spec, args.num_cpus = as_started(spec, run_dir, given, args.num_cpus, args.address)
    if args.dry_run:
        return _dry_run(spec, args)
    options = SweepOptions(
        storage=args.storage,
        name=args.name,
        address=args.address,
        num_cpus=args.num_cpus,
        resume=args.resume,
        progress=not args.quiet,
        command=(args.spec, *_rerun_options(args)),
        warm_start=tuple(args.warm_start),
        warm_start_any=args.warm_start_any,
    )
    return run_sweep(spec, options)


def _dry_run(spec: object, args: argparse.Namespace) -> int:
    """The real run's checks, each with the real run's line, then the preview: a dry run approves what it would start."""
    from search.dry_run import print_dry_run
    from search.sweep import checked_spec

    options = SweepOptions(
        storage=args.storage, name=args.name, address=args.address, resume=args.resume,
        warm_start=tuple(args.warm_start), warm_start_any=args.warm_start_any,
    )
    spec, checked, problem = checked_spec(spec, options)
    if problem:
        return fail(problem)
    print_dry_run(spec, warm=checked.warm)
    return 0


def _rerun_options(args: argparse.Namespace) -> list[str]:
    parts: list[str] = []
    for override in args.overrides:
        parts += ["--set", override]
    if args.num_samples is not None:
        parts += ["--num-samples", str(args.num_samples)]
    if args.num_cpus is not None:
        parts += ["--num-cpus", str(args.num_cpus)]
    if args.address:
        parts += ["--address", args.address]
    return parts


if __name__ == "__main__":
    sys.exit(main())
