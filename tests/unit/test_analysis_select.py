"""``analysis.select``: conditions, picks, front positions and exported bundles.

The export tests use run dirs whose trials were really trained (one epoch of G2GNet on digits,
no Ray) and checkpointed the way the trainable does, so the bundle's weights, config and
re-measured accuracy are checked against real numbers. The SNE family is exported too, from an
(untrained) ensemble built through the registry: export only goes through the registry.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from analysis.pareto import hypervolume
from analysis.results import analyze_run, load_run
from analysis.bundle import REPRODUCE_TOLERANCE, load_bundle_model
from analysis.export import bundle_spec, export_bundle
from analysis.select import Condition, NoMatchError, front_position, select_trials
from analysis.select.__main__ import main
from search.space import trial_config
from search.spec import load_spec, parse_spec
from tests.unit.test_analysis_results import mixed_trials, report, synth_spec, trial, write_run
from trainables.data import load_splits
from trainables.g2g.trainable import G2GTraining
from trainables.registry import get_trainable
from trainables.training import evaluate, save_state

# ---------------------------------------------------------------------------------------------
# Run dirs with really trained trials
# ---------------------------------------------------------------------------------------------


def trained_run(parent: Path, name: str = "trained") -> Path:
    """Three G2GNet trials of different widths, one epoch each, checkpointed like the trainable."""
    raw = synth_spec(budget={"epochs": 1})
    spec = parse_spec(raw)
    run_dir = parent / name
    trials = []
    splits = None
    for tid, width in (("w16", 16), ("w32", 32), ("w64", 64)):
        params = {"model.width": width, "optim.lr": 5e-3}
        config = trial_config(spec, {**spec.fixed, **params})
        splits = splits or load_splits(config["data"])
        training = G2GTraining(config, splits)
        training.train_epoch()
        result = training.metrics()
        checkpoint = run_dir / f"trial_{tid}" / "checkpoint_000000"
        save_state(checkpoint, training.state_dict())
        trials.append(trial(tid, result, params=params, checkpoint=str(checkpoint)))
    return write_run(parent, trials, raw, name=name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.mktemp("trained"))


# ---------------------------------------------------------------------------------------------
# Conditions and picks
# ---------------------------------------------------------------------------------------------


def test_conditions_parse_and_filter(tmp_path):
    run = load_run(write_run(tmp_path, mixed_trials()))
    ids = np.array(run.trials.column("trial_id").to_pylist())
    (cond,) = Condition.parse("energy_uj <= 2")
    assert (cond.column, cond.op, cond.value) == ("energy_uj", "<=", 2.0)
    assert set(ids[cond.mask(run.trials)]) == {"a0", "a1", "a4", "p0", "r0"}
    both = Condition.parse("energy_uj < 2 and val_accuracy > 0.9")
    mask = both[0].mask(run.trials) & both[1].mask(run.trials)
    assert set(ids[mask]) == {"p0", "r0"}  # e0's NaN satisfies nothing
    (width,) = Condition.parse("model.width == 32")
    assert width.mask(run.trials).sum() == 8
    with pytest.raises(Exception, match="expected 'metric <= number'"):
        Condition.parse("energy_uj ~ 2")
    with pytest.raises(Exception, match="no column 'nope'"):
        Condition.parse("nope <= 1")[0].mask(run.trials)


def test_prefer_picks_the_best_under_the_conditions_ties_to_the_front(tmp_path):
    trials = mixed_trials() + [trial("a5", report(0.95, 3.5))]  # ties a1/a4 on accuracy, dominated
    front = analyze_run(write_run(tmp_path, trials))
    pick = select_trials(front, ["energy_uj <= 3.8"], prefer="val_accuracy", top=3)
    ids = [front.trial_ids[i] for i in pick.picks]
    assert ids[:2] in (["a1", "a4"], ["a4", "a1"])  # best accuracy within 3.8 uJ, on the front first
    assert ids[2] == "a5"  # same accuracy, dominated: after the front ones
    assert "highest val_accuracy among 5 of 6 full-budget trials with energy_uj <= 3.8" == pick.describe()
    cheapest = select_trials(front, [], prefer="energy_uj", top=2)
    assert [front.trial_ids[i] for i in cheapest.picks] == ["a0", "a1"]
    default = select_trials(front)
    assert [front.trial_ids[i] for i in default.picks] == ["a2"]  # the first objective


def test_knee_is_the_knee_of_the_trials_meeting_the_conditions(tmp_path):
    trials = [trial(f"t{i}", report(acc, energy)) for i, (acc, energy) in enumerate([(0.70, 0.5), (0.90, 1.0), (0.92, 3.0), (0.93, 6.0), (0.80, 0.7)])]
    front = analyze_run(write_run(tmp_path, trials))
    knee = select_trials(front, knee=True, top=2)
    assert front.trial_ids[knee.picks[0]] == "t1" == front.trial_ids[front.knee] and knee.rule == "knee of the front"
    # Two candidates have no curve to bend: the pick is the one closest to the ideal, and says so.
    other = select_trials(front, ["val_accuracy >= 0.91"], knee=True)
    assert front.trial_ids[other.picks[0]] in {"t2", "t3"} and other.rule.startswith("no knee (the front has fewer than 3 points")


def test_a_concave_front_has_no_knee_and_the_pick_says_why(tmp_path):
    from analysis.pareto import knee_bends, knee_point

    # Concave (bulging away from the ideal point): every interior point lies beyond the line
    # through the ends; the old rule returned an end and called it the best trade-off.
    points = [(0.60, 1.0), (0.62, 3.0), (0.66, 5.0), (0.90, 6.0)]
    assert not knee_bends(points, ["max", "min"])
    # Closest to the ideal after normalising: the ends (distance 1 each; ties to the best accuracy).
    assert knee_point(points, ["max", "min"]) == 3
    assert knee_bends([(0.70, 0.5), (0.90, 1.0), (0.93, 6.0)], ["max", "min"])  # convex: a real knee
    trials = [trial(f"t{i}", report(acc, energy)) for i, (acc, energy) in enumerate(points)]
    pick = select_trials(analyze_run(write_run(tmp_path, trials)), knee=True)
    assert pick.rule.startswith("no knee") and "closest to the ideal point" in pick.rule


def test_an_impossible_condition_says_so_in_one_line(tmp_path, capsys):
    run_dir = write_run(tmp_path, mixed_trials())
    front = analyze_run(run_dir)
    with pytest.raises(NoMatchError) as err:
        select_trials(front, ["energy_uj <= 0.1"])
    assert str(err.value) == "no trial satisfies --where 'energy_uj <= 0.1': of 5 full-budget feasible trials, lowest energy_uj is 1"
    assert main([str(run_dir), "--where", "energy_uj <= 0.1", "--export", str(tmp_path / "out")]) == 2
    err_text = capsys.readouterr().err
    assert err_text.count("\n") == 1 and err_text.startswith("error: no trial satisfies")
    assert not (tmp_path / "out").exists()


def test_front_position_measures_the_pick_against_its_front(tmp_path):
    front = analyze_run(write_run(tmp_path, mixed_trials()))
    ids = front.trial_ids
    a1 = front_position(front, ids.index("a1"))
    assert a1["on_front"] and a1["front_size"] == 4 and a1["feasible_trials"] == 5
    # a1 has a twin (a4): removing it alone loses no volume.
    assert a1["hypervolume_contribution"] == pytest.approx(0.0)
    a2 = front_position(front, ids.index("a2"))
    others = front.points[[i for i in range(len(ids)) if ids[i] != "a2"]]
    expected = front.hypervolume - hypervolume(others, front.directions, front.reference.values)
    assert a2["hypervolume_contribution"] == pytest.approx(expected) and expected > 0
    assert a2["position"] == 1 and a2["places"] == {"val_accuracy": 1, "energy_uj": 5}
    a3 = front_position(front, ids.index("a3"))
    assert not a3["on_front"] and a3["rank"] == 1 and set(a3["dominated_by"]) == {"a1", "a4"}


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def test_export_writes_a_bundle_whose_weights_reproduce_the_recorded_accuracy(trained, tmp_path):
    front = analyze_run(trained)
    selection = select_trials(front, ["energy_uj <= 2"], prefer="val_accuracy")
    bundle = export_bundle(selection, 0, tmp_path / "export")
    assert sorted(p.name for p in bundle.path.iterdir()) == ["card.md", "config.yaml", "metrics.json", "model.onnx", "model.pt", "preprocessing.json"]
    row = front.row(selection.picks[0])
    assert bundle.trial_id == row["trial_id"] and bundle.path.name == f"trained-{row['trial_id']}"

    state = torch.load(bundle.path / "model.pt", weights_only=True)
    run = load_run(trained)
    config = trial_config(run.spec, run.trial_params(row))
    model = get_trainable("g2g").build_model(config, load_splits(config["data"]).info)
    # Masks are buffers: all of them exported, behind the standardisation's statistics.
    assert set(state) == {f"model.{k}" for k in model.state_dict()} | {"preprocess.mean", "preprocess.std"}
    assert abs(bundle.reproduced["val_accuracy"] - row["val_accuracy"]) <= REPRODUCE_TOLERANCE
    assert bundle.reproduces is True
    assert bundle.reproduced["test_accuracy"] == pytest.approx(row["test_accuracy"], abs=REPRODUCE_TOLERANCE)

    metrics = json.loads((bundle.path / "metrics.json").read_text())
    assert metrics["trial_id"] == row["trial_id"] and metrics["reproduces"] is True
    assert metrics["front"]["rank"] == int(front.ranks[selection.picks[0]])
    card = (bundle.path / "card.md").read_text()
    assert f"trial {row['trial_id']}" in card and "energy_uj <= 2" in card
    assert "reproduced from the exported weights" in card and "On the Pareto front" in card


def test_the_exported_config_is_a_spec_that_reruns_the_same_trial(trained, tmp_path):
    front = analyze_run(trained)
    selection = select_trials(front, knee=True)
    bundle = export_bundle(selection, 0, tmp_path / "export")
    spec = load_spec(bundle.path / "config.yaml")  # validates like python -m search.run does
    assert list(spec.space) == ["seed"] and spec.space["seed"].choice == [bundle.seed]
    assert spec.sampler.name == "grid" and spec.scheduler.name == "none" and spec.num_samples == 1
    run = load_run(trained)
    original = trial_config(run.spec, run.trial_params(front.row(selection.picks[0])))
    assert trial_config(spec, {"seed": bundle.seed}) == original
    # And the bundle rebuilds its own model.
    model = load_bundle_model(bundle.path)
    splits = load_splits(original["data"])
    accuracy, _ = evaluate(model, splits.x_val, splits.y_val)
    assert accuracy == pytest.approx(bundle.reproduced["val_accuracy"])
    seeds = bundle_spec(run, run.trial_params(front.row(selection.picks[0])), "x", seeds=[3, 4, 5])
    assert seeds["space"] == {"seed": {"choice": [3, 4, 5]}} and seeds["run"]["num_samples"] == 3
    assert parse_spec(seeds).grid_size() == 3


def test_export_finds_checkpoints_of_a_moved_run_dir(trained, tmp_path):
    moved = tmp_path / "elsewhere" / "trained"
    shutil.copytree(trained, moved)
    front = analyze_run(moved)
    row = front.row(0)
    assert not row["checkpoint"].startswith(str(moved))  # the table still names the old place
    selection = select_trials(front, top=1)
    hidden = Path(row["checkpoint"]).parent.parent.with_name("hidden")
    shutil.move(str(trained), str(hidden))  # the original is gone
    try:
        bundle = export_bundle(selection, 0, tmp_path / "export")
        assert bundle.reproduces
    finally:
        shutil.move(str(hidden), str(trained))


def test_export_reads_a_run_dir_given_as_a_uri(trained, tmp_path):
    front = analyze_run(f"file://{trained}")
    bundle = export_bundle(select_trials(front, prefer="energy_uj"), 0, tmp_path / "export")
    assert bundle.reproduces and bundle.run_dir == f"file://{trained}"
    assert front.trial_ids[front.points[:, 1].argmin()] == bundle.trial_id


def test_select_cli_exports_top_k_and_reports_the_reproduced_accuracy(trained, tmp_path, capsys):
    code = main([str(trained), "--where", "energy_uj <= 2", "--prefer", "val_accuracy", "--top", "2", "--export", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    bundles = sorted((tmp_path / "out").iterdir())
    assert len(bundles) == 2
    assert out.count("weights reloaded: val_accuracy") == 2 and out.count(" ok") == 2
    picks = [json.loads((b / "metrics.json").read_text())["pick"] for b in bundles]
    assert sorted(picks) == [1, 2]


def test_export_works_for_the_sne_family(tmp_path):
    raw = {
        "name": "sne_tiny",
        "trainable": "sne",
        "data": {"name": "digits", "val_fraction": 0.2},
        "budget": {"epochs": 1},
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        "space": {"sne.active": {"int": [1, 2]}},
        "fixed": {"sne.students": 2, "sne.timesteps": 2, "teacher.width": 8, "student.width": 16},
        "sampler": {"name": "random"},
        "run": {"num_samples": 2, "seed": 0},
    }
    spec = parse_spec(raw)
    run_dir = tmp_path / "sne_tiny"
    trials = []
    for tid, active in (("k1", 1), ("k2", 2)):
        params = {"sne.active": active}
        config = trial_config(spec, {**spec.fixed, **params})
        splits = load_splits(config["data"])
        torch.manual_seed(active)
        ensemble = get_trainable("sne").build_model(config, splits.info)
        accuracy, _ = evaluate(ensemble, splits.x_val, splits.y_val)
        checkpoint = run_dir / f"trial_{tid}" / "checkpoint_000000"
        save_state(checkpoint, {"model": ensemble.state_dict(), "epoch": 1})
        result = report(accuracy, 0.1 * active, epochs=1, spike_rate=0.2, synops=100.0 * active)
        trials.append(trial(tid, result, params=params, checkpoint=str(checkpoint)))
    write_run(tmp_path, trials, raw, name="sne_tiny")
    front = analyze_run(run_dir)
    selection = select_trials(front, prefer="energy_uj")
    bundle = export_bundle(selection, 0, tmp_path / "export")
    assert bundle.trial_id == "k1" and bundle.trainable == "sne"
    assert bundle.reproduced["val_accuracy"] == pytest.approx(front.row(selection.picks[0])["val_accuracy"])
    assert load_spec(bundle.path / "config.yaml").trainable == "sne"
    assert "`synops`" in (bundle.path / "card.md").read_text()
    loaded = yaml.safe_load((bundle.path / "config.yaml").read_text())
    assert loaded["fixed"]["sne.active"] == 1 and math.isclose(loaded["fixed"]["sne.timesteps"], 2)
