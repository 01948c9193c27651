"""SNE training: a teacher distilled into an ensemble of spiking students, one run epoch by epoch.

One trial:

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
:class:`SNETraining` follows :class:`trainables.loop.Training`; the Ray side is the shared loop
and ``deployable()`` the shared :class:`~trainables.deploy.DeployableRun`'s.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from trainables.costs import ann_energy_uj, energy_model, model_costs, snn_energy_uj
from trainables.data import DataInfo, Splits, load_splits
from trainables.deploy import DeployableRun
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
from trainables.config import OptimConfig
from trainables.sne.config import DistillConfig, SNEConfig, SNETrialConfig
from trainables.sne.distill import TeacherTargets, augmented, distill_epoch, teacher_targets
from trainables.sne.partition import make_partition, part_sizes, sequential_partition
from trainables.sne.students import SpikingEnsemble, SpikingStudent, student_cost_plan
from trainables.sne.teacher import TeacherNet, build_teacher, copy_head, obtain_teacher
from trainables.report import StaticCost
from trainables.training import make_lr_schedule, make_optimizer, optimisation_state, restore_optimisation_state, select_device

__all__ = ["SNETraining", "build_ensemble", "static_costs"]


def build_ensemble(
    cfg: SNETrialConfig,
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
    sne, student_cfg = cfg.sne, cfg.student
    if teacher is None:
        teacher = build_teacher(cfg.teacher, info)
    d = teacher.feature_dim
    seed = int(cfg.seed)
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


class SNETraining(DeployableRun):
    """One SNE training run: teacher, partition, students; distil epoch by epoch; checkpoint.

    Args:
        config: A trial config: an :class:`SNETrialConfig`, or nested and/or dotted keys over
            its defaults.
        splits: Already loaded data (tests, benchmarks); loaded from ``config.data`` when None.
    """

    def __init__(self, config: SNETrialConfig | Mapping[str, Any], splits: Splits | None = None) -> None:
        from trainables.sne.family import ENTRY

        cfg: SNETrialConfig = ENTRY.resolve(config)  # type: ignore[assignment]
        self.cfg = cfg
        self.sne = cfg.sne
        self.device = select_device(cfg.runtime.device)
        seed = int(cfg.seed)
        torch.manual_seed(seed)
        self.splits = splits if splits is not None else load_splits(cfg.data, device=self.device)
        self.info = self.splits.info
        self.energy = energy_model(cfg.cost.energy_model)

        started = time.perf_counter()
        self.teacher = obtain_teacher(cfg.teacher, cfg.data, self.splits, cfg.runtime.cache_dir, self.device)
        for p in self.teacher.model.parameters():
            p.requires_grad_(False)
        train_targets = teacher_targets(self.teacher.model, self.splits.x_train)
        self.val_targets = teacher_targets(self.teacher.model, self.splits.x_val)
        self.teacher_energy = self.teacher.energy_uj(self.energy)

        torch.manual_seed(seed)  # student initialisation does not depend on how the teacher was obtained
        self.ensemble = build_ensemble(cfg, self.info, self.teacher.model, train_targets).to(self.device)
        self.distill = self.sne.distill()
        self.batch_size = cfg.optim.batch_size
        self.epochs = cfg.budget.epochs
        steps_per_epoch = math.ceil(len(self.splits.y_train) / self.batch_size)
        self.optimizer = make_optimizer(self.ensemble.parameters(), cfg.optim)
        self.lr_schedule = make_lr_schedule(self.optimizer, cfg.optim.schedule, self.epochs * steps_per_epoch)
        self.generator = torch.Generator().manual_seed(seed)
        # With augmentation the teacher must see the same augmented batch as the students.
        self.targets = None if augmented(self.splits, self.distill) else train_targets
        self.plans = [student_cost_plan(s, self.info.input_shape) for s in self.ensemble.students]
        self.epoch = 0
        self.train_time_s = time.perf_counter() - started

    def network(self) -> SpikingEnsemble:
        """The ensemble :meth:`deployable` wraps (its logits are the active students')."""
        return self.ensemble

    @classmethod
    def build_model(cls, config: SNETrialConfig, info: DataInfo) -> SpikingEnsemble:
        """The ensemble of a config with placeholder partition, statistics and head (its state dict fills them)."""
        return build_ensemble(config, info)

    def train_epoch(self) -> float:
        """Distil one more epoch; returns the mean distillation loss.

        With ``student.init: ann_bridge`` the ANN pre-training runs first, before epoch 1 only
        (a resumed run has it in its state already).
        """
        started = time.perf_counter()
        student = self.cfg.student
        if self.epoch == 0 and student.init == "ann_bridge" and student.bridge_epochs > 0:
            _ann_bridge(self.ensemble, self.teacher.model, self.splits, self.targets, self.cfg.optim, student.bridge_epochs, self.generator, self.distill)
        self.epoch += 1
        parts = distill_epoch(
            self.ensemble, self.teacher.model, self.splits, self.targets, self.optimizer, self.lr_schedule,
            self.batch_size, self.generator, self.epoch, self.distill,
        )
        self.train_time_s += time.perf_counter() - started
        return float(parts["loss"])

    def metrics(self) -> dict[str, Any]:
        """This epoch's report values; also fixes the greedy student order the state dict keeps."""
        sne, emodel, teacher = self.sne, self.energy, self.teacher
        val = run_students(self.ensemble, self.splits.x_val, self.splits.y_val)
        order, accuracies, losses = greedy_order(val)
        self.ensemble.order.copy_(torch.as_tensor(order, device=self.ensemble.order.device))
        curve = _curve(val, self.plans, order, accuracies, losses, sne, emodel)
        curve.teacher_accuracy, curve.teacher_energy_uj = teacher.accuracy, self.teacher_energy
        curve.teacher_test_accuracy = teacher.test_accuracy
        curve.partition = sne.partition
        a = sne.active
        cost = subset_cost(val, self.plans, order[:a])
        energy = cost.energy_uj(emodel)
        correct, used = dynamic_activation(val, order, sne.dynamic_threshold)
        dyn_cost = dynamic_cost(val, self.plans, order, used)
        target_z = (self.val_targets.features - self.ensemble.feature_mean) / self.ensemble.feature_std
        values: dict[str, Any] = {
            "epoch": self.epoch,
            "val_accuracy": accuracies[a - 1],
            "val_loss": losses[a - 1],
            "macs": cost.macs,
            "energy_uj": energy,
            "params": cost.params,
            "density": 1.0,  # students are dense; their sparsity is in time (spikes), see spike_rate
            "train_time_s": self.train_time_s,
            "budget_fraction": self.epoch / self.epochs,
            "students": sne.students,
            "students_active": a,
            "teacher_accuracy": teacher.accuracy,
            "teacher_macs": teacher.macs,
            "teacher_energy_uj": self.teacher_energy,
            "energy_ratio": self.teacher_energy / energy if energy > 0 else math.inf,
            "macs_ratio": teacher.macs / (cost.macs + cost.synops) if cost.macs + cost.synops > 0 else math.inf,
            "spike_rate": cost.spike_rate,
            "synops": cost.synops,
            "dynamic_accuracy": correct.float().mean().item(),
            "dynamic_students": used.float().mean().item(),
            "dynamic_energy_uj": dyn_cost.energy_uj(emodel),
            "distill_mse": F.mse_loss(val.z, target_z).item(),
        }
        if self.epoch == self.epochs and self.cfg.budget.eval_test:
            test = run_students(self.ensemble, self.splits.x_test, self.splits.y_test)
            curve.test_accuracy = [_accuracy(test, order[:k]) for k in range(1, len(order) + 1)]
            values["test_accuracy"] = curve.test_accuracy[a - 1]
        values["curve"] = curve.to_json()
        return values

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (CPU); tensors only for ``weights_only``."""
        return optimisation_state(self, self.ensemble)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a run of the same config."""
        restore_optimisation_state(self, self.ensemble, state)


def _ann_bridge(
    ensemble: SpikingEnsemble,
    teacher: TeacherNet,
    splits,
    targets: TeacherTargets | None,
    optim: OptimConfig,
    epochs: int,
    generator: torch.Generator,
    distill: DistillConfig,
) -> None:
    """Pre-train the students as clipped-ReLU ANNs, then switch them to spiking (weights kept)."""
    ensemble.set_spiking(False)
    try:
        optimizer = make_optimizer(ensemble.parameters(), optim)
        steps = epochs * math.ceil(len(splits.y_train) / optim.batch_size)
        schedule = make_lr_schedule(optimizer, optim.schedule, steps)
        for epoch in range(1, epochs + 1):
            distill_epoch(ensemble, teacher, splits, targets, optimizer, schedule, optim.batch_size, generator, epoch, distill)
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


#: Static costs by what fixes them (see :func:`static_costs`): a sampler costs thousands of
#: candidates that differ only in hyperparameters the costs do not depend on.
_STATIC_CACHE: OrderedDict[str, dict[str, StaticCost]] = OrderedDict()
_STATIC_CACHE_SIZE = 4096


def static_costs(config: SNETrialConfig, info: DataInfo) -> dict[str, StaticCost]:
    """The costs an SNE config fixes before training (:func:`_static_costs`), memoised by the
    config keys they depend on: the teacher, the students' architecture, ``sne.students``,
    ``sne.active``, ``sne.timesteps``, the energy model and the data's shape."""
    key = json.dumps(
        [
            config.teacher.model_dump(mode="json"),
            config.student.model_dump(mode="json", exclude={"init", "bridge_epochs"}),
            [config.sne.students, config.sne.active, config.sne.timesteps, config.sne.learn_neuron],
            config.cost.model_dump(mode="json"),
            list(info.input_shape),
            info.num_classes,
        ],
        sort_keys=True,
        default=str,
    )
    if key not in _STATIC_CACHE:
        _STATIC_CACHE[key] = _static_costs(config, info)
        while len(_STATIC_CACHE) > _STATIC_CACHE_SIZE:
            _STATIC_CACHE.popitem(last=False)
    _STATIC_CACHE.move_to_end(key)
    return dict(_STATIC_CACHE[key])


def _static_costs(config: SNETrialConfig, info: DataInfo) -> dict[str, StaticCost]:
    """The costs an SNE config fixes before training, counted as its reports count them.

    A student's shapes follow from the config and the part size its place gives it (every
    partition has the balanced sizes of :func:`~trainables.sne.partition.part_sizes`), so each
    student's real-valued MACs (its first layer, run once per sample, plus its share of the
    head) are known; which ``sne.active`` students run is chosen after training (greedy by
    validation accuracy), so ``macs`` is exact when their sizes are all equal and at least the
    ``active`` smallest otherwise. The modelled energy is at least those MACs at E_MAC: no spike
    at all adds nothing. The teacher's MACs and energy are those of its architecture (at most,
    should a loaded teacher have zero weights). The global RNG is left as it was.
    """
    emodel = energy_model(config.cost.energy_model)
    with torch.random.fork_rng(devices=[]):
        teacher = build_teacher(config.teacher, info)
        ensemble = build_ensemble(config, info, teacher)
        plans = [student_cost_plan(student, info.input_shape) for student in ensemble.students]
        teacher_macs = model_costs(teacher, info.input_shape).macs
    sizes = part_sizes(teacher.feature_dim, config.sne.students)
    per_student = sorted(plan.ops([0.0] * len(plan.neurons))[0] + size * info.num_classes for plan, size in zip(plans, sizes))
    active = config.sne.active
    low, high = sum(per_student[:active]), sum(per_student[-active:])
    # Synaptic ops at a spike rate of 1 in every LIF layer (a student's average, times the active
    # ones): the energy is about low's plus this times the measured rate.
    full = [plan.ops([plan.timesteps * n for n in plan.neurons])[1] for plan in plans]
    span = snn_energy_uj(0.0, active * sum(full) / len(full), emodel)
    return {
        "macs": StaticCost(float(low), "exact" if low == high else "lower"),
        "energy_uj": StaticCost(ann_energy_uj(low, emodel), "lower", span=span),
        "density": StaticCost(1.0),
        "teacher_macs": StaticCost(float(teacher_macs), "upper"),
        "teacher_energy_uj": StaticCost(ann_energy_uj(teacher_macs, emodel), "upper"),
    }
