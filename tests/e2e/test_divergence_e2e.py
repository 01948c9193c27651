"""A diverging trial ends as an error with a clear message; the sweep goes on."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import yaml

from search.run import main
from tests.conftest import tiny_spec

pytestmark = pytest.mark.e2e


def test_diverging_trial_is_an_error_in_the_results_and_the_sweep_finishes(tmp_path, capsys):
    raw = tiny_spec(sampler="grid", space={"optim.lr": {"choice": [0.05, 1.0e12]}})
    raw["fixed"].update({"optim.name": "sgd", "optim.schedule": "constant"})
    raw["run"] = {"seed": 0, "max_failures": 0, "max_concurrent": 2}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    code = main([str(spec), "--storage", str(tmp_path / "runs"), "--num-cpus", "2"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {r["optim.lr"]: r for r in pq.read_table(tmp_path / "runs" / "tiny" / "trials.parquet").to_pylist()}
    good, bad = rows[0.05], rows[1.0e12]
    assert good["state"] == "TERMINATED" and good["budget_fraction"] == 1.0 and good["error"] is None
    assert bad["state"] == "ERROR"
    assert bad["error"].startswith("DivergedError: training diverged at epoch 1: loss is "), bad["error"]
    assert "lower the learning rate" in bad["error"]
    assert f"{bad['trial_id']}: DivergedError" in out, "the progress output names the failed trial in one line"
