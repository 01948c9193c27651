"""A run dir written by an earlier release (6e60cc9: a quickstart sweep stopped by SIGTERM with 3
trials finished, one mid-training and one only suggested) still analyses and resumes, and the
resume changes nothing that had finished."""

from __future__ import annotations

import math
import shutil

import optuna

from search.rundir import RunDir, load_study
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "run_dir_6e60cc9"
#: The command the sweep was started with (its interrupt line names it, plus --resume).
ARGS = ["spaces/quickstart.yaml", "--set", "budget.epochs=8", "--set", "model.width=64", "--set", "optim.batch_size=32", "--num-samples", "6"]
FINISHED = {"4595547e", "a4157003", "f3eb9838"}


def _copy(tmp_path):
    run_dir = tmp_path / "runs" / "legacy"
    shutil.copytree(FIXTURE, run_dir)
    return run_dir


def _same(a, b):
    return a.keys() == b.keys() and all(
        (isinstance(a[k], float) and isinstance(b[k], float) and math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def test_the_earlier_release_run_dir_reads_through_the_typed_records(tmp_path):
    from analysis.results import analyze_run, load_run

    run_dir = _copy(tmp_path)
    records = RunDir(str(run_dir))
    meta = records.read_meta()
    assert meta.study_file == "study.journal" and meta.trainable == "g2g" and meta.num_cpus == 2
    trials, epochs = records.read_records()
    assert {r["trial_id"] for r in trials.to_pylist() if r["state"] == "TERMINATED"} == FINISHED
    study = load_study(meta.study_name, records.study_path(meta), "fixture")
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2  # one of the three stopped early: PRUNED
    run = load_run(run_dir)
    front = analyze_run(run_dir)
    assert run.trials.num_rows == 4 and set(front.trial_ids) <= FINISHED and len(front.trial_ids) >= 1
