"""End-to-end: a real ASHA sweep on digits, then its front, plots, a selected bundle and seeds.

One small sweep (Ray Tune + Optuna, G2GNet on digits) is shared by the tests; the pareto command
runs as users run it (``python -m analysis.pareto`` in a subprocess), and the bundle's seed check
launches a second, tiny sweep through ``search.run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from analysis.results import analyze_run, load_run
from analysis.bundle import REPRODUCE_TOLERANCE
from analysis.select.__main__ import main as select_main
from search.run import main as run_main
from tests.conftest import ROOT, tiny_spec

pytestmark = pytest.mark.e2e

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analysis_sweep")
    raw = tiny_spec(
        budget={"epochs": 4},
        objectives=[{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 3},
        space={
            "model.groups": {"choice": [2, 4]},
            "model.p_inter": {"float": [0.0, 0.6]},
            "optim.lr": {"log": [1e-3, 2e-2]},
        },
        fixed={"model.width": 32, "model.depth": 1, "optim.batch_size": 128},
    )
    raw["name"] = "qs_tiny"
    raw["run"] = {"num_samples": 6, "seed": 0, "max_concurrent": 2}
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_main([str(path), "--storage", str(tmp / "runs"), "--num-cpus", "2", "--quiet"]) == 0
    return tmp / "runs" / "qs_tiny"


def test_asha_stopped_trials_are_not_on_the_front_of_a_real_sweep(sweep):
    run = load_run(sweep)
    budgets = np.array(run.trials.column("budget_fraction").to_pylist())
    assert (budgets < 1).any() and (budgets == 1).any(), "ASHA must stop some of the 6 trials"
    front = analyze_run(run)
    stopped = {tid for tid, b in zip(run.trials.column("trial_id").to_pylist(), budgets) if b < 1}
    assert not stopped & set(front.trial_ids)
    assert front.excluded.get("stopped early") == len(stopped)
    assert len(front.front) >= 1 and front.hypervolume > 0


def test_pareto_command_prints_the_front_and_writes_png_and_html(sweep, tmp_path):
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    png, html = tmp_path / "front.png", tmp_path / "front.html"
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.pareto", str(sweep), "--png", str(png), "--html", str(html)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr
    front = analyze_run(sweep)
    for i in front.front:
        assert front.trial_ids[i] in proc.stdout
    assert f"hypervolume: {front.hypervolume:.6g}" in proc.stdout
    assert png.read_bytes()[:8] == PNG_MAGIC
    text = html.read_text()
    assert all(f"trial {front.trial_ids[i]}" in text for i in front.front)


def test_select_exports_a_bundle_that_reproduces_its_accuracy_and_verifies_seeds(sweep, tmp_path, capsys):
    assert select_main([str(sweep), "--where", "energy_uj <= 0.0000001"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no trial satisfies --where") and err.count("\n") == 1

    code = select_main([str(sweep), "--where", "energy_uj <= 2", "--prefer", "val_accuracy", "--export", str(tmp_path / "out"), "--verify-seeds", "2", "--num-cpus", "2"])
    assert code == 0
    (bundle,) = (tmp_path / "out").iterdir()
    metrics = json.loads((bundle / "metrics.json").read_text())
    recorded = metrics["recorded"]["val_accuracy"]
    assert abs(metrics["reproduced"]["val_accuracy"] - recorded) <= REPRODUCE_TOLERANCE
    assert metrics["recorded"]["energy_uj"] <= 2
    seeds = metrics["seeds"]
    assert seeds["seeds"] == [metrics["seed"], metrics["seed"] + 1]
    assert seeds["summary"]["val_accuracy"]["n"] == 2
    values = [r["val_accuracy"] for r in seeds["rows"]]
    assert seeds["summary"]["val_accuracy"]["mean"] == pytest.approx(np.mean(values))
    assert seeds["summary"]["val_accuracy"]["std"] == pytest.approx(np.std(values, ddof=1))
    # Retrained with its own seed, the configuration lands where the sweep recorded it.
    own = next(r for r in seeds["rows"] if r["seed"] == metrics["seed"])
    assert abs(own["val_accuracy"] - recorded) <= REPRODUCE_TOLERANCE
    card = (bundle / "card.md").read_text()
    assert "Re-trained with 2 seeds" in card and "±" in card
