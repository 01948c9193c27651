"""Command line: ``python -m analysis robustness RUN_DIR --trial ID`` (also ``python -m analysis.robustness``).

Draws one SNE trial's accuracy-vs-energy curve and measures its robustness to input noise
(:mod:`analysis.robustness`); writes a CSV and Markdown table and PNGs into ``--out``
(default ``RUN_DIR/robustness/TRIAL``). User errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from analysis.results import ResultsError
from analysis.robustness import RobustnessError, load_curve, load_trial, noise_robustness, plot_robustness, plot_subset_curve, trial_row
from search.cli import run_command
from search.rundir import RunDir

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis robustness",
        description="Noise robustness (teacher vs SNE subsets) and the accuracy-vs-energy curve of one SNE trial.",
    )
    parser.add_argument("run_dir", help="the sweep's run dir (STORAGE/NAME)")
    parser.add_argument("--trial", required=True, help=f"trial id (or a unique prefix) from {RunDir.file_name('trials')}")
    parser.add_argument("--out", help="output folder (default RUN_DIR/robustness/TRIAL)")
    parser.add_argument("--split", choices=["test", "val"], default="test", help="evaluation split (default test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--curve-only", action="store_true", help="only draw the accuracy-vs-energy curve")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    return run_command(build_parser(), _main, argv, ResultsError)


def _main(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise RobustnessError(f"{run_dir} is not a directory")
    row = trial_row(run_dir, args.trial)
    trial_id = str(row["trial_id"])
    out = Path(args.out) if args.out else run_dir / "robustness" / trial_id
    curve = load_curve(run_dir, trial_id)
    curve_png = plot_subset_curve(curve, out / "curve.png", title=f"SNE trial {trial_id}: accuracy vs energy")
    print(f"curve: {curve_png}")
    if args.curve_only:
        return 0
    _, ensemble, teacher, splits = load_trial(run_dir, trial_id)
    x, y = (splits.x_test, splits.y_test) if args.split == "test" else (splits.x_val, splits.y_val)
    pixels = (x * splits.std[:, None, None] + splits.mean[:, None, None]).clamp(0.0, 1.0)
    table = noise_robustness(teacher.model, ensemble, pixels, y, splits.mean, splits.std, seed=args.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.csv").write_text(table.to_csv())
    (out / "robustness.md").write_text(table.to_markdown())
    png = plot_robustness(table, out / "robustness.png", title=f"SNE trial {trial_id}: {args.split} accuracy under noise")
    print(table.to_markdown())
    print(f"table: {out / 'robustness.csv'}\nplot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

