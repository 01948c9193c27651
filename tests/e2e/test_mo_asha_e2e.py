"""End-to-end: the quickstart sweep with ``--set scheduler.name=mo_asha`` on a real Ray Tune run.

With ``scheduler.promote=ehvi``: the cost-aware model may keep at a rung what the rank would stop,
so the run also covers the model's verdicts in a real sweep (the rank alone runs in every other
quickstart sweep of the suite)."""

from __future__ import annotations

import json

import optuna
import pyarrow.parquet as pq
import pytest
from optuna.trial import TrialState

from search.schedulers.mo_asha import rung_milestones
from search.run import main
from pathlib import Path
from search.rundir.records import STUDY_FILE, study_storage

pytestmark = pytest.mark.e2e

EPOCHS, GRACE, RF = 8, 2, 2


@pytest.fixture(scope="module")
def mo_asha_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mo_asha")
    argv = [
        str(Path(__file__).resolve().parents[2] / "spaces" / "quickstart.yaml"),
        "--storage", str(tmp),
        "--num-samples", "12",
        "--num-cpus", "2",
        "--set", "scheduler.name=mo_asha",
        "--set", f"budget.epochs={EPOCHS}",
        "--set", f"scheduler.grace_period={GRACE}",
        "--set", "scheduler.promote=ehvi",
        "--set", "model.width=64",
        "--quiet",
    ]
    code = main(argv)
    run_dir = tmp / "quickstart"
    meta = json.loads((run_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    trials = {t["trial_id"]: t for t in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    return code, trials, epochs, study


def test_some_trials_stop_at_a_rung_and_are_pruned_in_the_study(mo_asha_sweep):
    code, trials, _, study = mo_asha_sweep
    assert code == 0
    assert len(trials) == 12 and all(t["state"] == "TERMINATED" for t in trials.values())
    by_ray_id = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert set(by_ray_id) == set(trials)
    stopped = {tid for tid, t in trials.items() if t["budget_fraction"] < 1}
    assert stopped and len(stopped) < 12, "MO-ASHA with reduction factor 2 stops some, not all, of 12 trials"
    rungs = set(rung_milestones(GRACE, EPOCHS, RF))
    for tid, row in trials.items():
        ot = by_ray_id[tid]
        if tid in stopped:
            assert row["epoch"] in rungs, f"{tid} stopped at epoch {row['epoch']}, not at a rung {sorted(rungs)}"
            assert ot.state == TrialState.PRUNED
            assert ot.user_attrs["budget_fraction"] == pytest.approx(row["epoch"] / EPOCHS)
        else:
            assert row["epoch"] == EPOCHS and ot.state == TrialState.COMPLETE
            assert ot.values == [row["val_accuracy"], row["energy_uj"]]


def test_learning_curves_are_in_the_study(mo_asha_sweep):
    """Every epoch's first objective is an intermediate value, pruned trials included."""
    _, trials, epochs, study = mo_asha_sweep
    curves: dict[str, dict[int, float]] = {}
    for row in epochs:
        curves.setdefault(row["trial_id"], {})[int(row["epoch"])] = row["val_accuracy"]
    for ot in study.trials:
        tid = ot.user_attrs["ray_trial_id"]
        assert ot.intermediate_values == pytest.approx(curves[tid]), tid
        assert max(ot.intermediate_values) == trials[tid]["epoch"]
