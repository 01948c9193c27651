"""Command line: ``python -m analysis track RUN_DIR --mlflow URI [--experiment NAME] [--tensorboard]``
(also ``python -m analysis.track``).

Logs a run dir (finished, stopped, or of an earlier release) to MLflow and/or TensorBoard the way
a sweep with a ``tracking`` section does while it runs (:mod:`analysis.track`); running it again
logs nothing twice. User errors print one line starting with ``error:`` and exit with status 2;
a tracker that fails (a server that is down) is one warning line and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from search.cli import EXIT_FAILED, run_command

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis track",
        description="Log a sweep's run dir to MLflow and/or TensorBoard (idempotent: what a tracker holds is not logged again).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run dir written by python -m search.run (STORAGE/NAME; local path or URI)")
    parser.add_argument("--mlflow", metavar="URI", help="MLflow tracking URI: sqlite:///mlflow.db, http://host:5000, ...")
    parser.add_argument("--experiment", metavar="NAME", help="MLflow experiment (default: the spec's name)")
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard event files (RUN_DIR/tensorboard/, rewritten from the records)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from analysis.results import ResultsError

    return run_command(build_parser(), _main, argv, ResultsError)


def _main(args: argparse.Namespace) -> int:
    from analysis.track import track_run_dir

    asked = (args.mlflow is not None) + bool(args.tensorboard)
    done = track_run_dir(args.run_dir, mlflow=args.mlflow, experiment=args.experiment, tensorboard=args.tensorboard)
    state = "ended" if done.complete else f"has not ended (unfinished trials, logged up to their latest checkpoint: {done.trials - done.finished})"
    for where in done.trackers:
        new = done.logged.get(where, 0)
        print(
            f"{where}: {done.trials} trials ({done.finished} finished), {done.refused} refused candidates, "
            f"{done.epochs} epoch rows, {'none' if new == 0 else new} of them new to it; the sweep {state}"
        )
    return 0 if len(done.trackers) == asked else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
