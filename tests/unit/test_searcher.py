"""SweepSearcher: the fixes over Ray's stock OptunaSearch, checked on a real Optuna study."""

from __future__ import annotations

import json
from pathlib import Path
import math

import optuna
import pytest
from optuna.trial import TrialState

from search.searcher import SweepSearcher
from search.spec import parse_spec
from search.sweep import RunDirError, prepare_sweep
from tests.conftest import tiny_spec


@pytest.fixture
def spec():
    return parse_spec(tiny_spec(constraints=["macs <= 1000", "val_accuracy >= 0.5"]))


def _result(acc, macs, budget=1.0):
    return {"val_accuracy": acc, "macs": macs, "budget_fraction": budget, "epoch": int(budget * 3)}


def test_states_values_and_constraints_reach_optuna(tmp_path, spec):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    searcher = SweepSearcher(spec, study_name="unit-1", storage=url)
    for tid in ("full", "stopped", "crashed", "nan", "infeasible"):
        config = searcher.suggest(tid)
        assert set(config) == set(spec.space)
    searcher.on_trial_complete("full", _result(0.9, 800))
    searcher.on_trial_complete("stopped", _result(0.4, 900, budget=1 / 3))
    searcher.on_trial_complete("crashed", None, error=True)
    searcher.on_trial_complete("nan", _result(math.nan, 800))
    searcher.on_trial_complete("infeasible", _result(0.3, 5000))

    study = optuna.load_study(study_name="unit-1", storage=url)  # persisted, reloadable
    by_id = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert by_id["full"].state == TrialState.COMPLETE
    assert by_id["full"].values == [0.9, 800.0]
    # One value per constraint, in spec order; the study names them.
    assert study.user_attrs["constraints"] == ["macs <= 1000", "val_accuracy >= 0.5"]
    assert by_id["full"].constraints == {"0": -200.0, "1": pytest.approx(-0.4)}
    assert by_id["stopped"].state == TrialState.PRUNED, "an ASHA-stopped trial must not be COMPLETE"
    assert by_id["stopped"].user_attrs["budget_fraction"] == pytest.approx(1 / 3)
    assert by_id["crashed"].state == TrialState.FAIL
    assert by_id["nan"].state == TrialState.FAIL
    assert by_id["infeasible"].state == TrialState.COMPLETE
    assert by_id["infeasible"].constraints["0"] == 4000.0
    # Optuna's own Pareto set honours the constraints: the infeasible trial is excluded.
    assert [t.user_attrs["ray_trial_id"] for t in study.best_trials] == ["full"]


def test_completion_is_told_once(tmp_path, spec):
    searcher = SweepSearcher(spec, study_name="unit-2", storage=f"sqlite:///{tmp_path / 's.db'}")
    searcher.suggest("a")
    searcher.on_trial_complete("a", _result(0.8, 10))
    searcher.on_trial_complete("a", _result(0.1, 10))
    (trial,) = searcher.study.trials
    assert trial.values == [0.8, 10.0]


def test_study_names_are_unique_per_sweep_and_kept_on_resume(tmp_path, spec):
    first = prepare_sweep(spec, storage=str(tmp_path), name="a")
    second = prepare_sweep(spec, storage=str(tmp_path), name="b")
    assert first.study_name != second.study_name
    assert first.study_name.startswith("a-")
    meta = json.loads((Path(first.run_dir) / "sweep.json").read_text())
    assert meta["study_name"] == first.study_name
    assert (Path(first.run_dir) / "spec.yaml").exists()
    with pytest.raises(RunDirError, match="--resume"):
        prepare_sweep(spec, storage=str(tmp_path), name="a")
    again = prepare_sweep(spec, storage=str(tmp_path), name="a", resume=True)
    assert again.study_name == first.study_name
    with pytest.raises(RunDirError, match="no sweep to resume"):
        prepare_sweep(spec, storage=str(tmp_path), name="never", resume=True)


