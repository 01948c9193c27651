"""A run dir written by an earlier release (6e60cc9: a quickstart sweep stopped by SIGTERM with 3
trials finished, one mid-training and one only suggested) resumes, and the resume changes nothing
that had finished."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from search.rundir import RunDir, load_study
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "run_dir_6e60cc9"
#: The command the sweep was started with (its interrupt line names it, plus --resume). That release's
#: quickstart started its model after 8 random trials (this one's after 4): a resume must say so.
ARGS = [
    "spaces/quickstart.yaml", "--set", "budget.epochs=8", "--set", "model.width=64", "--set", "optim.batch_size=32", "--num-samples", "6",
    "--set", "sampler.options.n_startup_trials=8",
]
FINISHED = {"4595547e", "a4157003", "f3eb9838"}
from tests.unit.test_legacy_run_dir import _copy, _same


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
