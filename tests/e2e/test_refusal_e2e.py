"""Refusal before training in real sweeps: only candidates that can be feasible are trained; a space where every candidate breaks a constraint exits 2 with one line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from search.spec import load_spec
from tests.conftest import ROOT
from trainables.data import check_available
from trainables.report import REFUSED_STATE

QUICKSTART = ROOT / "spaces" / "quickstart.yaml"
from tests.unit.test_refusal import _static_macs


def _sweep(storage, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [sys.executable, "-m", "search.run", str(QUICKSTART), "--storage", str(storage), "--num-cpus", "2", "--quiet", *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.e2e
def test_a_constrained_quickstart_trains_only_candidates_that_can_be_feasible(tmp_path):
    args = ["--num-samples", "8", "--set", "budget.epochs=2", "--set", 'constraints=["macs <= 10000"]']
    proc = _sweep(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "quickstart"
    rows = pq.read_table(run_dir / "trials.parquet").to_pylist()
    trained = [r for r in rows if r["state"] != REFUSED_STATE]
    refused = [r for r in rows if r["state"] == REFUSED_STATE]
    assert len(trained) == 8 and all(r["state"] == "TERMINATED" for r in trained)
    assert refused and f"refused before training: {len(refused)} candidates" in proc.stdout
    spec = load_spec(run_dir / "spec.yaml")
    info = check_available(spec.data.model_dump())
    for row in trained:  # 0 epochs on candidates whose static costs break the constraint
        assert row["macs"] <= 10000 and _static_macs(spec, {n: row[n] for n in spec.space}, info) <= 10000
    for row in refused:  # recorded with their costs, never trained
        assert row["macs"] > 10000 and math.isnan(row["val_accuracy"]) and "macs <= 10000" in row["error"]
    epoch_ids = set(pq.read_table(run_dir / "epochs.parquet").column("trial_id").to_pylist())
    assert epoch_ids == {r["trial_id"] for r in trained}
    # Two trials at a time (--num-cpus 2): no config suggested twice.
    keys = [tuple(r[n] for n in spec.space) for r in rows]
    assert len(set(keys)) == len(keys)
    # A resumed finished sweep keeps every row, refused ones included, as it was.
    again = _sweep(tmp_path, *args, "--resume")
    assert again.returncode == 0, again.stdout + again.stderr
    after = pq.read_table(run_dir / "trials.parquet").to_pylist()
    assert json.dumps(after, sort_keys=True) == json.dumps(rows, sort_keys=True)  # NaN-aware: the same values


@pytest.mark.e2e
def test_a_space_where_every_candidate_breaks_a_constraint_exits_2_with_one_line(tmp_path):
    proc = _sweep(tmp_path, "--num-samples", "4", "--set", 'constraints=["macs <= 10"]')
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "refused before training: their costs break macs <= 10 (the lowest macs sampled is" in errors[0]
    rows = pq.read_table(tmp_path / "quickstart" / "trials.parquet").to_pylist()
    assert len(rows) == 200 and all(r["state"] == REFUSED_STATE for r in rows)  # nothing was trained
