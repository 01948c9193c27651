"""A run dir written by an earlier release (6e60cc9: a quickstart sweep stopped by SIGTERM with 3
trials finished, one mid-training and one only suggested) still analyses and resumes, and the
resume changes nothing that had finished."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import optuna
import pyarrow.parquet as pq
import pytest

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


@pytest.mark.e2e
def test_the_earlier_release_run_dir_resumes_without_changing_what_finished(tmp_path):
    run_dir = _copy(tmp_path)
    before = {r["trial_id"]: r for r in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    before_epochs = {(e["trial_id"], e["epoch"]): e for e in pq.read_table(run_dir / "epochs.parquet").to_pylist()}
    meta = RunDir(str(run_dir)).read_meta()
    before_study = {t.number: (t.state, t.values) for t in load_study(meta.study_name, run_dir / "study.journal", "fixture").trials}

    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", *ARGS, "--storage", str(tmp_path / "runs"), "--name", "legacy", "--resume"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "--num-cpus 2, as the sweep was started" in proc.stdout
    assert "resuming: 3 trials finished before (kept as they are); 2 unfinished continue (1 from a checkpoint)" in proc.stdout, proc.stdout

    after = {r["trial_id"]: r for r in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    for trial_id in FINISHED:
        assert _same(before[trial_id], after[trial_id]), trial_id
    after_epochs = {(e["trial_id"], e["epoch"]): e for e in pq.read_table(run_dir / "epochs.parquet").to_pylist()}
    for key, row in before_epochs.items():
        if key[0] in FINISHED or key[1] <= 2:  # the mid-training trial continues after its checkpoint (epoch 2)
            assert _same(row, after_epochs[key]), key
    assert sum(r["state"] in ("TERMINATED", "ERROR") for r in after.values()) == 6
    after_study = {t.number: (t.state, t.values) for t in load_study(meta.study_name, run_dir / "study.journal", "fixture").trials}
    for number, (state, values) in before_study.items():
        if state.is_finished():
            assert after_study[number] == (state, values)

    analysed = subprocess.run([sys.executable, "-m", "analysis", "pareto", str(run_dir)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert analysed.returncode == 0 and "hypervolume" in analysed.stdout.lower(), analysed.stdout + analysed.stderr
