"""The persisted study reads right in Optuna 5 *and* in optuna-dashboard 0.21.

Optuna 5 reads a trial's constraints from two system-attribute forms (the ``constraints`` list
and ``constraints:<name>`` keys) and counts both; optuna-dashboard 0.21 shows only the list.
``tell_outcome`` writes the list alone, so each tool sees every constraint exactly once.
"""

from __future__ import annotations

import inspect

import contextlib
import json
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import optuna
import optuna_dashboard
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

from search.spec import Constraint
from search.study import StudyStore, tell_outcome

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


CONSTRAINTS = [Constraint.parse("macs <= 1000"), Constraint.parse("val_accuracy >= 0.5")]


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


SWEEP_CONSTRAINTS = ["macs <= 8000", "val_accuracy >= 0.6"]
