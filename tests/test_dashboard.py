"""The persisted study reads right in Optuna 5 *and* in optuna-dashboard 0.21.

Optuna 5 reads a trial's constraints from two system-attribute forms (the ``constraints`` list
and ``constraints:<name>`` keys) and counts both; optuna-dashboard 0.21 shows only the list.
``tell_outcome`` writes the list alone, so each tool sees every constraint exactly once.
"""

from __future__ import annotations

import inspect

import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import optuna
import optuna_dashboard
import pyarrow.parquet as pq
import pytest
from optuna.samplers._tpe.sampler import _get_infeasible_trial_score
from optuna.samplers.nsgaii._constraints_evaluation import _evaluate_penalty
from optuna.study._constrained_optimization import (
    _get_constraints_from_system_attrs,
    _get_feasible_trials,
    _is_constrained_optimization,
)
from optuna.study._multi_objective import _get_pareto_front_trials_by_trials
from optuna.trial import TrialState

from analysis.pareto import pareto_front
from analysis.results import completed_mask, full_budget_mask, load_run, numeric_column
from search.spec import Constraint
from search.study import StudyStore, tell_outcome
from trainables.report import REFUSED_STATE
from tests.conftest import ROOT
from search.rundir.records import STUDY_FILE, study_address, study_storage

METRICS = ["val_accuracy", "macs"]


# --------------------------------------------------------------------------------------------
# The real dashboard app, served on loopback
# --------------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # no access log on stderr
        pass


@contextlib.contextmanager
def dashboard(storage: str) -> Iterator[str]:
    """Serve ``optuna_dashboard.wsgi(storage)`` on 127.0.0.1 (free port); yields the base URL."""
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="optuna-dashboard", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return json.loads(response.read())


def study_detail(base: str, study_name: str) -> dict:
    """``GET /api/studies`` to find the study's id, then ``GET /api/studies/<id>?after=0``."""
    summaries = _get(f"{base}/api/studies")["study_summaries"]
    (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == study_name]
    return _get(f"{base}/api/studies/{study_id}?after=0")


# --------------------------------------------------------------------------------------------
# Unit level: tell_outcome on a small study, read back by Optuna's constraint readers
# --------------------------------------------------------------------------------------------


CONSTRAINTS = [Constraint.parse("macs <= 1000"), Constraint.parse("val_accuracy >= 0.5")]

#: name -> (last result, error, expected violations in spec order or None)
OUTCOMES = {
    "feasible": ({"val_accuracy": 0.9, "macs": 800.0, "budget_fraction": 1.0}, False, [-200.0, -0.4]),
    "too_big": ({"val_accuracy": 0.95, "macs": 5000.0, "budget_fraction": 1.0}, False, [4000.0, -0.45]),
    "both_bad": ({"val_accuracy": 0.3, "macs": 3000.0, "budget_fraction": 1.0}, False, [2000.0, 0.2]),
    "stopped": ({"val_accuracy": 0.4, "macs": 100.0, "budget_fraction": 0.5}, False, None),
    "crashed": (None, True, None),
}


