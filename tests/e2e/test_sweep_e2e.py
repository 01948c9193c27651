"""End-to-end: a real Ray Tune + Optuna sweep of G2GNet on digits, results on disk."""

from __future__ import annotations

import json
import math

import optuna
import pyarrow.parquet as pq
import pytest
import yaml
from optuna.trial import TrialState

from search.run import main
from tests.conftest import tiny_spec
from search.rundir.records import STUDY_FILE, study_storage

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    raw = tiny_spec(
        budget={"epochs": 4},
        constraints=["macs <= 4000"],
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 4},
        space={
            "model.groups": {"choice": [2, 4, 8]},
            "model.p_inter": {"float": [0.0, 0.6]},
            "model.grouping": {"choice": ["index", "random", "mixer"]},
            "optim.lr": {"log": [1e-4, 3e-2]},
        },
    )
    raw["run"] = {"num_samples": 8, "seed": 0, "max_concurrent": 2}
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    code = main([str(path), "--storage", str(tmp / "runs"), "--num-cpus", "2", "--quiet"])
    return code, tmp / "runs" / "tiny"


def test_sweep_writes_the_run_dir(asha_sweep):
    code, run_dir = asha_sweep
    assert code == 0
    for name in ("spec.yaml", "sweep.json", STUDY_FILE, "trials.parquet", "epochs.parquet"):
        assert (run_dir / name).exists(), name
    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    assert len(trials) == 8 and len({t["trial_id"] for t in trials}) == 8
    columns = set(trials[0])
    assert {"trial_id", "state", "budget_fraction", "test_accuracy", "val_accuracy", "energy_uj", "macs", "params", "density"} <= columns
    assert {"model.groups", "model.p_inter", "model.grouping", "optim.lr", "model.width", "model.depth"} <= columns
    assert all(t["state"] == "TERMINATED" for t in trials)
    assert len({t["macs"] for t in trials}) > 1, "MACs must follow the sampled sparsity"
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    assert len(epochs) == sum(t["epoch"] for t in trials)
    for t in trials:
        full = t["budget_fraction"] == 1.0
        assert math.isfinite(t["test_accuracy"]) == full, "test accuracy is measured at full budget only"
        # Finished trials keep only their last checkpoint (older ones are pruned at the end).
        kept = sorted(p.name for p in (run_dir / f"trial_{t['trial_id']}").glob("checkpoint_*"))
        assert kept == [t["checkpoint"].rsplit("/", 1)[-1]], kept


def test_asha_stopped_trials_are_pruned_in_optuna(asha_sweep):
    _, run_dir = asha_sweep
    trials = {t["trial_id"]: t for t in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    meta = json.loads((run_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    states = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    assert set(states) == set(trials)
    stopped = [tid for tid, t in trials.items() if t["budget_fraction"] < 1]
    full = [tid for tid, t in trials.items() if t["budget_fraction"] == 1]
    assert stopped and full, "ASHA with reduction factor 4 must stop some of 8 trials"
    for tid in stopped:
        assert states[tid].state == TrialState.PRUNED
    for tid in full:
        assert states[tid].state == TrialState.COMPLETE
        assert states[tid].values == [trials[tid]["val_accuracy"], trials[tid]["macs"]]
        # The constraint is visible on the Optuna trial, with Optuna's sign convention.
        assert states[tid].constraints == {"0": trials[tid]["macs"] - 4000}
