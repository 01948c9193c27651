"""Command line: ``python -m analysis pareto RUN_DIR [RUN_DIR ...]`` (also ``python -m analysis.pareto``): fronts, hypervolume, plots.

Prints each run's Pareto front as a table and its hypervolume with the reference point used;
with several run dirs (e.g. a TPE and a random sweep) the hypervolumes share one reference and
a last table says how much of the combined front each run found. ``--png``/``--html`` draw the
front(s), ``--progress-png``/``--progress-html`` the hypervolume after each trial, ``--csv``
writes the front rows. Works on a running sweep (it reads the latest ``trials.parquet``).

User errors (no such run dir, unknown metric, bad reference) print one line starting with
``error:`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from search.cli import run_command
from search.rundir import RunDir
from trainables.report import format_number

__all__ = ["build_parser", "format_front_table", "main"]

#: Metrics shown in the table after the objectives, when the run has them.
_TABLE_METRICS = ("test_accuracy", "val_accuracy", "energy_uj", "macs", "synops", "params", "density")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis pareto",
        description="Pareto front and hypervolume of one or more sweeps (run dirs: local paths or pyarrow URIs such as s3://bucket/runs/NAME).",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run dir(s) written by python -m search.run (STORAGE/NAME)")
    parser.add_argument("--objectives", nargs="+", metavar="METRIC:MODE", help="objectives, e.g. val_accuracy:max energy_uj:min (default: the spec's)")
    parser.add_argument("--reference", nargs="+", type=float, metavar="V", help="hypervolume reference point, one value per objective (default: recorded in the run dir's " + RunDir.file_name("analysis") + ", else derived once and recorded)")
    parser.add_argument("--include-partial", action="store_true", help="let trials stopped early by the scheduler compete (off: their values are partial-budget)")
    parser.add_argument("--png", metavar="FILE", help="write the front figure as PNG")
    parser.add_argument("--html", metavar="FILE", help="write the front figure as self-contained interactive HTML")
    parser.add_argument("--progress-png", metavar="FILE", help="write hypervolume vs trials as PNG")
    parser.add_argument("--progress-html", metavar="FILE", help="write hypervolume vs trials as interactive HTML")
    parser.add_argument("--csv", metavar="FILE", help="write the front trials (all columns) as CSV")
    parser.add_argument("--title", help="figure title (default: run names, hypervolume, reference)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    from analysis.results import ResultsError

    return run_command(build_parser(), _main, argv, ResultsError)


def _main(args: argparse.Namespace) -> int:
    from analysis.results import (
        ResultsError,
        common_reference,
        fix_reference,
        hypervolume_trace,
        load_run,
        parse_objectives,
        run_front,
    )

    runs = [load_run(path) for path in args.run_dirs]
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        runs = [_renamed(run) for run in runs]  # same names from different storages: tell them apart
    objectives = parse_objectives(args.objectives, runs[0].spec)
    if args.reference is not None and len(args.reference) != len(objectives):
        raise ResultsError(f"--reference needs {len(objectives)} values, one per objective ({', '.join(o.metric for o in objectives)})")
    references = [fix_reference(run, objectives, args.reference) for run in runs]
    reference = references[0] if len(runs) == 1 else common_reference(references)
    fronts = [run_front(run, objectives, reference, include_partial=args.include_partial) for run in runs]

    for front in fronts:
        print(format_front_table(front))
        print()
    if len(fronts) > 1:
        print(_comparison(fronts))
        print()

    written = []
    if args.png or args.html:
        from analysis.plot import front_plot, render_front_matplotlib, render_front_plotly, write_html, write_png

        if len(objectives) not in (2, 3):
            raise ResultsError(f"--png/--html draw 2 or 3 objectives, got {len(objectives)}; choose them with --objectives")
        data = front_plot(fronts, title=args.title)
        if args.png:
            written.append(write_png(render_front_matplotlib(data), args.png))
        if args.html:
            written.append(write_html(render_front_plotly(data), args.html))
    if args.progress_png or args.progress_html:
        from analysis.plot import progress_plot, render_progress_matplotlib, render_progress_plotly, write_html, write_png

        traces = [hypervolume_trace(run, objectives, reference, include_partial=args.include_partial) for run in runs]
        data = progress_plot(traces)
        if args.progress_png:
            written.append(write_png(render_progress_matplotlib(data), args.progress_png))
        if args.progress_html:
            written.append(write_html(render_progress_plotly(data), args.progress_html))
    if args.csv:
        written.append(_write_csv(fronts, args.csv))
    for path in written:
        print(f"wrote {path}")
    return 0


def _renamed(run: Any) -> Any:
    from dataclasses import replace

    parent = os.path.basename(os.path.dirname(run.root.rstrip("/")))
    return replace(run, name=f"{parent}/{run.name}" if parent else run.name)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [indent + "  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))]
    for row in rows:
        lines.append(indent + "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def format_front_table(front: Any) -> str:
    """The text block printed for one run: counts, the front as a table, the hypervolume."""
    run = front.run
    total = run.trials.num_rows
    excluded = ", ".join(f"{n} {reason}" for reason, n in sorted(front.excluded.items()))
    lines = [
        f"{run.name}  ({run.location}): {total} trials, {len(front.points)} compete"
        + (f"; not on the front: {excluded}" if excluded else ""),
        "objectives: " + ", ".join(f"{o.metric} ({o.mode})" for o in front.objectives)
        + "; constraints: " + (", ".join(c.text for c in run.spec.constraints) or "none")
        + (f" ({int((~front.feasible).sum())} competing trials infeasible)" if (~front.feasible).any() else ""),
    ]
    if not len(front.front):
        lines.append("Pareto front: empty (no completed, full-budget, feasible trial with finite objectives yet)")
    else:
        knee = front.trial_ids[front.knee] if front.knee is not None else "-"
        lines.append(f"Pareto front: {len(front.front)} of {int(front.feasible.sum())} feasible trials (knee {knee}, marked *)")
        columns = front.trials.column_names
        metrics = [m for m in _TABLE_METRICS if m in columns and m not in front.names]
        params = list(run.spec.space)
        headers = ["", "trial", *front.names, *metrics, *params]
        rows = []
        for i in front.front:
            row = front.row(int(i))
            rows.append(["*" if i == front.knee else "", str(row["trial_id"]), *(format_number(row.get(c)) for c in (*front.names, *metrics, *params))])
        lines.append(_table(headers, rows))
    lines.append(f"hypervolume: {front.hypervolume:.6g}   reference: {front.reference.describe()}")
    return "\n".join(lines)


def _comparison(fronts: Sequence[Any]) -> str:
    from analysis.pareto import pareto_mask

    points = np.vstack([f.points[f.feasible] for f in fronts])
    owner = np.concatenate([np.full(int(f.feasible.sum()), k) for k, f in enumerate(fronts)])
    combined = pareto_mask(points, fronts[0].directions) if len(points) else np.zeros(0, dtype=bool)
    rows = []
    for k, front in enumerate(fronts):
        share = int((combined & (owner == k)).sum())
        rows.append(["", front.run.name, str(front.run.trials.num_rows), str(len(front.points)), str(len(front.front)), f"{front.hypervolume:.6g}", f"{share}/{int(combined.sum())}"])
    head = f"comparison (one reference for all: {fronts[0].reference.describe()})"
    return head + "\n" + _table(["", "run", "trials", "compete", "front", "hypervolume", "on combined front"], rows)


def _write_csv(fronts: Sequence[Any], path: str) -> str:
    rows = []
    for front in fronts:
        for i in front.front:
            row = front.row(int(i))
            rows.append({"run": front.run.name, "knee": bool(i == front.knee), **row})
    fields = list(dict.fromkeys(key for row in rows for key in row)) or ["run", "trial_id"]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


if __name__ == "__main__":
    sys.exit(main())