def test_study_carries_the_objective_names(tmp_path, spec):
    url = f"sqlite:///{tmp_path / 's.db'}"
    SweepSearcher(spec, study_name="names", storage=url)
    assert optuna.load_study(study_name="names", storage=url).metric_names == ["val_accuracy", "macs"]
    SweepSearcher(spec, study_name="names", storage=url)  # reopened (resume): names kept, no error
    assert optuna.load_study(study_name="names", storage=url).metric_names == ["val_accuracy", "macs"]


def test_a_missing_constraint_value_is_infeasible_not_a_crash(tmp_path):
    import sys

    spec = parse_spec(tiny_spec(constraints=["params <= 1000", "val_accuracy >= 0.5"]))
    searcher = SweepSearcher(spec, study_name="unit-nan-constraint", storage=f"sqlite:///{tmp_path / 's.db'}")
    searcher.suggest("a")
    searcher.on_trial_complete("a", {"val_accuracy": 0.9, "macs": 10, "params": math.nan, "budget_fraction": 1.0, "epoch": 3})
    (trial,) = searcher.study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.constraints["0"] == sys.float_info.max and trial.constraints["1"] < 0
    assert searcher.study.best_trials == []


def test_learning_curve_reaches_the_study_final_epoch_included(tmp_path, spec):
    searcher = SweepSearcher(spec, study_name="unit-curve", storage=f"sqlite:///{tmp_path / 's.db'}")
    searcher.suggest("a")
    for epoch, acc in ((1, 0.5), (2, math.nan), (3, 0.7)):
        searcher.on_trial_result("a", {"val_accuracy": acc, "macs": 10, "budget_fraction": epoch / 4, "epoch": epoch})
    searcher.on_trial_complete("a", _result(0.8, 10))  # Tune passes the last result here only
    searcher.on_trial_result("a", {"val_accuracy": 0.1, "epoch": 9})  # late: ignored
    (trial,) = searcher.study.trials
    assert trial.intermediate_values == {1: 0.5, 3: 0.8}


def test_tpe_samples_a_multi_objective_study_whose_pruned_trials_have_curves():
    """Stock TPE asks such a study for its single direction and fails; ours ranks pruned
    trials as Optuna does without curves, and leaves the stored curves untouched."""
    from search.samplers import SweepTPESampler

    def fill(study):
        for i in range(12):
            trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
            study._storage.set_trial_intermediate_value(trial._trial_id, 1, float(i))
            if i % 3:
                study.tell(trial, [trial.params["x"], 1 - trial.params["x"]])
            else:
                study.tell(trial, state=TrialState.PRUNED)

    stock = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    with pytest.raises(RuntimeError, match="single direction"):
        fill(stock)

    ours = optuna.create_study(directions=["maximize", "minimize"], sampler=SweepTPESampler(seed=0, n_startup_trials=4))
    fill(ours)
    trial = ours.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert 0 <= trial.params["x"] <= 1
    assert all(t.intermediate_values for t in ours.trials if t.state == TrialState.PRUNED)


def test_tpe_history_is_bounded_to_the_best_and_the_newest():
    """Past max_history finished trials TPE sees the best half of that many (feasible first,
    then Pareto layer) and the newest of the rest: its cost stops growing with the sweep."""
    import numpy as np

    from analysis.pareto import nondominated_ranks
    from search.samplers import SweepTPESampler, TPEHistory

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    rng = np.random.default_rng(0)
    for i in range(60):
        trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        x, y = float(rng.uniform()), float(rng.uniform())
        study._storage.set_trial_system_attr(trial._trial_id, "constraints", [1.0 if i % 7 == 0 else -1.0])
        study.tell(trial, [x, y])
    running = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})

    seen = TPEHistory(max_history=20).select(study.get_trials(deepcopy=False), study.directions, hide_curves=True)
    finished = [t for t in seen if t.state == TrialState.COMPLETE]
    assert len(finished) == 20 and running.number in {t.number for t in seen}
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in complete if t.constraints["0"] <= 0]
    ranks = nondominated_ranks([t.values for t in feasible], ["max", "min"])
    front = {t.number for t, r in zip(feasible, ranks) if r == 0}
    assert front <= {t.number for t in finished}, "the best trials must stay in view"
    assert {t.number for t in complete[-5:]} <= {t.number for t in finished}, "the newest trials must stay in view"
    newest = {t.number for t in complete[-20:]}
    old_kept = [t for t in finished if t.number not in newest]
    assert old_kept and all(t.constraints["0"] <= 0 for t in old_kept), "older trials are kept for being good, and feasible first"

    sampler = SweepTPESampler(seed=0, n_startup_trials=4, max_history=20)
    tpe_study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for trial in study.trials[:-1]:
        tpe_study.add_trial(trial)
    assert 0 <= tpe_study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}).params["x"] <= 1
    with pytest.raises(ValueError, match="max_history"):
        SweepTPESampler(max_history=1)


