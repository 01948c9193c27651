"""End-to-end: measured latency as an objective (``spaces/quickstart_latency.yaml``) on a real Ray Tune run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pyarrow.parquet as pq
import pytest

from search.run import main
from search.rundir.records import STUDY_FILE, study_storage

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "spaces" / "quickstart_latency.yaml"


def test_trials_report_measured_latency_and_the_study_optimises_it(tmp_path):
    argv = [str(SPEC), "--storage", str(tmp_path), "--num-samples", "4", "--num-cpus", "2",
            "--set", "budget.epochs=2", "--set", "scheduler.name=none", "--quiet"]
    assert main(argv) == 0
    run_dir = tmp_path / "quickstart_latency"
    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    assert len(trials) == 4
    for row in trials:
        assert row["latency_ms"] > 0 and math.isfinite(row["latency_ms"])
        assert row["throughput_sps"] > 0 and row["latency_device"] == "cpu (1 thread)"
    assert all(r["latency_ms"] > 0 for r in epochs)  # every report is timed (ASHA / MO-ASHA rungs need it)
    meta = json.loads((run_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    assert study.metric_names == ["val_accuracy", "latency_ms"]
    by_id = {r["trial_id"]: r for r in trials}
    for t in study.trials:
        assert t.values[1] == pytest.approx(by_id[t.user_attrs["ray_trial_id"]]["latency_ms"])


@pytest.mark.parametrize("typed", ["cost.latency=false", "cost.latency=no"])
def test_latency_objective_without_measurement_is_one_clear_error(typed, tmp_path, capsys):
    assert main([str(SPEC), "--storage", str(tmp_path), "--set", typed, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "latency_ms is measured only with cost.latency: true" in err and len(err.strip().splitlines()) == 1
