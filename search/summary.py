"""The end of a sweep on the terminal: how its trials ended and the best trial per objective.

The best trials are taken from the Pareto front of the full-budget, feasible trials
(:func:`analysis.pareto.pareto_mask`, the analysis' own front code), so a trial named best for
one objective is never one another trial dominates.
"""

from __future__ import annotations

import math
from typing import Any

from search.cli import EXIT_FAILED, fail
from trainables.report import TERMINATED_STATE, ERROR_STATE, REFUSED_STATE, format_number, is_competing

__all__ = ["print_summary"]


def print_summary(sweep: Any) -> int:
    """Print the sweep's outcome; returns the exit status (1 when every trial failed)."""
    from analysis.pareto import pareto_mask  # a pure function on arrays

    spec = sweep.spec
    trials_file = sweep.records.file_name("trials")
    table = sweep.records.read_trials()
    if table is None:
        print(f"no trial finished; run dir: {sweep.run_dir}")
        return 0
    everything = table.to_pylist()
    rows = [r for r in everything if r["state"] != REFUSED_STATE]  # the trials: candidates that were trained
    full = [r for r in rows if is_competing(r["state"], r.get("budget_fraction"))]
    states: dict[str, int] = {}
    for r in rows:
        key = "STOPPED EARLY" if r["state"] == TERMINATED_STATE and r not in full else r["state"]
        states[key] = states.get(key, 0) + 1
    print("\ntrials: " + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())))
    if sweep.meta.warm_start:
        told = sum(int(w.get("taken") or 0) for w in sweep.meta.warm_start)
        sources = ", ".join(str(w.get("run_dir")) for w in sweep.meta.warm_start)
        print(f"warm start: {told} trials of {sources} told to the study first (not counted above, not on this front; {sweep.records.file_name('warm_trials')})")
    refused = len(everything) - len(rows)
    if refused:
        print(f"refused before training: {refused} candidates whose costs broke a constraint (state REFUSED in {trials_file})")
    if rows and all(r["state"] == ERROR_STATE for r in rows):
        first = next((r.get("error") for r in rows if r.get("error")), "unknown error")
        return fail(
            f"all {len(rows)} trials failed (first error: {first}); every trial's error is in the 'error' column of "
            f"{sweep.records.shown('trials')} and its trial dir's error.txt",
            EXIT_FAILED,
        )
    candidates = [r for r in full if spec.is_feasible(r)]
    if candidates:
        # The best per objective among the front: on ties, never a dominated trial.
        mask = pareto_mask([[float(r.get(m, math.nan)) for m in spec.metrics] for r in candidates], spec.modes)
        candidates = [r for r, on_front in zip(candidates, mask) if on_front] or candidates
        print("best feasible full-budget trials per objective:" if spec.constraints else "best full-budget trials per objective:")
        cols = [*spec.metrics, "test_accuracy"]
        print(f"  {'objective':<16} {'trial':<14} " + " ".join(f"{c:>14}" for c in cols))
        for metric, mode in zip(spec.metrics, spec.modes):
            finite = [r for r in candidates if r.get(metric) is not None and math.isfinite(r[metric])]
            if not finite:
                continue
            best = (max if mode == "max" else min)(finite, key=lambda r: r[metric])
            print(f"  {metric + ' ' + mode:<16} {best['trial_id']:<14} " + " ".join(f"{format_number(best.get(c)):>14}" for c in cols))
    elif full and spec.constraints:
        print(f"no full-budget trial satisfies {', '.join(c.text for c in spec.constraints)}")
    print(f"run dir: {sweep.run_dir}")
    return 0
