"""Warm starts: which earlier trials fit a new sweep, how they are told, and that none is trained again."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.rundir import RunDir, SweepMeta, epoch_columns, rows_table, trial_columns
from search.searcher import SweepSearcher
from search.spec import load_spec, parse_spec, spec_to_yaml
from search.study import DUPLICATE_ATTR, WARM_ATTR, StudyStore, counts_as_trial
from search.warm_start import (
    WarmStartError,
    params_key,
    read_warm_start,
    recorded_warm_trials,
    tell_warm_start,
    warm_tables,
)
from tests.conftest import tiny_spec

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "fixtures" / "run_dir_6e60cc9"

METRICS = ["val_accuracy", "macs", "budget_fraction", "epoch"]


def _trial(trial_id, state, groups, p_inter, lr, epoch, accuracy, macs=100.0, budget=3, **extra):
    return {
        "trial_id": trial_id,
        "state": state,
        "optuna_trial": None,
        "model.groups": groups,
        "model.p_inter": p_inter,
        "optim.lr": lr,
        "model.width": extra.pop("width", 32),
        "model.depth": 2,
        "optim.batch_size": 128,
        "val_accuracy": accuracy,
        "macs": macs,
        "budget_fraction": epoch / budget,
        "epoch": epoch,
        **extra,
    }


def earlier_sweep(root: Path, name: str = "early", budget: int = 3, rows=None, **sections) -> RunDir:
    """A finished earlier sweep's run dir, written as the search writes one."""
    spec = parse_spec(tiny_spec(budget={"epochs": budget}, **sections))
    records = RunDir(str(root / name))
    (root / name).mkdir(parents=True)
    records.write_spec_text(spec_to_yaml(spec))
    records.write_meta(SweepMeta.new(f"{name}-study", spec.trainable))
    rows = rows or [
        _trial("full", "TERMINATED", 4, 0.25, 0.005, budget, 0.9, budget=budget),
        _trial("early", "TERMINATED", 2, 0.1, 0.002, 1, 0.5, budget=budget),
        _trial("wide", "TERMINATED", 2, 0.3, 0.003, budget, 0.8, budget=budget, width=64),  # model.width is fixed at 32 in the new sweep
        _trial("failed", "ERROR", 2, 0.45, 0.009, 1, math.nan, budget=budget),
        _trial("refused-7", "REFUSED", 4, 0.2, 0.004, 0, math.nan, budget=budget),
        _trial("running", "RUNNING", 4, 0.4, 0.001, 2, 0.6, budget=budget),
    ]
    epochs = []
    for row in rows:
        for e in range(1, int(row["epoch"]) + 1):
            epochs.append({"trial_id": row["trial_id"], "val_accuracy": row["val_accuracy"] * e / max(1, row["epoch"]), "macs": row["macs"], "budget_fraction": e / budget, "epoch": e, "timestamp": float(e)})
    params = [*spec.space, *spec.fixed]
    records.write_trials(rows_table(rows, trial_columns(params, METRICS)))
    records.write_epochs(rows_table(epochs, epoch_columns(METRICS)))
    return records


def test_what_fits_is_told_and_every_misfit_is_one_line(tmp_path):
    early = earlier_sweep(tmp_path)
    spec = parse_spec(tiny_spec())
    warm = read_warm_start(spec, [early.uri])
    by_id = {t.trial_id: t for t in warm.trials}
    assert set(by_id) == {"full", "early", "failed"}
    assert by_id["full"].state == "COMPLETE" and by_id["full"].budget_fraction == 1.0
    assert by_id["full"].params == {"model.groups": 4, "model.p_inter": 0.25, "optim.lr": 0.005}
    assert by_id["early"].state == "PRUNED" and by_id["early"].budget_fraction == pytest.approx(1 / 3)
    assert by_id["failed"].state == "FAIL"
    assert sorted(by_id["full"].curve) == [1, 2, 3] and by_id["full"].curve[3] == pytest.approx(0.9)
    lines = warm.lines()
    assert lines[0].startswith(f"warm start from {early.uri}: 3 trials; 1 stopped early, 1 failed")
    text = "\n".join(lines)
    assert "1 trial: model.width was 64, this sweep has 32 (e.g. wide)" in text
    assert "1 trial: never trained (e.g. refused-7)" in text
    assert "1 trial: unfinished (e.g. running)" in text
    assert len(lines) == 4  # one line per source, one per reason


