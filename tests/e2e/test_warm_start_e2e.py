"""A sweep warm-started from an earlier one, stopped by SIGTERM and resumed, through the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from search.rundir.records import STUDY_FILE, study_storage
from search.study import DUPLICATE_ATTR, RAY_TRIAL_ATTR, WARM_ATTR
from tests.conftest import ROOT, rows_of as _rows, same_row as _same

pytestmark = pytest.mark.e2e

ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BRAINSWEEP_FLUSH_S": "0.5"}
SEARCHED = ["model.grouping", "model.groups", "model.p_inter", "model.width", "model.depth", "optim.lr"]


def _run(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "search.run", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400, **kwargs)


def _key(row):
    return tuple(repr(row[name]) for name in SEARCHED)


def test_a_warm_started_sweep_trains_only_new_configs_and_resumes_as_any_other(tmp_path):
    storage = tmp_path / "runs"
    common = ["spaces/quickstart.yaml", "--storage", str(storage), "--num-cpus", "2", "--set", "budget.epochs=6", "--set", "scheduler.grace_period=2"]
    early = _run([*common, "--name", "early", "--num-samples", "6", "--set", "run.seed=11"])
    assert early.returncode == 0, early.stdout[-2000:] + early.stderr[-2000:]
    earlier = {r["trial_id"]: r for r in _rows(storage / "early" / "trials.parquet")}

    # A dry run says what would be taken, and writes nothing.
    dry = _run([*common, "--name", "warm", "--num-samples", "8", "--warm-start", str(storage / "early"), "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert f"would be told from {storage / 'early'}: 6 trials" in dry.stdout and not (storage / "warm").exists()

    args = [*common, "--name", "warm", "--num-samples", "8", "--warm-start", str(storage / "early")]
    log = tmp_path / "warm.log"
    proc = subprocess.Popen([sys.executable, "-m", "search.run", *args], cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    run_dir = storage / "warm"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if sum(r["state"] == "TERMINATED" for r in _rows(run_dir / "trials.parquet")) >= 3:
                os.killpg(proc.pid, signal.SIGTERM)
                break
            time.sleep(0.05)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert f"warm start from {storage / 'early'}: 6 trials" in output
    assert "not counted in the 8 trials, never trained again" in output
    before = {r["trial_id"]: r for r in _rows(run_dir / "trials.parquet")}
    finished = {k for k, r in before.items() if r["state"] == "TERMINATED"}

    resumed = _run([*args[:-2], "--resume"])  # the warm start is the sweep's own: not named again
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "warm-started with 6 trials from" in resumed.stdout
    again = _run([*args, "--resume"])
    assert again.returncode == 2 and again.stderr.strip().startswith("error: --warm-start: a warm start is chosen when a sweep starts")

    after = {r["trial_id"]: r for r in _rows(run_dir / "trials.parquet")}
    assert len(after) == 8 and all(r["state"] == "TERMINATED" for r in after.values())
    for trial_id in finished:
        assert _same(after[trial_id], before[trial_id])
    # Never a config the earlier sweep trained; no epoch rows of the earlier sweep's trials.
    assert not {_key(r) for r in after.values()} & {_key(r) for r in earlier.values()}
    assert {e["trial_id"] for e in _rows(run_dir / "epochs.parquet")} <= set(after)
    told = {r["trial_id"] for r in _rows(run_dir / "warm_start.parquet")}
    assert told == {f"{storage / 'early'}#{t}" for t in earlier}

    meta = json.loads((run_dir / "sweep.json").read_text())
    assert meta["warm_start"][0]["taken"] == 6
    study = optuna.load_study(study_name=meta["study_name"], storage=study_storage(run_dir / STUDY_FILE))
    warm = [t for t in study.trials if t.user_attrs.get(WARM_ATTR)]
    assert sorted(t.user_attrs[WARM_ATTR] for t in warm) == sorted(told), "each earlier trial told once, across the resume"
    for t in warm:
        row = earlier[t.user_attrs[WARM_ATTR].rsplit("#", 1)[1]]
        if t.state == TrialState.COMPLETE:
            assert t.values == [row["val_accuracy"], row["energy_uj"]]
        else:
            assert t.state == TrialState.PRUNED and row["budget_fraction"] < 1
    own = [t for t in study.trials if t.user_attrs.get(RAY_TRIAL_ATTR) and not t.user_attrs.get(DUPLICATE_ATTR)]
    assert sorted(t.user_attrs[RAY_TRIAL_ATTR] for t in own) == sorted(after)
    assert "warm start: 6 trials of" in resumed.stdout  # the summary names them apart