@pytest.mark.parametrize("sampler", ["cost_aware", "tpe", "random"])
def test_a_resumed_search_never_proposes_what_it_already_proposed(tmp_path, sampler):
    """Issue 24: a seeded sampler restarted its sequence on resume, re-training trials 0, 1, 2."""
    from search.searcher import SweepSearcher
    from search.spec import load_spec
    from tests.conftest import ROOT
    from trainables.data import check_available

    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", [f"sampler.name={sampler}", "sampler.options={}", "run.num_samples=8"])
    info = check_available(spec.data.model_dump())
    storage = f"sqlite:///{tmp_path}/study.db"

    def run(prefix: str, n: int) -> list[dict]:
        searcher = SweepSearcher(spec, "resumed", storage=storage, num_samples=8, data_info=info)
        out = []
        for k in range(n):
            searcher.suggest(f"{prefix}{k}")
            out.append(dict(searcher.params_of(f"{prefix}{k}")))
            searcher.on_trial_complete(f"{prefix}{k}", {"val_accuracy": 0.9, "energy_uj": 0.01, "budget_fraction": 1.0, "epoch": 12})
        return out

    first = run("a", 4)  # interrupted after 4 trials (all in the random start-up)
    again = run("b", 4)  # the resumed sweep's next 4
    assert not [p for p in again if p in first]
    assert len({tuple(sorted(p.items())) for p in first + again}) == 8


def test_a_restored_searcher_tells_its_live_trials_and_proposes_nothing_twice(tmp_path, spec):
    """save()/restore() (Ray Tune's snapshot): a searcher rebuilt on the same study from the
    snapshot tells the trials the first one had running, and asks only for new parameters."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = SweepSearcher(spec, study_name="snap", storage=url, num_samples=8)
    asked = {tid: first.params_of(tid) for tid in ("a", "b", "c") if first.suggest(tid)}
    first.on_trial_complete("a", _result(0.8, 10))
    snapshot = tmp_path / "searcher-state.json"
    first.save(str(snapshot))
    assert json.loads(snapshot.read_text())["live"] == {"b": 1, "c": 2}, "the snapshot holds the running trials only"

    second = SweepSearcher(spec, study_name="snap", storage=url, num_samples=8)
    second.restore(str(snapshot))
    assert second.params_of("b") == asked["b"] and second.optuna_number("c") == 2
    second.on_trial_complete("b", _result(0.7, 20))
    second.on_trial_complete("c", None, error=True)
    study = optuna.load_study(study_name="snap", storage=url)
    states = {t.user_attrs["ray_trial_id"]: t.state for t in study.trials}
    assert states == {"a": TrialState.COMPLETE, "b": TrialState.COMPLETE, "c": TrialState.FAIL}
    new = [second.params_of(tid) for tid in ("d", "e", "f") if second.suggest(tid)]
    assert len(new) == 3 and not any(p in asked.values() for p in new), "a resumed search proposes nothing twice"
    other = SweepSearcher(spec, study_name="other", storage=url)
    with pytest.raises(ValueError, match="snap"):
        other.restore(str(snapshot))
