"""Ray Tune function trainable for SNE: a teacher distilled into an ensemble of spiking students.

One trial (METHODS.md §2):

1. load the data; get the teacher — trained once per sweep and cached in ``runtime.cache_dir``
   (see :func:`trainables.sne.teacher.obtain_teacher`), or loaded from ``teacher.checkpoint``;
2. partition the teacher's ``D`` feature dimensions into ``sne.students`` parts;
3. optionally pre-train the students as clipped-ReLU ANNs (``student.init: ann_bridge``);
4. each epoch: distil (feature MSE + head fine-tuning, student dropout, optional KL), then on the
   validation split run every student, choose the static subsets greedily, simulate dynamic
   activation, and count energy from the measured spikes;
5. report the objectives at ``sne.active`` students, plus the whole curve for k = 1..K as a JSON
   string (``curve``; see :class:`trainables.sne.adaptive.SubsetCurve`).

Every report carries every key (the report contract), whatever K is: the per-k curve is one
string key rather than ``K`` numbered columns whose set would change from trial to trial.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from ray import tune

from trainables.config import resolve_config
from trainables.costs import energy_model
from trainables.data import DataInfo, load_splits
from trainables.registry import TrainableEntry, register_trainable
from trainables.report import make_report
from trainables.sne.adaptive import (
    DYNAMIC_THRESHOLDS,
    EnsembleOutputs,
    SubsetCurve,
    dynamic_activation,
    dynamic_cost,
    greedy_order,
    run_students,
    subset_cost,
    subset_logits,
)
from trainables.sne.distill import DistillConfig, TeacherTargets, distill_epoch, teacher_targets
from trainables.sne.partition import PARTITIONS, make_partition, part_sizes, sequential_partition
from trainables.sne.students import NeuronConfig, SpikingEnsemble, SpikingStudent, StudentConfig, student_cost_plan
from trainables.sne.teacher import TeacherConfig, TeacherNet, build_teacher, copy_head, obtain_teacher
from trainables.training import (
    shared_defaults,
    configure_threads,
    load_state,
    make_lr_schedule,
    make_optimizer,
    save_state,
    select_device,
)

__all__ = ["SNE_DEFAULTS", "SNE_REPORT_KEYS", "SNEConfig", "sne_trainable", "build_ensemble", "ENTRY"]


@dataclass(frozen=True)
class SNEConfig:
    """The ``sne`` section of a config.

    Attributes:
        students: Ensemble size ``K``.
        active: Students the static subset runs (the trial's objectives are measured there).
        partition: ``sequential``, ``random``, ``correlation`` or ``class``.
        partition_samples: Training samples whose teacher features feed the correlation partition.
        timesteps: Simulation length ``T``.
        beta: LIF leak factor.
        threshold: LIF firing threshold.
        surrogate_slope: Arctan surrogate slope ``alpha``.
        dropout: Per-sample probability of dropping a student while training.
        kl_weight: Weight of the logit KL term (0: feature MSE + head cross-entropy only).
        kl_temperature: Temperature of the KL term.
        dynamic_threshold: Confidence at which dynamic activation stops adding students.
    """

    students: int = 4
    active: int = 2
    partition: str = "correlation"
    partition_samples: int = 10000
    timesteps: int = 4
    beta: float = 0.9
    threshold: float = 1.0
    surrogate_slope: float = 2.0
    dropout: float = 0.25
    kl_weight: float = 0.0
    kl_temperature: float = 4.0
    dynamic_threshold: float = 0.9

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SNEConfig:
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown sne keys: {unknown}")
        cfg = cls(**values)
        if cfg.partition not in PARTITIONS:
            raise ValueError(f"sne.partition must be one of {', '.join(PARTITIONS)}, got {cfg.partition!r}")
        if cfg.students < 1 or not 1 <= cfg.active <= cfg.students:
            raise ValueError(f"need 1 <= sne.active ({cfg.active}) <= sne.students ({cfg.students})")
        if not 0.0 < cfg.dynamic_threshold <= 1.0:
            raise ValueError(f"sne.dynamic_threshold must be in (0, 1], got {cfg.dynamic_threshold}")
        if cfg.partition_samples < 2:
            raise ValueError("sne.partition_samples must be >= 2")
        cfg.neuron()  # validates timesteps
        cfg.distill()  # validates dropout and KL settings
        return cfg

    def neuron(self) -> NeuronConfig:
        return NeuronConfig(self.timesteps, self.beta, self.threshold, self.surrogate_slope)

    def distill(self) -> DistillConfig:
        return DistillConfig(self.dropout, self.kl_weight, self.kl_temperature)


SNE_DEFAULTS: dict[str, Any] = {
    "teacher": asdict(TeacherConfig()),
    "sne": asdict(SNEConfig()),
    "student": asdict(StudentConfig()),
    **shared_defaults(lr=3e-3, weight_decay=0.0, batch_size=64, epochs=20),
}

#: Keys SNE reports besides the base contract (every report carries all of them).
SNE_REPORT_KEYS: tuple[str, ...] = (
    "students",  # ensemble size K
    "students_active",  # students of the static subset the objectives are measured on
    "teacher_accuracy",  # validation accuracy of the teacher
    "teacher_macs",
    "teacher_energy_uj",
    "energy_ratio",  # teacher energy / SNE energy at students_active
    "macs_ratio",  # teacher MACs / SNE operations (real-valued MACs + synaptic ops) at students_active
    "spike_rate",  # spikes per neuron per timestep of the active students (validation)
    "synops",  # synaptic operations per sample at students_active
    "dynamic_accuracy",  # dynamic activation at sne.dynamic_threshold
    "dynamic_students",  # mean students a sample used under dynamic activation
    "dynamic_energy_uj",
    "distill_mse",  # validation MSE of all students on standardised teacher features
    "curve",  # JSON: the accuracy-vs-energy curve for k = 1..K and the dynamic points
)


def build_ensemble(
    cfg: Mapping[str, Any],
    info: DataInfo,
    teacher: TeacherNet | None = None,
    targets: TeacherTargets | None = None,
) -> SpikingEnsemble:
    """Build the ensemble of a resolved config.

    With the trained ``teacher`` and its training-split ``targets``, the partition is computed and
    the head starts as a copy of the teacher's. Without them (rebuilding a trial to load its
    weights) the ensemble has the right shapes and a placeholder partition, statistics and head,
    all of which the trial's state dict overwrites.
    """
    sne = SNEConfig.from_mapping(cfg["sne"])
    student_cfg = StudentConfig.from_mapping(cfg["student"])
    if teacher is None:
        teacher = build_teacher(TeacherConfig.from_mapping(cfg["teacher"]), info)
    d = teacher.feature_dim
    seed = int(cfg["seed"])
    if targets is None:
        part_sizes(d, sne.students)  # a clear error for K > D
        parts = sequential_partition(d, sne.students)
        mean, std = torch.zeros(d), torch.ones(d)
    else:
        features = targets.features
        generator = torch.Generator().manual_seed(seed)
        sample = torch.randperm(len(features), generator=generator)[: sne.partition_samples].to(features.device)
        parts = make_partition(
            sne.partition,
            d,
            sne.students,
            features=features[sample].cpu().double().numpy(),
            head_weight=teacher.head.weight.detach().cpu().double().numpy(),
            seed=seed,
        )
        mean = features.mean(dim=0)
        # A dead (constant) teacher feature gets std 1: its standardised target is simply 0.
        std = features.std(dim=0, correction=0)
        std = torch.where(std > 1e-6, std, torch.ones_like(std))
    neuron = sne.neuron()
    students = [SpikingStudent(student_cfg, neuron, info.input_shape, len(part)) for part in parts]
    return SpikingEnsemble(students, copy_head(teacher), parts, mean.cpu(), std.cpu(), sne.active)


def _accuracy(out: EnsembleOutputs, students: list[int]) -> float:
    return (subset_logits(out, students).argmax(1) == out.labels).float().mean().item()


def sne_trainable(config: dict[str, Any]) -> None:
    """Train one SNE configuration, reporting the contract keys and :data:`SNE_REPORT_KEYS` every epoch."""
    cfg = resolve_config(SNE_DEFAULTS, config)
    sne = SNEConfig.from_mapping(cfg["sne"])
    student_cfg = StudentConfig.from_mapping(cfg["student"])
    configure_threads(cfg["runtime"]["threads"])
    device = select_device(cfg["runtime"]["device"])
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    splits = load_splits(cfg["data"], device=device)
    info = splits.info
    emodel = energy_model(cfg["cost"]["energy_model"])

    started = time.perf_counter()
    teacher = obtain_teacher(cfg["teacher"], cfg["data"], splits, cfg["runtime"]["cache_dir"], device)
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    train_targets = teacher_targets(teacher.model, splits.x_train)
    val_targets = teacher_targets(teacher.model, splits.x_val)
    teacher_energy = teacher.energy_uj(emodel)

    torch.manual_seed(seed)  # student initialisation does not depend on how the teacher was obtained
    ensemble = build_ensemble(cfg, info, teacher.model, train_targets).to(device)
    distill = sne.distill()
    optim = cfg["optim"]
    epochs = int(cfg["budget"]["epochs"])
    steps_per_epoch = math.ceil(len(splits.y_train) / optim["batch_size"])
    optimizer = make_optimizer(ensemble.parameters(), optim)
    lr_schedule = make_lr_schedule(optimizer, optim["schedule"], epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    # With augmentation the teacher must see the same augmented batch as the students.
    targets = None if splits.augment else train_targets
    start_epoch, train_time = 0, time.perf_counter() - started

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_state(directory, map_location=device)
        ensemble.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, train_time = int(state["epoch"]), float(state["train_time_s"])

    if student_cfg.init == "ann_bridge" and start_epoch == 0 and student_cfg.bridge_epochs > 0:
        started = time.perf_counter()
        _ann_bridge(ensemble, teacher.model, splits, targets, optim, student_cfg.bridge_epochs, generator, distill)
        train_time += time.perf_counter() - started

    plans = [student_cost_plan(s, info.input_shape) for s in ensemble.students]
    every = max(1, int(cfg["budget"]["checkpoint_every"]))
    for epoch in range(start_epoch + 1, epochs + 1):
        started = time.perf_counter()
        distill_epoch(ensemble, teacher.model, splits, targets, optimizer, lr_schedule, optim["batch_size"], generator, epoch, distill)
        train_time += time.perf_counter() - started

        val = run_students(ensemble, splits.x_val, splits.y_val)
        order, accuracies, losses = greedy_order(val)
        ensemble.order.copy_(torch.as_tensor(order, device=ensemble.order.device))
        curve = _curve(val, plans, order, accuracies, losses, sne, emodel)
        curve.teacher_accuracy, curve.teacher_energy_uj = teacher.accuracy, teacher_energy
        curve.teacher_test_accuracy = teacher.test_accuracy
        curve.partition = sne.partition
        a = sne.active
        active = order[:a]
        cost = subset_cost(val, plans, active)
        energy = cost.energy_uj(emodel)
        correct, used = dynamic_activation(val, order, sne.dynamic_threshold)
        dyn_cost = dynamic_cost(val, plans, order, used)
        target_z = (val_targets.features - ensemble.feature_mean) / ensemble.feature_std
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "val_accuracy": accuracies[a - 1],
            "val_loss": losses[a - 1],
            "macs": cost.macs,
            "energy_uj": energy,
            "params": cost.params,
            "density": 1.0,  # students are dense; their sparsity is in time (spikes), see spike_rate
            "train_time_s": train_time,
            "budget_fraction": epoch / epochs,
            "students": sne.students,
            "students_active": a,
            "teacher_accuracy": teacher.accuracy,
            "teacher_macs": teacher.macs,
            "teacher_energy_uj": teacher_energy,
            "energy_ratio": teacher_energy / energy if energy > 0 else math.inf,
            "macs_ratio": teacher.macs / (cost.macs + cost.synops) if cost.macs + cost.synops > 0 else math.inf,
            "spike_rate": cost.spike_rate,
            "synops": cost.synops,
            "dynamic_accuracy": correct.float().mean().item(),
            "dynamic_students": used.float().mean().item(),
            "dynamic_energy_uj": dyn_cost.energy_uj(emodel),
            "distill_mse": F.mse_loss(val.z, target_z).item(),
        }
        if epoch == epochs and cfg["budget"]["eval_test"]:
            test = run_students(ensemble, splits.x_test, splits.y_test)
            curve.test_accuracy = [_accuracy(test, order[:k]) for k in range(1, len(order) + 1)]
            metrics["test_accuracy"] = curve.test_accuracy[a - 1]
        metrics["curve"] = curve.to_json()
        report = make_report(metrics, SNE_REPORT_KEYS)
        if epoch % every == 0 or epoch == epochs:
            with tempfile.TemporaryDirectory() as directory:
                save_state(
                    directory,
                    {
                        "model": ensemble.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "lr_schedule": lr_schedule.state_dict(),
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "epoch": epoch,
                        "train_time_s": train_time,
                        # The resolved config travels with the weights, so a trial can be rebuilt
                        # (analysis.robustness) from its checkpoint alone.
                        "config": json.dumps(cfg),
                    },
                )
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(report)


def _ann_bridge(
    ensemble: SpikingEnsemble,
    teacher: TeacherNet,
    splits,
    targets: TeacherTargets | None,
    optim: Mapping[str, Any],
    epochs: int,
    generator: torch.Generator,
    distill: DistillConfig,
) -> None:
    """Pre-train the students as clipped-ReLU ANNs, then switch them to spiking (weights kept)."""
    ensemble.set_spiking(False)
    try:
        optimizer = make_optimizer(ensemble.parameters(), optim)
        steps = epochs * math.ceil(len(splits.y_train) / optim["batch_size"])
        schedule = make_lr_schedule(optimizer, optim["schedule"], steps)
        for epoch in range(1, epochs + 1):
            distill_epoch(ensemble, teacher, splits, targets, optimizer, schedule, optim["batch_size"], generator, epoch, distill)
    finally:
        ensemble.set_spiking(True)


def _curve(
    val: EnsembleOutputs,
    plans,
    order: list[int],
    accuracies: list[float],
    losses: list[float],
    sne: SNEConfig,
    emodel,
) -> SubsetCurve:
    costs = [subset_cost(val, plans, order[:k]) for k in range(1, len(order) + 1)]
    curve = SubsetCurve(
        k=list(range(1, len(order) + 1)),
        students=[order[:k] for k in range(1, len(order) + 1)],
        val_accuracy=accuracies,
        val_loss=losses,
        energy_uj=[c.energy_uj(emodel) for c in costs],
        macs=[c.macs for c in costs],
        synops=[c.synops for c in costs],
        spike_rate=[c.spike_rate for c in costs],
        layer_spike_rates=[plan.spike_rates(val.spikes[s].float().mean(dim=1).tolist()) for s, plan in enumerate(plans)],
    )
    for threshold in sorted({*DYNAMIC_THRESHOLDS, sne.dynamic_threshold}):
        correct, used = dynamic_activation(val, order, threshold)
        curve.dynamic_threshold.append(threshold)
        curve.dynamic_accuracy.append(correct.float().mean().item())
        curve.dynamic_students.append(used.float().mean().item())
        curve.dynamic_energy_uj.append(dynamic_cost(val, plans, order, used).energy_uj(emodel))
    return curve


def _build(config: Mapping[str, Any], info: DataInfo) -> SpikingEnsemble:
    return build_ensemble(resolve_config(SNE_DEFAULTS, config), info)


ENTRY = register_trainable(
    TrainableEntry(
        name="sne",
        trainable=sne_trainable,
        defaults=SNE_DEFAULTS,
        build_model=_build,
        extra_report_keys=SNE_REPORT_KEYS,
        description="SNE: a teacher ANN distilled into an ensemble of spiking students, run as adaptive subsets",
    )
)
