"""Experiment trackers on real sweeps: a quickstart sweep logged to MLflow (an SQLite store) and
TensorBoard, stopped by SIGTERM and resumed, holds each trial once with histories equal to the
run dir's tables; the same sweep with its tracking server down finishes with one warning."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, rows_of as _rows

pytestmark = pytest.mark.e2e
pytest.importorskip("mlflow", reason='the track extra: pip install -e ".[track]"')
pytest.importorskip("tensorboard", reason='the track extra: pip install -e ".[track]"')

NUM_SAMPLES = 6
EPOCHS = 8
ARGS = [
    "spaces/quickstart.yaml", "--num-samples", str(NUM_SAMPLES), "--num-cpus", "2",
    "--set", f"budget.epochs={EPOCHS}", "--set", "model.width=256", "--set", "model.depth=3", "--set", "optim.batch_size=32",
]
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BRAINSWEEP_FLUSH_S": "0.5", "MLFLOW_DISABLE_TELEMETRY": "true"}
#: Where MO-ASHA (quickstart: grace 4, reduction 2) or the budget may end a trial.
ENDS = (4, EPOCHS)
KEYS = ("val_accuracy", "val_loss", "macs", "energy_uj", "params", "density", "budget_fraction", "test_accuracy", "epoch")


def _stop_when_ready(proc, run_dir):
    """SIGTERM the driver's process group once 2 trials finished and one is mid-training with a checkpoint."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        final = {t["trial_id"] for t in _rows(run_dir / "trials.parquet") if t["state"] in ("TERMINATED", "ERROR")}
        if len(final) >= 2:
            recorded = {e["trial_id"] for e in _rows(run_dir / "epochs.parquet")}
            for trial_dir in run_dir.glob("trial_*"):
                trial_id = trial_dir.name[len("trial_"):]
                epochs = [int(c.name.split("_")[1]) + 1 for c in trial_dir.glob("checkpoint_*")]
                if trial_id in final or trial_id not in recorded or not epochs:
                    continue
                latest = max(epochs)
                # At a rung MO-ASHA may have ended it already (tables lag the checkpoints).
                if latest not in ENDS and min(e for e in ENDS if e > latest) - latest >= 2:
                    os.killpg(proc.pid, signal.SIGTERM)
                    return True
        time.sleep(0.05)
    return False


def _tracker_warnings(text):
    return [line for line in text.splitlines() if line.startswith(("warning: MLflow", "warning: TensorBoard"))]


def _table_histories(run_dir):
    out: dict = {}
    for row in pq.read_table(run_dir / "epochs.parquet").to_pylist():
        for key in KEYS:
            value = row.get(key)
            if isinstance(value, (int, float)) and not math.isnan(value):
                out.setdefault(row["trial_id"], {}).setdefault(key, []).append((row["epoch"], float(value)))
    return {t: {k: sorted(v) for k, v in keys.items()} for t, keys in out.items()}


def _mlflow(uri):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("q")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    nested: dict = {}
    for r in runs:
        if "mlflow.parentRunId" in r.data.tags:
            nested.setdefault(r.data.tags["brainsweep.trial_id"], []).append(r)
    histories = {
        t: {k: [(m.step, m.value) for m in client.get_metric_history(rs[0].info.run_id, k)] for k in KEYS if k in rs[0].data.metrics}
        for t, rs in nested.items()
    }
    return client, parents, nested, histories


