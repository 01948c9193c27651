"""Fault tolerance of the driver: SIGKILL mid-sweep, then --resume; Ctrl-C stops cleanly."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pyarrow.parquet as pq
import pytest
import yaml
from optuna.trial import TrialState

from search.searcher import ORPHAN_ATTR
from tests.conftest import ROOT, tiny_spec

pytestmark = pytest.mark.e2e

NUM_SAMPLES = 10


def _spec_file(tmp_path):
    raw = tiny_spec(budget={"epochs": 4})
    raw["run"] = {"num_samples": NUM_SAMPLES, "seed": 0, "max_concurrent": 2}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _start(args, tmp_path):
    log = open(tmp_path / "driver.log", "w")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    # Own session: the driver and the Ray processes it starts can be ended together, by pgid.
    return subprocess.Popen([sys.executable, "-m", "search.run", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _finished(run_dir):
    path = run_dir / "trials.parquet"
    if not path.exists():
        return 0
    try:
        states = pq.read_table(path, columns=["state"]).column("state").to_pylist()
    except Exception:  # noqa: BLE001 - never half-written (atomic rename), but be patient
        return 0
    return sum(s == "TERMINATED" for s in states)


def _wait_for(predicate, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _kill_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def test_sigkilled_driver_resumes_to_exactly_num_samples(tmp_path):
    spec = _spec_file(tmp_path)
    storage = tmp_path / "runs"
    run_dir = storage / "tiny"
    proc = _start([str(spec), "--storage", str(storage), "--num-cpus", "2", "--quiet"], tmp_path)
    try:
        assert _wait_for(lambda: _finished(run_dir) >= 3), (tmp_path / "driver.log").read_text()
        assert proc.poll() is None, "the sweep finished before it could be killed"
    finally:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
    before = _finished(run_dir)
    assert 3 <= before < NUM_SAMPLES

    resumed = subprocess.run(
        [sys.executable, "-m", "search.run", str(spec), "--storage", str(storage), "--num-cpus", "2", "--resume", "--quiet"],
        cwd=ROOT, env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, capture_output=True, text=True, timeout=400,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    ids = [t["trial_id"] for t in trials]
    assert len(trials) == NUM_SAMPLES and len(set(ids)) == NUM_SAMPLES, collections.Counter(ids)
    assert all(t["state"] == "TERMINATED" for t in trials), [(t["trial_id"], t["state"], t["error"]) for t in trials]
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    keys = [(e["trial_id"], e["epoch"]) for e in epochs]
    assert len(keys) == len(set(keys)), "no duplicated epoch rows"
    assert {e["trial_id"] for e in epochs} == set(ids)

    meta = json.loads((run_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=f"sqlite:///{run_dir / 'study.db'}")
    assert not [t for t in study.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    counted = [t for t in study.trials if not t.user_attrs.get(ORPHAN_ATTR)]
    assert sorted(t.user_attrs["ray_trial_id"] for t in counted) == sorted(ids), "one Optuna trial per Ray trial"


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    spec = _spec_file(tmp_path)
    storage = tmp_path / "runs"
    proc = _start([str(spec), "--storage", str(storage), "--num-cpus", "2", "--quiet"], tmp_path)
    try:
        assert _wait_for(lambda: _finished(storage / "tiny") >= 1)
        os.kill(proc.pid, signal.SIGINT)  # the driver only, as a terminal's Ctrl-C would
        code = proc.wait(timeout=120)
    finally:
        _kill_group(proc, signal.SIGKILL)
        proc.wait()
    output = (tmp_path / "driver.log").read_text()
    assert code == 130, output[-2000:]
    assert "--resume" in output and "Traceback" not in output
