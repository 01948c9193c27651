"""End-to-end: a real Ray Tune sweep of the SNE family with 4 concurrent trials sharing one teacher."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest
import yaml

from search.run import main
from trainables.sne.adaptive import SubsetCurve

pytestmark = pytest.mark.e2e

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="module")
def sne_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sne_sweep")
    spec = {
        "name": "sne_tiny",
        "trainable": "sne",
        "data": {"name": "digits", "val_fraction": 0.2, "train_subset": 300},
        "budget": {"epochs": 2},
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        "space": {
            "sne.students": {"int": [2, 3]},
            "sne.active": {"int": [1, "$sne.students"]},
            "sne.partition": {"choice": ["correlation", "class", "sequential", "random"]},
        },
        # Teacher training must take a moment, so the four trials really do ask for it together.
        "fixed": {"teacher.width": 8, "teacher.epochs": 3, "sne.timesteps": 2, "student.width": 16},
        "sampler": {"name": "random"},
        "run": {"num_samples": 4, "max_concurrent": 4, "resources": {"cpu": 0.5}, "seed": 0},
    }
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    code = main([str(path), "--storage", str(tmp / "runs"), "--num-cpus", "2", "--quiet"])
    return code, tmp / "runs" / "sne_tiny"


def test_four_concurrent_trials_train_the_teacher_exactly_once(sne_sweep):
    code, run_dir = sne_sweep
    assert code == 0
    logs = list((run_dir / "cache").glob("teacher-*.log"))
    assert len(logs) == 1
    events = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert [e["event"] for e in events] == ["trained"]
    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    assert len(trials) == 4 and all(t["state"] == "TERMINATED" for t in trials)
    assert len({t["teacher_accuracy"] for t in trials}) == 1
    assert {t["teacher_accuracy"] for t in trials} == {events[0]["val_accuracy"]}


def test_trials_table_has_the_sne_columns_and_curves(sne_sweep):
    _, run_dir = sne_sweep
    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    for column in ("val_accuracy", "energy_uj", "energy_ratio", "teacher_accuracy", "spike_rate", "students_active", "curve"):
        assert all(t.get(column) is not None for t in trials), column
    for t in trials:
        assert 1 <= t["students_active"] == t["sne.active"] <= t["sne.students"]
        curve = SubsetCurve.from_json(t["curve"])
        assert curve.k == list(range(1, t["sne.students"] + 1))
        assert curve.energy_uj[t["sne.active"] - 1] == pytest.approx(t["energy_uj"])
        assert t["energy_ratio"] == pytest.approx(t["teacher_energy_uj"] / t["energy_uj"])
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    assert len(epochs) == 8 and all(e["curve"] for e in epochs)