def test_a_trial_outside_the_new_space_or_without_one_of_its_parameters_is_not_taken(tmp_path):
    early = earlier_sweep(tmp_path)
    # The user narrows the space as they would type it on the command line.
    spec = load_spec_from(tmp_path, ["space.model.groups={choice: [2]}", "space.optim.lr={log: [1E-3, 4e-3]}", "space.model.depth={int: [1, 3]}"])
    warm = read_warm_start(spec, [early.uri])
    text = "\n".join(warm.lines())
    assert [t.trial_id for t in warm.trials] == ["early"]  # groups 2, lr 0.002: inside
    assert "1 trial: model.groups 4 is not one of this sweep's [2] (e.g. full)" in text
    assert "1 trial: optim.lr 0.009 is outside this sweep's [0.001, 0.004] (e.g. failed)" in text
    assert warm.trials[0].params["model.depth"] == 2
    # model.depth is searched now: every earlier trial has it (fixed at 2 then), within [1, 3]
    assert "has no value" not in text


def load_spec_from(tmp_path, overrides):
    path = tmp_path / "new.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_spec()))
    return load_spec(path, overrides)


def test_another_budget_is_allowed_trials_count_at_their_fraction(tmp_path):
    longer = earlier_sweep(tmp_path, "long", budget=6, rows=[_trial("six", "TERMINATED", 4, 0.25, 0.005, 6, 0.9, budget=6), _trial("two", "TERMINATED", 2, 0.1, 0.002, 2, 0.5, budget=6)])
    warm = read_warm_start(parse_spec(tiny_spec()), [longer.uri])  # budget 3 now
    by_id = {t.trial_id: t for t in warm.trials}
    # It ran 6 epochs: taken at epoch 3, the new full budget, with that epoch's values.
    assert by_id["six"].state == "COMPLETE" and by_id["six"].epoch == 3
    assert by_id["six"].metrics["val_accuracy"] == pytest.approx(0.9 * 3 / 6)
    assert sorted(by_id["six"].curve) == [1, 2, 3]
    assert by_id["two"].state == "PRUNED" and by_id["two"].budget_fraction == pytest.approx(2 / 3)
    shorter = read_warm_start(parse_spec(tiny_spec(budget={"epochs": 12})), [longer.uri])
    assert {t.trial_id: (t.state, round(t.budget_fraction, 3)) for t in shorter.trials} == {"six": ("PRUNED", 0.5), "two": ("PRUNED", 0.167)}
    # Said apart: one stopped early in its own sweep, one ran that sweep's whole (shorter) budget.
    assert shorter.lines() == [f"warm start from {longer.uri}: 2 trials; 1 stopped early, 1 ran their sweep's full 6 epochs (counted at 6/12 of this one's)"]
    assert shorter.sources[0].to_json()["shorter_budget"] == 1 and shorter.sources[0].to_json()["stopped_early"] == 1


def test_the_front_plot_shows_told_trials_of_a_shorter_budget_at_it(tmp_path):
    """A longer sweep warm-started from a shorter one: the told trials that ran their own full budget are drawn."""
    from analysis.plot import front_plot
    from analysis.results import load_run, run_front

    early = earlier_sweep(tmp_path, "short", budget=3)
    spec = parse_spec(tiny_spec(budget={"epochs": 6}))
    warm = read_warm_start(spec, [early.uri])
    assert {t.state for t in warm.trials} == {"PRUNED", "FAIL"}  # nothing reached this sweep's 6 epochs
    new = earlier_sweep(tmp_path, "new", budget=6, rows=[_trial("mine", "TERMINATED", 4, 0.2, 0.004, 6, 0.95, macs=120.0, budget=6)])
    new.write_warm_start(*warm_tables(warm, spec), [s.to_json() for s in warm.sources])
    series = front_plot([run_front(load_run(new.uri))]).series[0]
    assert series.warm.tolist() == [[0.9, 100.0]]  # "full" ran its sweep's 3 epochs; "early" stopped at 1 is left out


