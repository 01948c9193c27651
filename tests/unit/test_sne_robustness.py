"""Noise robustness and the per-trial curve of an SNE trial (analysis.robustness)."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from analysis.robustness import (
    gaussian_noise,
    load_curve,
    load_trial,
    noise_robustness,
    salt_and_pepper,
)
from analysis.robustness.__main__ import main
from tests.unit.test_sne_trainable import run_trial, tiny_config
from trainables.sne.adaptive import SubsetCurve


def test_gaussian_noise_has_the_requested_spread_and_stays_in_range():
    pixels = torch.full((200, 1, 8, 8), 0.5)
    generator = torch.Generator().manual_seed(0)
    noisy = gaussian_noise(pixels, 0.05, generator)
    assert (noisy - pixels).std().item() == pytest.approx(0.05, rel=0.05)
    loud = gaussian_noise(pixels, 1.0, torch.Generator().manual_seed(0))
    assert loud.min() >= 0 and loud.max() <= 1


def test_salt_and_pepper_flips_the_requested_fraction_to_black_or_white():
    pixels = torch.full((100, 1, 16, 16), 0.5)
    noisy = salt_and_pepper(pixels, 0.1, torch.Generator().manual_seed(0))
    changed = noisy != pixels
    assert changed.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert set(noisy[changed].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(salt_and_pepper(pixels, 0.0, torch.Generator().manual_seed(0)), pixels)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-trial run dir as the sweep writes it: trials.parquet, checkpoint, teacher cache."""
    root = tmp_path_factory.mktemp("run")
    config = tiny_config(root / "cache", sne={"students": 3, "active": 2})
    reports, saved = run_trial(config, root / "trial_abc123")
    last = reports[-1]
    row = {"trial_id": "abc123", "state": "TERMINATED", "checkpoint": str(saved[-1]), **{k: last[k] for k in ("val_accuracy", "energy_uj", "curve", "budget_fraction")}}
    pq.write_table(pa.Table.from_pylist([row]), root / "trials.parquet")
    return root, last


def test_clean_accuracy_of_each_subset_matches_the_reported_test_curve(run_dir):
    root, last = run_dir
    _, ensemble, teacher, splits = load_trial(root, "abc")
    pixels = splits.x_test * splits.std[:, None, None] + splits.mean[:, None, None]
    table = noise_robustness(teacher.model, ensemble, pixels, splits.y_test, splits.mean, splits.std, levels={"gaussian": (0.0, 0.3)})
    curve = SubsetCurve.from_json(last["curve"])
    for k in (1, 2, 3):
        assert table.accuracy(f"sne_k{k}", "gaussian", 0.0) == pytest.approx(curve.test_accuracy[k - 1], abs=1e-6)
    assert table.accuracy("teacher", "gaussian", 0.0) == pytest.approx(teacher.test_accuracy, abs=1e-6)
    for row in table.rows:
        if row["level"] == 0.0:
            assert row["relative_drop"] == 0.0
        else:
            assert math.isclose(row["relative_drop"], 1 - row["accuracy"] / table.accuracy(row["model"], "gaussian", 0.0))
    assert table.accuracy("teacher", "gaussian", 0.3) < table.accuracy("teacher", "gaussian", 0.0)


def test_cli_writes_table_and_plots(run_dir, tmp_path, capsys):
    root, last = run_dir
    assert main([str(root), "--trial", "abc123", "--out", str(tmp_path)]) == 0
    for name in ("curve.png", "robustness.png", "robustness.csv", "robustness.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    csv = (tmp_path / "robustness.csv").read_text().splitlines()
    assert csv[0] == "model,students,noise,level,accuracy,relative_drop"
    assert len(csv) - 1 == (1 + 3) * (7 + 5)  # teacher + 3 subsets, 7 Gaussian + 5 salt-and-pepper levels
    assert "| teacher |" in capsys.readouterr().out
    assert load_curve(root, "abc123").k == [1, 2, 3]


def test_cli_reports_user_errors_in_one_line(run_dir, tmp_path, capsys):
    root, _ = run_dir
    assert main([str(root), "--trial", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no trial matching 'nope'")
    assert main([str(tmp_path / "missing"), "--trial", "abc"]) == 2
