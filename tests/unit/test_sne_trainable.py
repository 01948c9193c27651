"""The SNE trainable: report contract, curve, checkpoint round trip, rebuild, adaptive activation."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from unittest import mock

import pytest
import ray.tune
import torch
from ray import tune

import trainables.sne.trainable as sne_module
from search.space import sample_configs
from search.spec import load_spec
from trainables.data import load_splits
from trainables.registry import get_trainable
from trainables.report import BASE_KEYS
from trainables.sne.adaptive import EnsembleOutputs, SubsetCurve, dynamic_activation, greedy_order, subset_logits
from trainables.sne.config import SNETrialConfig
from trainables.sne.distill import student_dropout
from trainables.sne.family import SNE_REPORT_KEYS
from trainables.training import load_state

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(cache_dir: Path, **sections) -> dict:
    config = {
        "data": {"name": "digits", "val_fraction": 0.2, "train_subset": 300},
        "teacher": {"arch": "cnn", "width": 8, "epochs": 3, "batch_size": 32, "lr": 1e-2},  # ~90 % in 0.2 s
        "sne": {"students": 3, "active": 2, "timesteps": 2, "partition": "correlation"},
        "student": {"shape": "mlp", "width": 16},
        "budget": {"epochs": 2},
        "optim": {"lr": 5e-3},
        "runtime": {"device": "cpu", "threads": 1, "cache_dir": str(cache_dir)},
        "seed": 0,
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def run_trial(config: dict, keep: Path, resume_from: Path | None = None) -> tuple[list[dict], list[Path]]:
    """Run the trainable outside Ray: collect reports and copies of the checkpoints."""
    reports: list[dict] = []
    saved: list[Path] = []
    keep.mkdir(parents=True, exist_ok=True)

    def report(metrics, checkpoint=None):
        reports.append(dict(metrics))
        if checkpoint is not None:
            dest = keep / f"checkpoint_{len(list(keep.glob('checkpoint_*')))}"
            shutil.copytree(checkpoint.path, dest)
            saved.append(dest)

    def get_checkpoint():
        return tune.Checkpoint.from_directory(str(resume_from)) if resume_from else None

    # The shared loop (trainables.loop.run_trial) does ``from ray import tune`` when it runs.
    with mock.patch.object(ray.tune, "report", report), mock.patch.object(ray.tune, "get_checkpoint", get_checkpoint):
        get_trainable("sne").trainable(config)
    return reports, saved


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sne_trial")
    config = tiny_config(tmp / "cache")
    reports, saved = run_trial(config, tmp)
    return config, reports, saved, tmp


def test_every_report_carries_every_key(trial):
    _, reports, _, _ = trial
    assert [r["epoch"] for r in reports] == [1, 2]
    for r in reports:
        missing = [k for k in (*BASE_KEYS, *SNE_REPORT_KEYS) if k not in r]
        assert not missing
        assert r["students"] == 3 and r["students_active"] == 2
    assert math.isnan(reports[0]["test_accuracy"]) and 0 < reports[-1]["test_accuracy"] <= 1
    assert reports[-1]["budget_fraction"] == 1.0


def test_distillation_learns(trial):
    _, reports, _, _ = trial
    assert reports[1]["distill_mse"] < reports[0]["distill_mse"]
    full = SubsetCurve.from_json(reports[1]["curve"]).val_accuracy[-1]
    assert full > 0.2, "two epochs on 300 digits must beat chance (0.1) clearly"


def test_objectives_are_measured_at_the_active_subset_of_the_curve(trial):
    _, reports, _, _ = trial
    last = reports[-1]
    curve = SubsetCurve.from_json(last["curve"])
    assert curve.k == [1, 2, 3]
    assert sorted(curve.students[-1]) == [0, 1, 2]
    assert all(curve.students[k][:k] == curve.students[k - 1] for k in range(1, 3)), "greedy subsets are nested"
    assert last["val_accuracy"] == pytest.approx(curve.val_accuracy[1])
    assert last["energy_uj"] == pytest.approx(curve.energy_uj[1])
    assert last["synops"] == pytest.approx(curve.synops[1])
    assert last["test_accuracy"] == pytest.approx(curve.test_accuracy[1])
    assert all(a < b for a, b in zip(curve.energy_uj, curve.energy_uj[1:])), "every extra student costs energy"
    assert last["energy_ratio"] == pytest.approx(last["teacher_energy_uj"] / last["energy_uj"])
    assert last["macs_ratio"] == pytest.approx(last["teacher_macs"] / (last["macs"] + last["synops"]))
    assert last["teacher_energy_uj"] == pytest.approx(last["teacher_macs"] * 4.6e-6)
    assert 0 < last["spike_rate"] < 1
    assert 1 <= last["dynamic_students"] <= 3
    assert curve.teacher_accuracy == last["teacher_accuracy"]
    assert len(curve.dynamic_threshold) == len(curve.dynamic_accuracy) == len(curve.dynamic_energy_uj)


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(trial, tmp_path):
    config, reports, saved, _ = trial
    resumed, _ = run_trial(config, tmp_path, resume_from=saved[0])
    assert [r["epoch"] for r in resumed] == [2]
    for key in ("val_accuracy", "val_loss", "energy_uj", "synops", "spike_rate", "distill_mse", "test_accuracy", "curve"):
        assert resumed[0][key] == reports[-1][key], key


def test_the_registry_rebuilds_the_trained_ensemble_from_its_checkpoint(trial):
    config, reports, saved, _ = trial
    state = load_state(saved[-1])
    entry = get_trainable("sne")
    splits = load_splits(config["data"])
    ensemble = entry.build_model(config, splits.info)
    ensemble.load_state_dict(state["model"])
    ensemble.eval()
    with torch.no_grad():
        accuracy = (ensemble(splits.x_val).argmax(1) == splits.y_val).float().mean().item()
    assert accuracy == pytest.approx(reports[-1]["val_accuracy"], abs=1e-6)
    assert int(ensemble.active) == 2


def test_the_teacher_is_cached_for_the_next_trial(trial, tmp_path):
    config, reports, _, tmp = trial
    logs = list((tmp / "cache").glob("teacher-*.log"))
    assert len(logs) == 1 and len(logs[0].read_text().splitlines()) == 1
    other, _ = run_trial({**config, "seed": 1, "budget": {"epochs": 1}}, tmp_path)
    assert len(logs[0].read_text().splitlines()) == 1, "a second trial must reuse the cached teacher"
    assert other[0]["teacher_accuracy"] == reports[0]["teacher_accuracy"]


def test_ann_bridge_starts_the_spiking_students_closer_to_the_teacher(tmp_path):
    cache = tmp_path / "cache"
    scratch, _ = run_trial(tiny_config(cache, budget={"epochs": 1}, student={"init": "scratch"}), tmp_path / "a")
    bridged, _ = run_trial(tiny_config(cache, budget={"epochs": 1}, student={"init": "ann_bridge", "bridge_epochs": 4}), tmp_path / "b")
    assert bridged[0]["distill_mse"] < scratch[0]["distill_mse"]


def test_sne_config_validation():
    # Validated as the ``sne`` section of a trial config, so the error names the dotted parameter.
    with pytest.raises(ValueError, match="sne.active"):
        SNETrialConfig.model_validate({"sne": {"students": 2, "active": 3}})
    with pytest.raises(ValueError, match="sne.partition"):
        SNETrialConfig.model_validate({"sne": {"partition": "kmeans"}})
    with pytest.raises(ValueError, match="sne.dropout"):
        SNETrialConfig.model_validate({"sne": {"dropout": 1.0}})
    defaults = SNETrialConfig().model_dump()
    assert set(defaults) >= {"data", "budget", "cost", "runtime", "seed", "optim", "teacher", "sne", "student"}
    assert defaults["runtime"]["cache_dir"] is None
    assert get_trainable("sne").defaults == defaults


def _outputs(contributions: torch.Tensor, labels: torch.Tensor) -> EnsembleOutputs:
    k = contributions.shape[0]
    return EnsembleOutputs(
        z=torch.zeros(labels.shape[0], k),
        contributions=contributions,
        base=torch.zeros(contributions.shape[2]),
        spikes=[torch.zeros(1, labels.shape[0]) for _ in range(k)],
        labels=labels,
        part_sizes=[1] * k,
    )


def test_greedy_order_picks_the_most_useful_student_first():
    labels = torch.tensor([0, 1, 0, 1])
    right = torch.nn.functional.one_hot(labels, 2).float() * 3
    wrong = torch.nn.functional.one_hot(1 - labels, 2).float() * 3
    half = torch.cat([right[:2], wrong[2:]])
    out = _outputs(torch.stack([wrong, half, right]), labels)
    order, accuracies, _ = greedy_order(out)
    assert order[0] == 2 and accuracies[0] == 1.0
    assert len(order) == 3 and sorted(order) == [0, 1, 2]
    assert accuracies[-1] == (subset_logits(out, [0, 1, 2]).argmax(1) == labels).float().mean().item()


def test_dynamic_activation_stops_at_the_confidence_threshold():
    labels = torch.tensor([0, 0])
    # Sample 0 is confident after the first student; sample 1 only after the second.
    first = torch.tensor([[4.0, 0.0], [0.1, 0.0]])
    second = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    out = _outputs(torch.stack([first, second]), labels)
    correct, used = dynamic_activation(out, [0, 1], threshold=0.9)
    assert used.tolist() == [1, 2] and correct.all()
    _, used = dynamic_activation(out, [0, 1], threshold=0.01)
    assert used.tolist() == [1, 1]
    _, used = dynamic_activation(out, [0, 1], threshold=1.0)
    assert used.tolist() == [2, 2]  # never confident enough: every student runs


def test_student_dropout_keeps_at_least_one_student_per_sample():
    generator = torch.Generator().manual_seed(0)
    keep = student_dropout(4000, 3, 0.6, generator)
    assert keep.any(dim=1).all()
    # Without the rescue rule 0.6 would be dropped; rescue adds back 0.6**3 / 3 per student.
    assert keep.float().mean().item() == pytest.approx(0.4 + 0.6**3 / 3, abs=0.02)
    assert student_dropout(10, 4, 0.0, generator).all()


@pytest.mark.parametrize("name", ["sne_quickstart.yaml", "sne_cifar10.yaml", "sne_digits28.yaml", "sne_fashion.yaml"])
def test_sne_spaces_load_and_keep_active_within_students(name):
    spec = load_spec(ROOT / "spaces" / name)
    assert spec.trainable == "sne"
    assert spec.space["sne.active"].bounds[1] == "$sne.students"
    for params in sample_configs(spec, 20):
        assert 1 <= params["sne.active"] <= params["sne.students"]


def test_with_augmentation_the_teacher_sees_every_augmented_batch():
    from trainables.config import OptimConfig
    from trainables.data import DataInfo, Splits
    from trainables.sne.config import DistillConfig, TeacherConfig
    from trainables.sne.distill import distill_epoch, teacher_targets
    from trainables.sne.teacher import build_teacher
    from trainables.training import make_lr_schedule, make_optimizer

    torch.manual_seed(0)
    info = DataInfo("toy", (3, 8, 8), 4, 40, 8, 8)
    x = torch.randn(40, 3, 8, 8)
    y = torch.randint(0, 4, (40,))
    splits = Splits(info, x, y, x[:8], y[:8], x[:8], y[:8], augment=True)
    teacher = build_teacher(TeacherConfig(width=2), info).eval()
    config = {"sne": {"students": 2, "active": 1}, "student": {"shape": "conv", "channels": 2}, "teacher": {"width": 2}, "seed": 0}
    ensemble = sne_module.build_ensemble(SNETrialConfig.model_validate(config), info, teacher, teacher_targets(teacher, x))
    seen: list[torch.Tensor] = []
    handle = teacher.body.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    optimizer = make_optimizer(ensemble.parameters(), OptimConfig(name="adam", lr=1e-3, weight_decay=0.0))
    schedule = make_lr_schedule(optimizer, "constant", 10)
    parts = distill_epoch(ensemble, teacher, splits, None, optimizer, schedule, 16, torch.Generator().manual_seed(0), 1, DistillConfig())
    handle.remove()
    assert [len(batch) for batch in seen] == [16, 16, 8]  # the teacher ran on every training batch
    samples = torch.cat(seen)
    unchanged = sum(any(torch.equal(s, original) for original in x) for s in samples)
    assert unchanged < len(samples) / 2, "the teacher must see the augmented inputs, not the originals"
    assert all(math.isfinite(v) for v in parts.values())