@pytest.fixture
def told_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(study_name="unit", storage=storage, directions=["maximize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(METRICS)
    for name, (result, error, _) in OUTCOMES.items():
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("name", name)
        tell_outcome(StudyStore(study, storage), trial.number, METRICS, CONSTRAINTS, result, error)
    return url, optuna.load_study(study_name="unit", storage=url)


def _by_name(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs["name"]: t for t in study.get_trials(deepcopy=False)}


def test_optuna_reads_each_constraint_exactly_once(told_study):
    _, study = told_study
    trials = _by_name(study)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, (_, _, expected) in OUTCOMES.items():
            trial = trials[name]
            # The storage form: one list under "constraints", no "constraints:<name>" keys.
            assert not [k for k in trial.system_attrs if k.startswith("constraints:")], trial.system_attrs
            if expected is None:
                assert "constraints" not in trial.system_attrs and trial.constraints == {}
                continue
            assert trial.system_attrs["constraints"] == pytest.approx(expected)
            # What every Optuna reader goes through (FrozenTrial.constraints and the helper).
            assert len(trial.constraints) == len(CONSTRAINTS), trial.constraints
            assert list(trial.constraints.values()) == pytest.approx(expected)
            assert list(_get_constraints_from_system_attrs(trial.system_attrs).values()) == pytest.approx(expected)
    assert not [w for w in caught if "constraint" in str(w.message).lower()], [str(w.message) for w in caught]


def test_samplers_and_best_trials_see_single_violations(told_study):
    url, study = told_study
    trials = _by_name(study)
    complete = [trials[n] for n in ("feasible", "too_big", "both_bad")]
    assert all(t.state == TrialState.COMPLETE for t in complete)
    assert trials["stopped"].state == TrialState.PRUNED and trials["crashed"].state == TrialState.FAIL

    assert _is_constrained_optimization(study.trials)
    assert [t.user_attrs["name"] for t in _get_feasible_trials(complete)] == ["feasible"]
    # TPE's and NSGA-II's penalty: the sum of positive violations, each counted once.
    assert [_get_infeasible_trial_score(t) for t in complete] == pytest.approx([0.0, 4000.0, 2000.2])
    assert _evaluate_penalty(complete) == pytest.approx(np.array([0.0, 4000.0, 2000.2]))
    # The GP sampler's constraint matrix: one column per spec constraint.
    from optuna.samplers._gp.sampler import _get_constraint_vals_and_feasibility

    # Optuna 5.0 passes the study too; 5.1 reads each trial's ``constraints`` alone.
    args = (complete,) if len(inspect.signature(_get_constraint_vals_and_feasibility).parameters) == 1 else (study, complete)
    values, is_feasible = _get_constraint_vals_and_feasibility(*args)
    assert values.shape == (3, len(CONSTRAINTS))
    assert is_feasible.tolist() == [True, False, False]

    # best_trials honours feasibility: "too_big" would be on the unconstrained front.
    unconstrained = _get_pareto_front_trials_by_trials(study.trials, study.directions, consider_constraint=False)
    assert {t.user_attrs["name"] for t in unconstrained} == {"feasible", "too_big"}
    assert [t.user_attrs["name"] for t in study.best_trials] == ["feasible"]

    # The samplers run on the study as stored (TPE past its startup trials, NSGA-II).
    for sampler in (optuna.samplers.TPESampler(n_startup_trials=0, seed=0), optuna.samplers.NSGAIISampler(population_size=2, seed=0)):
        resumed = optuna.load_study(study_name=study.study_name, storage=url, sampler=sampler)
        trial = resumed.ask()
        assert 0.0 <= trial.suggest_float("x", 0.0, 1.0) <= 1.0
        resumed.tell(trial, state=TrialState.FAIL)


def test_dashboard_shows_the_unit_study_constraints(told_study):
    url, study = told_study
    numbers = {name: t.number for name, t in _by_name(study).items()}
    with dashboard(url) as base:
        detail = study_detail(base, "unit")
    assert detail["objective_names"] == METRICS
    shown = {t["number"]: t for t in detail["trials"]}
    for name, (_, _, expected) in OUTCOMES.items():
        assert shown[numbers[name]]["constraints"] == pytest.approx(expected or []), name
    # The dashboard's own front ignores constraints (optuna_dashboard/_app.py, multi-objective).
    assert sorted(t["number"] for t in detail["best_trials"]) == sorted([numbers["feasible"], numbers["too_big"]])


# --------------------------------------------------------------------------------------------
# End to end: a real quickstart sweep (product CLI), its study file served by the real dashboard
# --------------------------------------------------------------------------------------------

SWEEP_CONSTRAINTS = ["macs <= 8000", "val_accuracy >= 0.6"]


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
