"""Multi-node: a sweep across a 2-node Ray cluster on 127.0.0.1 survives losing a worker node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT, rows_of as _rows, tiny_spec

pytestmark = pytest.mark.e2e


def test_sweep_spans_two_nodes_and_survives_a_dead_worker(tmp_path):
    from ray.cluster_utils import Cluster

    num_samples = 4
    # Trials long enough (60 epochs of a 3x512 net) that one is surely mid-training when killed.
    n_epochs = 60
    raw = tiny_spec(budget={"epochs": n_epochs})
    raw["fixed"].update({"model.width": 512, "model.depth": 3})
    raw["run"] = {"num_samples": num_samples, "seed": 0, "max_concurrent": 2, "max_failures": 3}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    run_dir = tmp_path / "runs" / "tiny"

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    proc = None
    try:
        worker = cluster.add_node(num_cpus=1)
        worker_id = worker.node_id
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "search.run", str(spec), "--storage", str(tmp_path / "runs"), "--address", cluster.address],
            cwd=ROOT, env=env, stdout=open(tmp_path / "driver.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        # Wait until a trial is mid-training on the worker node (it has reported, not finished).
        victim = None
        deadline = time.monotonic() + 180
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            finished = {r["trial_id"] for r in _rows(run_dir / "trials.parquet") if r["state"] == "TERMINATED"}
            latest: dict = {}
            for r in _rows(run_dir / "epochs.parquet"):
                if r["node_id"] == worker_id:
                    latest[r["trial_id"]] = max(latest.get(r["trial_id"], 0), r["epoch"])
            # Far enough from its end that it cannot finish before the node is gone (rows lag).
            on_worker = {t for t, epoch in latest.items() if 2 <= epoch <= n_epochs // 2}
            victim = next(iter(on_worker - finished), None)
            time.sleep(0.1)
        assert victim is not None, ((tmp_path / "driver.log").read_text()[-3000:], worker_id, latest)
        cluster.remove_node(worker)  # the worker node dies mid-trial
        assert proc.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        cluster.shutdown()

    trials = pq.read_table(run_dir / "trials.parquet").to_pylist()
    assert len(trials) == num_samples and len({t["trial_id"] for t in trials}) == num_samples
    assert all(t["state"] == "TERMINATED" for t in trials), [(t["trial_id"], t["state"], t["error"]) for t in trials]
    epochs = pq.read_table(run_dir / "epochs.parquet").to_pylist()
    nodes = {e["node_id"] for e in epochs}
    assert worker_id in nodes and len(nodes) == 2, "trials ran on both nodes"
    victim_row = next(t for t in trials if t["trial_id"] == victim)
    assert victim_row["retries"] >= 1 and victim_row["budget_fraction"] == 1.0, (victim_row, [(e["trial_id"], e["epoch"], e["node_id"][:6]) for e in epochs])
    victim_nodes = {e["node_id"] for e in epochs if e["trial_id"] == victim}
    assert len(victim_nodes) == 2, "the killed trial finished on the surviving node"
    victim_epochs = sorted(e["epoch"] for e in epochs if e["trial_id"] == victim)
    assert victim_epochs == list(range(1, n_epochs + 1)), "resumed from its checkpoint: every epoch once"


def test_gpu_sweep_on_a_cluster_without_gpus_exits_2_within_a_minute(tmp_path):
    from ray.cluster_utils import Cluster

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_spec(), sort_keys=False))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "BRAINSWEEP_RESOURCE_WAIT_S": "5"}
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "search.run", str(spec), "--storage", str(tmp_path / "runs"), "--address", cluster.address,
             "--set", "run.resources.gpu=1"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        elapsed = time.monotonic() - started
    finally:
        cluster.shutdown()
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and elapsed < 60, (proc.returncode, elapsed, proc.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: no node of the Ray cluster can run a trial") and "1 GPU" in lines[0], lines
    assert not (tmp_path / "runs").exists(), "nothing written"