def test_another_experiment_is_refused_unless_any(tmp_path):
    early = earlier_sweep(tmp_path)
    other = parse_spec(tiny_spec(objectives=[{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}]))
    with pytest.raises(WarmStartError) as info:
        read_warm_start(other, [early.uri])
    message = str(info.value)
    assert "\n" not in message and "another experiment" in message and "energy_uj (min)" in message and "--warm-start-any" in message
    warm = read_warm_start(other, [early.uri], any_source=True)
    assert "taken although its objectives are" in warm.lines()[0]
    with pytest.raises(WarmStartError, match="no sweep there"):
        read_warm_start(parse_spec(tiny_spec()), [str(tmp_path / "nothing")])
    with pytest.raises(WarmStartError, match="named twice"):
        read_warm_start(parse_spec(tiny_spec()), [early.uri, early.uri])


def test_the_previous_release_run_dir_warm_starts_what_fits():
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", [])
    warm = read_warm_start(spec, [str(LEGACY)])
    assert warm.trials == []  # it trained with batch size 32
    assert "optim.batch_size was 32, this sweep has 64" in "\n".join(warm.lines())
    spec = load_spec(ROOT / "spaces" / "quickstart.yaml", ["optim.batch_size=32"])
    warm = read_warm_start(spec, [str(LEGACY)])
    assert len(warm.trials) == 3 and all(t.state == "PRUNED" for t in warm.trials)


def _store(spec):
    directions = ["maximize" if m == "max" else "minimize" for m in spec.modes]
    return StudyStore.open("s", optuna.storages.InMemoryStorage(), directions=directions)


def test_told_trials_carry_values_curves_constraints_and_origin_once(tmp_path):
    early = earlier_sweep(tmp_path)
    spec = parse_spec(tiny_spec(constraints=["macs <= 150"]))
    warm = read_warm_start(spec, [early.uri])
    store = _store(spec)
    assert tell_warm_start(store, spec, warm.trials) == 3
    assert tell_warm_start(store, spec, warm.trials) == 0  # idempotent: a resume tells nothing twice
    trials = {t.user_attrs[WARM_ATTR].rsplit("#", 1)[1]: t for t in store.study.get_trials()}
    full = trials["full"]
    assert full.state == TrialState.COMPLETE and full.values == [0.9, 100.0]
    assert full.system_attrs["constraints"] == [pytest.approx(-50.0)]
    assert full.intermediate_values[3] == pytest.approx(0.9) and full.user_attrs["budget_fraction"] == 1.0
    assert trials["early"].state == TrialState.PRUNED and trials["early"].intermediate_values == {1: pytest.approx(0.5)}
    assert trials["failed"].state == TrialState.FAIL
    assert not any(counts_as_trial(t) for t in store.study.get_trials())


def test_the_run_dir_record_round_trips_what_was_told(tmp_path):
    early = earlier_sweep(tmp_path)
    spec = parse_spec(tiny_spec())
    warm = read_warm_start(spec, [early.uri])
    new = RunDir(str(tmp_path / "new"))
    (tmp_path / "new").mkdir()
    new.write_meta(SweepMeta.new("new-study", "g2g"))
    new.write_warm_start(*warm_tables(warm, spec), [s.to_json() for s in warm.sources])
    again, epochs = recorded_warm_trials(new)
    assert [(t.key, t.state, dict(t.params), t.epoch, dict(t.curve)) for t in again] == [(t.key, t.state, dict(t.params), t.epoch, dict(t.curve)) for t in warm.trials]
    assert {r["trial_id"] for r in epochs} == {t.key for t in warm.trials}
    assert new.read_meta().warm_start[0]["taken"] == 3 and new.read_meta().warm_start[0]["not_taken"]["never trained"] == 1