def test_a_tracked_sweep_stopped_and_resumed_holds_each_trial_once(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # The experiment (by default the sweep's name) made beforehand, as a team would, with its
    # artefacts under tmp_path (MLflow's default is ./mlruns of the driver's working dir).
    MlflowClient(tracking_uri=uri).create_experiment("q", artifact_location=(tmp_path / "artifacts").as_uri())
    storage = tmp_path / "runs"
    run_dir = storage / "q"
    args = [*ARGS, "--storage", str(storage), "--name", "q", "--set", f"tracking.mlflow.uri={uri}", "--set", "tracking.tensorboard=true"]
    log = tmp_path / "driver.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "search.run", *args], cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert _stop_when_ready(proc, run_dir), log.read_text()[-3000:]
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = log.read_text()
    assert code == 128 + signal.SIGTERM and not _tracker_warnings(output) and "Traceback" not in output, output[-3000:]

    # Stopped: MLflow holds a prefix of each trial's rows (all of a finished trial's), never more.
    _, parents, nested, histories = _mlflow(uri)
    assert len(parents) == 1 and parents[0].info.status == "KILLED"
    table = _table_histories(run_dir)
    trials = {t["trial_id"]: t for t in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    unfinished = [t for t, row in trials.items() if row["state"] not in ("TERMINATED", "ERROR")]
    assert unfinished and all(len(runs) == 1 for runs in nested.values())
    for trial_id, keys in histories.items():
        held = max(e for e, _ in keys["epoch"])
        assert keys == {k: [(e, v) for e, v in h if e <= held] for k, h in table[trial_id].items() if any(e <= held for e, _ in h)}
        if trial_id not in unfinished:
            assert keys == table[trial_id]
    assert any(trial_id in histories for trial_id in unfinished), "a running trial's checkpointed epochs were logged"

    resumed = subprocess.run([sys.executable, "-m", "search.run", *args, "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400)
    assert resumed.returncode == 0 and not _tracker_warnings(resumed.stderr), resumed.stdout[-3000:] + resumed.stderr[-3000:]

    client, parents, nested, histories = _mlflow(uri)
    trials = {t["trial_id"]: t for t in pq.read_table(run_dir / "trials.parquet").to_pylist()}
    assert len(trials) == NUM_SAMPLES and all(t["state"] == "TERMINATED" for t in trials.values())
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(nested) == sorted(trials) and all(len(runs) == 1 for runs in nested.values())  # one nested run each
    assert histories == _table_histories(run_dir)  # every epoch once, the re-run epochs as re-run
    names = [*pq.read_table(run_dir / "trials.parquet").column_names]
    params = [n for n in names if n.startswith(("model.", "optim."))]
    for trial_id, (run,) in nested.items():
        assert run.data.params == {p: str(trials[trial_id][p]) for p in params if trials[trial_id][p] is not None}
        full = trials[trial_id]["budget_fraction"] == 1.0
        assert run.data.tags["brainsweep.state"] == ("terminated" if full else "stopped_early") and run.info.status == "FINISHED"
    hv = [m.step for m in client.get_metric_history(parents[0].info.run_id, "hypervolume")]
    assert hv == list(range(1, NUM_SAMPLES + 1))
    artifacts = {f.path for f in client.list_artifacts(parents[0].info.run_id, "front")}
    assert {"front/front.csv", "front/front.png"} <= artifacts

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial_id, keys in _table_histories(run_dir).items():
        acc = EventAccumulator(str(run_dir / "tensorboard" / trial_id), size_guidance={"scalars": 0})
        acc.Reload()
        assert {k: [(s.step, s.value) for s in acc.Scalars(k)] for k in acc.Tags()["scalars"] if k in KEYS} == {
            k: [(e, float(np.float32(v))) for e, v in h] for k, h in keys.items()
        }


def test_a_sweep_whose_tracking_server_is_down_finishes_with_one_warning(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    args = [
        "spaces/quickstart.yaml", "--num-samples", "3", "--num-cpus", "2", "--set", "budget.epochs=2", "--quiet",
        "--storage", str(tmp_path / "runs"), "--name", "down", "--set", f"tracking.mlflow.uri={uri}",
    ]
    done = subprocess.run([sys.executable, "-m", "search.run", *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    warnings = _tracker_warnings(done.stderr)
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: MLflow at {uri} failed"), done.stderr[-3000:]
    assert [line for line in done.stderr.splitlines() + done.stdout.splitlines() if uri in line] == warnings  # nothing else about it
    assert "python -m analysis track" in warnings[0]
    trials = pq.read_table(tmp_path / "runs" / "down" / "trials.parquet").to_pylist()
    assert len(trials) == 3 and all(t["state"] == "TERMINATED" for t in trials)
