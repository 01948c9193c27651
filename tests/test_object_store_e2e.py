"""A sweep whose run dir is on an S3-compatible store (moto, on 127.0.0.1) is read back."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, tiny_spec

pytestmark = pytest.mark.e2e

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch):
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in CREDENTIALS.items() if k != "AWS_DEFAULT_REGION"},
                 region_name="us-east-1").create_bucket(Bucket="sweeps")
    yield endpoint
    server.stop()


def test_sweep_results_on_s3_are_read_back_by_analysis(tmp_path, s3_endpoint):
    from analysis.results import load_run

    raw = tiny_spec()
    raw["run"] = {"num_samples": 3, "seed": 0, "max_concurrent": 2}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    env = {**os.environ, "BRAINSWEEP_CACHE": str(tmp_path / "cache"), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "search.run", str(spec), "--storage", "s3://sweeps/runs", "--num-cpus", "2", "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run dir: s3://sweeps/runs/tiny" in proc.stdout

    run = load_run("s3://sweeps/runs/tiny")
    trials = run.trials.to_pylist()
    assert len(trials) == 3 and all(t["state"] == "TERMINATED" for t in trials)
    assert all(t["checkpoint"].startswith("sweeps/runs/tiny/trial_") for t in trials), "checkpoints live in the bucket"
    assert run.epochs is not None and run.epochs.num_rows == 3 * 3
    assert run.spec.name == "tiny"
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(Bucket="sweeps")["Contents"]}
    assert {"runs/tiny/study.db", "runs/tiny/spec.yaml", "runs/tiny/trials.parquet"} <= keys
    assert not (tmp_path / "runs").exists()