def test_the_searcher_never_suggests_a_config_an_earlier_sweep_trained(tmp_path):
    # A space of 4 configs; an earlier sweep trained 3 of them.
    space = {"model.groups": {"choice": [2, 4]}, "model.depth": {"choice": [1, 2]}}
    fixed = {"model.width": 32, "model.p_inter": 0.1, "optim.lr": 0.005, "optim.batch_size": 128}
    raw = tiny_spec(space=space, fixed=fixed, sampler={"name": "tpe", "options": {"n_startup_trials": 1}})
    rows = [
        {**_trial(f"t{g}{d}", "TERMINATED", g, 0.1, 0.005, 3, 0.5 + g / 10 + d / 100), "model.depth": d}
        for g, d in [(2, 1), (2, 2), (4, 1)]
    ]
    early = earlier_sweep(tmp_path, rows=rows, space=space, fixed=fixed)
    spec = parse_spec({**raw, "run": {"num_samples": 3, "seed": 0}})
    warm = read_warm_start(spec, [early.uri])
    assert len(warm.trials) == 3
    searcher = SweepSearcher(spec, study_name="new", num_samples=3)
    assert searcher.tell_warm(warm.trials) == 3
    trained = {params_key(t.params) for t in warm.trials}
    first = searcher.suggest("ray-1")
    assert params_key({k: first[k] for k in ("model.groups", "model.depth")}) not in trained
    assert (first["model.groups"], first["model.depth"]) == (4, 2)  # the one config left
    searcher.on_trial_complete("ray-1", {"val_accuracy": 0.9, "macs": 10.0, "budget_fraction": 1.0, "epoch": 3})
    skipped = [t for t in searcher.study.get_trials() if t.user_attrs.get(DUPLICATE_ATTR)]
    assert all(t.state == TrialState.FAIL for t in skipped)
    assert searcher.counted_trials() == 1  # warm trials and skipped duplicates are not counted
    # When the earlier sweeps trained every config, the search ends and says why.
    rows.append({**_trial("t42", "TERMINATED", 4, 0.1, 0.005, 3, 0.7), "model.depth": 2})
    everything = earlier_sweep(tmp_path, "all", rows=rows, space=space, fixed=fixed)
    full = SweepSearcher(spec, study_name="full", num_samples=3, refusal_limit=20)
    full.tell_warm(read_warm_start(spec, [everything.uri]).trials)
    assert full.suggest("ray-1") == SweepSearcher.FINISHED
    assert full.exhausted.startswith("20 suggestions in a row were configs an earlier sweep trained")


def test_the_front_plot_shows_the_warm_start_apart(tmp_path):
    from analysis.plot import front_plot
    from analysis.results import load_run, run_front

    early = earlier_sweep(tmp_path)
    spec = parse_spec(tiny_spec())
    warm = read_warm_start(spec, [early.uri])
    new = earlier_sweep(tmp_path, "new", rows=[_trial("mine", "TERMINATED", 4, 0.2, 0.004, 3, 0.95, macs=120.0)])
    new.write_warm_start(*warm_tables(warm, spec), [s.to_json() for s in warm.sources])
    run = load_run(new.uri)
    assert run.trials.column("trial_id").to_pylist() == ["mine"]  # told trials are never this run's trials
    data = front_plot([run_front(run)])
    series = data.series[0]
    assert series.warm.tolist() == [[0.9, 100.0]]  # the full-budget told trial only
    assert f"warm-started from {early.uri}" in data.title and "1 trials of" in series.warm_label


def _many_earlier_trials(tmp_path, n=10):
    rng = __import__("random").Random(3)
    rows = [
        _trial(f"e{i}", "TERMINATED", rng.choice([2, 4]), rng.uniform(0, 0.5), 10 ** rng.uniform(-3, -2), 3 if i % 3 else 1, rng.uniform(0.5, 0.95))
        for i in range(n)
    ]
    return earlier_sweep(tmp_path, rows=rows)


