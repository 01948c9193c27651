"""End-to-end outcomes of whole sweeps: a typed ``--set`` value reaches the results; an all-error sweep exits 1."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from search.run import main
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e


def _write(tmp_path, **sections):
    raw = tiny_spec(**sections)
    raw["run"] = {"num_samples": 2, "seed": 0, "max_concurrent": 2}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_set_lr_typed_as_users_type_it_trains_with_that_float(tmp_path, capsys):
    path = _write(tmp_path, budget={"epochs": 1})
    code = main([str(path), "--storage", str(tmp_path / "runs"), "--num-cpus", "2", "--quiet", "--set", "optim.lr=1e-3"])
    assert code == 0, capsys.readouterr().err
    rows = pq.read_table(tmp_path / "runs" / "tiny" / "trials.parquet").to_pylist()
    assert len(rows) == 2 and all(r["state"] == "TERMINATED" for r in rows)
    assert all(isinstance(r["optim.lr"], float) and r["optim.lr"] == 0.001 for r in rows)
    saved = yaml.safe_load((tmp_path / "runs" / "tiny" / "spec.yaml").read_text())
    assert saved["fixed"]["optim.lr"] == 0.001 and "optim.lr" not in saved["space"]


def test_a_sweep_whose_every_trial_errors_exits_1_saying_where_the_errors_are(tmp_path, capsys):
    # Every trial diverges in its first epoch (a learning rate of 1e12): a failure only training
    # shows, so it is the trials that fail, each with the same one-line reason.
    path = _write(tmp_path, budget={"epochs": 1})
    diverge = ["--set", "optim.lr=1e12", "--set", "optim.name=sgd", "--set", "optim.schedule=constant", "--set", "run.max_failures=0"]
    code = main([str(path), "--storage", str(tmp_path / "runs"), "--num-cpus", "2", "--quiet", *diverge])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "all 2 trials failed" in lines[0] and "training diverged" in lines[0], err
    assert "trials.parquet" in lines[0]
    rows = pq.read_table(tmp_path / "runs" / "tiny" / "trials.parquet").to_pylist()
    assert [r["state"] for r in rows] == ["ERROR", "ERROR"] and all("training diverged" in r["error"] for r in rows)


def test_a_space_with_no_valid_config_is_refused_before_any_trial(tmp_path, capsys):
    # Every sampled model.groups (2 or 4) exceeds the fixed width 1: known from the configs
    # alone, so the sweep is refused before Ray starts (it used to fail every trial).
    path = _write(tmp_path, budget={"epochs": 1})
    code = main([str(path), "--storage", str(tmp_path / "runs"), "--num-cpus", "2", "--quiet", "--set", "model.width=1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot exceed model.width" in err, err
    assert not (tmp_path / "runs").exists()
