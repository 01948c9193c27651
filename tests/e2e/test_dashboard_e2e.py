"""optuna-dashboard and Optuna read a real constrained sweep's study as the run dir records it: objectives, constraint values (refused candidates' too), the front, the curves."""

from __future__ import annotations


import json
import math
import os
import subprocess
import sys

import numpy as np
import optuna
import pytest

from analysis.pareto import pareto_front
from analysis.results import completed_mask, full_budget_mask, load_run, numeric_column
from trainables.report import REFUSED_STATE
from tests.conftest import ROOT
from search.rundir.records import STUDY_FILE, study_address, study_storage

METRICS = ["val_accuracy", "macs"]


# --------------------------------------------------------------------------------------------
# The real dashboard app, served on loopback
# --------------------------------------------------------------------------------------------
from tests.unit.test_dashboard import SWEEP_CONSTRAINTS, dashboard, study_detail


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """6 trials of 2 epochs, with two constraints set on the command line (~40 s on 2 CPUs)."""
    storage = tmp_path_factory.mktemp("dash")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [
        sys.executable, "-m", "search.run", "spaces/quickstart.yaml", "--storage", str(storage), "--name", "dash",
        "--num-samples", "6", "--num-cpus", "2", "--set", "budget.epochs=2", "--set", "run.seed=1",
        "--set", f"constraints={json.dumps(SWEEP_CONSTRAINTS)}", "--quiet",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = storage / "dash"
    run = load_run(run_dir)
    assert [c.text for c in run.spec.constraints] == SWEEP_CONSTRAINTS
    meta = json.loads((run_dir / "sweep.json").read_text())
    # What the sweep prints and the README says: optuna-dashboard RUN_DIR/study.journal (a path:
    # the dashboard tells a journal file from an SQLite one itself).
    address = study_address(run_dir / STUDY_FILE)
    assert address == str(run_dir / "study.journal")
    with dashboard(address) as base:
        detail = study_detail(base, meta["study_name"])
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    return run, detail, study


def optuna_trials_constraints(study: optuna.Study, number: int) -> list[float]:
    return list(study.trials[number].constraints.values())


def _full_budget_rows(run) -> tuple[list[dict], np.ndarray]:
    """The full-budget completed rows of trials.parquet and their objective values."""
    mask = completed_mask(run.trials) & full_budget_mask(run.trials)
    rows = [row for row, keep in zip(run.trials.to_pylist(), mask) if keep]
    points = np.column_stack([numeric_column(run.trials, m)[mask] for m in run.spec.metrics])
    return rows, points


@pytest.mark.e2e
def test_dashboard_names_the_objectives(sweep):
    run, detail, _ = sweep
    assert list(run.spec.metrics) == ["val_accuracy", "energy_uj"]
    assert detail["objective_names"] == ["val_accuracy", "energy_uj"]
    assert detail["directions"] == ["maximize", "minimize"]


def _refused_rows(run) -> list[dict]:
    return [row for row in run.trials.to_pylist() if row["state"] == REFUSED_STATE]


@pytest.mark.e2e
def test_dashboard_shows_each_trials_constraint_values(sweep):
    run, detail, study = sweep
    rows, _ = _full_budget_rows(run)
    refused = _refused_rows(run)
    assert len(rows) == run.trials.num_rows - len(refused) == 6, "2 epochs: no trained trial is stopped early"
    shown = {t["number"]: t for t in detail["trials"]}
    # Candidates refused before training (their MACs broke macs <= 8000): pruned, with their
    # violations (the learnt constraint's value is missing: by the spec's one rule,
    # Constraint.violation_of, the largest finite violation), no values, no curve.
    assert refused, "pick SWEEP_CONSTRAINTS so that some candidates are refused before training"
    for row in refused:
        trial = shown[row["optuna_trial"]]
        assert trial["state"] == "Pruned" and not trial.get("values") and not trial["intermediate_values"]
        assert trial["constraints"] == pytest.approx([row["macs"] - 8000, sys.float_info.max])
        assert list(optuna_trials_constraints(study, row["optuna_trial"])) == pytest.approx([row["macs"] - 8000, sys.float_info.max])
    optuna_trials = {t.number: t for t in study.trials}
    feasible = []
    for row in rows:
        expected = [c.violation(row[c.metric]) for c in run.spec.constraints]
        trial = shown[row["optuna_trial"]]
        assert trial["state"] == "Complete"
        assert trial["values"] == pytest.approx([row[m] for m in run.spec.metrics])
        assert trial["constraints"] == pytest.approx(expected), row["trial_id"]
        # Optuna itself: the same values, one per constraint (no doubling).
        assert list(optuna_trials[row["optuna_trial"]].constraints.values()) == pytest.approx(expected)
        feasible.append(all(v <= 0 for v in expected))
    feasible += [False] * len(refused)  # shown as infeasible too
    assert any(feasible) and not all(feasible), "pick SWEEP_CONSTRAINTS so the sweep has both kinds"


@pytest.mark.e2e
def test_dashboard_front_is_our_pareto_front(sweep):
    run, detail, study = sweep
    rows, points = _full_budget_rows(run)
    directions = [o.mode for o in run.spec.objectives]
    front = {rows[i]["optuna_trial"] for i in pareto_front(points, directions)}
    # optuna-dashboard's front takes every COMPLETE trial (constraints aside): our plain front.
    assert {t["number"] for t in detail["best_trials"]} == front
    # Optuna's best_trials keeps the feasible ones only: our front of the feasible rows.
    ok = [i for i, row in enumerate(rows) if all(c.violation(row[c.metric]) <= 0 for c in run.spec.constraints)]
    feasible_front = {rows[ok[i]]["optuna_trial"] for i in pareto_front(points[ok], directions)}
    assert {t.number for t in study.best_trials} == feasible_front


@pytest.mark.e2e
def test_dashboard_shows_intermediate_values(sweep):
    run, detail, _ = sweep
    assert detail["has_intermediate_values"] is True
    curves = {}
    for row in run.epochs.to_pylist():
        curves.setdefault(row["trial_id"], {})[row["epoch"]] = row["val_accuracy"]
    numbers = {row["optuna_trial"]: row["trial_id"] for row in run.trials.to_pylist() if row["state"] != REFUSED_STATE}
    for trial in detail["trials"]:
        if trial["number"] not in numbers:
            continue  # refused before training: no curve (checked above)
        assert trial["intermediate_values"], f"trial {trial['number']} has no intermediate values"
        curve = curves[numbers[trial["number"]]]
        for point in trial["intermediate_values"]:
            assert math.isfinite(point["value"]) and point["value"] == pytest.approx(curve[point["step"]])