def test_the_cost_aware_sampler_models_the_told_trials_from_the_first_suggestion(tmp_path):
    from trainables.data import check_available

    early = _many_earlier_trials(tmp_path)
    spec = parse_spec(tiny_spec(sampler={"name": "cost_aware", "options": {"n_startup_trials": 4}}))
    warm = read_warm_start(spec, [early.uri])
    info = check_available(spec.data.model_dump())
    cold = SweepSearcher(spec, study_name="cold", num_samples=4, data_info=info)
    cold.suggest("ray-1")
    warmed = SweepSearcher(spec, study_name="warm", num_samples=4, data_info=info)
    warmed.tell_warm(warm.trials)
    warmed.suggest("ray-1")
    # The sweep's own sampler: random in its start-up phase cold, its model's plan once the told
    # trials are observations (at least n_startup_trials of them).
    number = lambda s: s.optuna_number("ray-1")  # noqa: E731
    assert cold.study.sampler._modes[number(cold)] == "random"
    assert warmed.study.sampler._modes[number(warmed)] == "plan"


def test_at_a_rung_the_searcher_asks_the_cost_aware_model_once_it_models(tmp_path):
    from types import SimpleNamespace

    from trainables.data import check_available

    early = _many_earlier_trials(tmp_path)
    spec = parse_spec(
        tiny_spec(sampler={"name": "cost_aware", "options": {"n_startup_trials": 4}}, scheduler={"name": "mo_asha", "grace_period": 1})
    )
    info = check_available(spec.data.model_dump())
    result = {"epoch": 1, "val_accuracy": 0.97, "macs": 100.0}
    cold = SweepSearcher(spec, study_name="cold", num_samples=4, data_info=info)
    cold.suggest("ray-1")
    assert cold.worth_continuing(SimpleNamespace(trial_id="ray-1"), 1, result) is None  # starting up: the rank decides
    warmed = SweepSearcher(spec, study_name="warm", num_samples=4, data_info=info)
    warmed.tell_warm(read_warm_start(spec, [early.uri]).trials)
    warmed.suggest("ray-1")
    assert warmed.worth_continuing(SimpleNamespace(trial_id="ray-1"), 1, result) in (True, False)
    # The epoch judged is in the study's curve before the model reads it (Tune tells the scheduler first).
    assert warmed.study.trials[warmed.optuna_number("ray-1")].intermediate_values == {1: 0.97}
    assert warmed.worth_continuing(SimpleNamespace(trial_id="unknown"), 1, result) is None
    other = SweepSearcher(parse_spec(tiny_spec(sampler={"name": "tpe"})), study_name="tpe", num_samples=4)
    other.suggest("ray-1")
    assert other.worth_continuing(SimpleNamespace(trial_id="ray-1"), 1, result) is None  # not a sampler with a model of this kind


def test_mo_asha_judges_new_trials_against_the_told_trials_rungs(tmp_path):
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from search.schedulers import make_scheduler

    early = _many_earlier_trials(tmp_path)
    spec = parse_spec(tiny_spec(budget={"epochs": 3}, scheduler={"name": "mo_asha", "grace_period": 1, "reduction_factor": 2}))
    warm = read_warm_start(spec, [early.uri])
    new = RunDir(str(tmp_path / "new"))
    (tmp_path / "new").mkdir()
    new.write_meta(SweepMeta.new("new-study", "g2g"))
    new.write_warm_start(*warm_tables(warm, spec), [s.to_json() for s in warm.sources])
    _, epochs = recorded_warm_trials(new)
    scheduler = make_scheduler(spec)
    scheduler.seed(epochs)  # what build_tuner does on every start
    worst = {"epoch": 1, "val_accuracy": 0.0, "macs": 1e9, "budget_fraction": 1 / 3}
    assert scheduler.on_trial_result(None, SimpleNamespace(trial_id="a", alias="a"), worst) == TrialScheduler.STOP
    cold = make_scheduler(spec)
    assert cold.on_trial_result(None, SimpleNamespace(trial_id="a", alias="a"), worst) == TrialScheduler.CONTINUE  # the first at its rung
