"""The baseline comparison of a finished G2G sweep as a markdown table (mean ± std over seeds).

    python benchmarks/g2g_ablation_table.py RUN_DIR

Reads ``RUN_DIR/trials.parquet`` (and ``RUN_DIR/spec.yaml`` for the searched parameters),
keeps full-budget finished trials, groups them by every searched parameter except ``seed``,
and prints one row per group: validation and test accuracy as mean ± sample std over seeds,
active parameters and MACs per sample (means; they differ across seeds only by the random
mask draw).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search.cli import fail
from search.rundir.records import SPEC_FILE, TRIALS_FILE, RunDirError, open_run_dir
from search.spec import load_yaml
from trainables.report import is_competing


__all__ = ["ablation_rows", "markdown_table", "main"]

#: How the kinds read in a table.
KIND_LABELS = {
    "g2g": "G2GNet",
    "dense": "dense, same width",
    "dense_matched": "dense, param-matched",
    "er": "Erdős–Rényi, same density",
}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def ablation_rows(trials: Sequence[dict[str, Any]], group_by: Sequence[str]) -> list[dict[str, Any]]:
    """One summary per group of full-budget finished trials (pure; rows in first-seen order)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for t in trials:
        if is_competing(t.get("state"), t.get("budget_fraction")):
            groups.setdefault(tuple(t.get(k) for k in group_by), []).append(t)
    rows = []
    for key, members in groups.items():
        row: dict[str, Any] = dict(zip(group_by, key))
        row["seeds"] = len(members)
        for metric in ("val_accuracy", "test_accuracy"):
            row[metric] = _mean_std([m.get(metric) for m in members])
        for metric in ("params", "macs", "density"):
            row[metric] = statistics.fmean(float(m[metric]) for m in members)
        rows.append(row)
    order = list(KIND_LABELS)
    rows.sort(key=lambda r: (order.index(r["model.kind"]) if r.get("model.kind") in order else len(order), str(r)))
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], group_by: Sequence[str]) -> str:
    """Render :func:`ablation_rows` as a GitHub markdown table."""
    names = [("model" if k == "model.kind" else k) for k in group_by]
    header = [*names, "seeds", "val accuracy", "test accuracy", "active params", "MACs / sample", "density"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(group_by) + ["--:"] * 6) + "|"]
    for r in rows:
        cells = [KIND_LABELS.get(r[k], str(r[k])) if k == "model.kind" else str(r[k]) for k in group_by]
        cells += [
            str(r["seeds"]),
            "{:.3f} ± {:.3f}".format(*r["val_accuracy"]),
            "{:.3f} ± {:.3f}".format(*r["test_accuracy"]),
            f"{r['params']:,.0f}",
            f"{r['macs']:,.0f}",
            f"{r['density']:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run_dir", type=Path, help="a sweep's run dir (holds trials.parquet)")
    args = parser.parse_args(argv)
    location = open_run_dir(args.run_dir)
    try:
        table = location.read_table(TRIALS_FILE)
    except RunDirError as exc:
        return fail(str(exc))
    if table is None:
        return fail(f"{location.uri}/{TRIALS_FILE} not found; pass the run dir of a sweep")
    trials = table.to_pylist()
    space = list((load_yaml(location.read_text(SPEC_FILE)) or {}).get("space", {})) if location.exists(SPEC_FILE) else ["model.kind", "seed"]
    group_by = [k for k in space if k != "seed"] or ["model.kind"]
    rows = ablation_rows(trials, group_by)
    if not rows:
        return fail("no full-budget finished trials yet")
    print(markdown_table(rows, group_by))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
