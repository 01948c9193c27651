"""Adaptive activation: which students run, what that costs, and the accuracy-vs-energy curve.

- **Static**: the best subset of each size ``k`` is found greedily on validation data (add the
  student that helps accuracy most, ties broken by lower cross-entropy). Greedy subsets are
  nested, so one order of the students describes all of them.
- **Dynamic**: students run one by one in that order and a sample stops as soon as the softmax
  confidence of the running prediction reaches a threshold; the cost is that of the students a
  sample actually used, averaged over samples.

The head is linear, so the logits of any subset are the head's output at the training mean plus
one additive contribution per student: all subsets are scored from one pass of every student.

Energy of a subset (per sample) = its students' first layers on real values (MACs once, at E_MAC)
+ their synaptic operations from measured spike rates (at E_AC) + the head's MACs on the active
students' dimensions (at E_MAC; the inactive slices are constants folded into the head's bias).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.costs import EnergyModel, snn_energy_uj
from trainables.sne.students import SpikingEnsemble, StudentCostPlan

__all__ = [
    "DYNAMIC_THRESHOLDS",
    "EnsembleOutputs",
    "SubsetCost",
    "SubsetCurve",
    "run_students",
    "subset_logits",
    "greedy_order",
    "dynamic_activation",
    "subset_cost",
    "dynamic_cost",
]

#: Confidence thresholds of the dynamic curve (the trial's own ``sne.dynamic_threshold`` is added).
DYNAMIC_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


@dataclass
class EnsembleOutputs:
    """Every student's output on one split, in the head's additive form, plus spike counts.

    Attributes:
        z: ``N x D`` standardised features predicted by all students.
        contributions: ``K x N x C``: student ``k``'s share of the logits.
        base: ``C`` logits with every slice at its training mean.
        spikes: Per student, a ``L_k x N`` tensor of spike counts per LIF layer and sample.
        labels: ``N`` labels.
        part_sizes: ``K`` feature dimensions per student.
    """

    z: Tensor
    contributions: Tensor
    base: Tensor
    spikes: list[Tensor]
    labels: Tensor
    part_sizes: list[int]

    @property
    def num_students(self) -> int:
        return int(self.contributions.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.contributions.shape[2])


@torch.no_grad()
def run_students(ensemble: SpikingEnsemble, x: Tensor, y: Tensor, batch_size: int = 512) -> EnsembleOutputs:
    """Run every student on ``x`` (eval mode), recording spikes, and split the head's logits by student."""
    ensemble.eval()
    k = ensemble.num_students
    for student in ensemble.students:
        student.start_recording()
    try:
        z = torch.cat([ensemble.standardized_features(x[s : s + batch_size]) for s in range(0, len(x), batch_size)])
    finally:
        spikes = [torch.stack(student.stop_recording()) for student in ensemble.students]
    weight, bias = ensemble.head.weight, ensemble.head.bias
    scaled = z * ensemble.feature_std
    contributions = torch.stack([scaled[:, ensemble.part(i)] @ weight[:, ensemble.part(i)].T for i in range(k)])
    base = weight @ ensemble.feature_mean + (bias if bias is not None else 0.0)
    sizes = [int(ensemble.part(i).numel()) for i in range(k)]
    return EnsembleOutputs(z, contributions, base, spikes, y, sizes)


def subset_logits(out: EnsembleOutputs, students: Sequence[int]) -> Tensor:
    """``N x C`` logits of the ensemble running only ``students``."""
    logits = out.base.expand(out.contributions.shape[1], -1)
    if len(students):
        logits = logits + out.contributions[list(students)].sum(dim=0)
    return logits


def _score(out: EnsembleOutputs, students: Sequence[int]) -> tuple[float, float]:
    logits = subset_logits(out, students)
    accuracy = (logits.argmax(1) == out.labels).float().mean().item()
    return accuracy, F.cross_entropy(logits, out.labels).item()


def greedy_order(out: EnsembleOutputs) -> tuple[list[int], list[float], list[float]]:
    """Greedy forward selection of students on the given (validation) outputs.

    Returns:
        ``(order, accuracies, losses)``: the first ``k`` entries of ``order`` are the chosen subset
        of size ``k``; ``accuracies[k-1]`` and ``losses[k-1]`` are its accuracy and cross-entropy.
    """
    remaining = list(range(out.num_students))
    order: list[int] = []
    accuracies: list[float] = []
    losses: list[float] = []
    while remaining:
        best = max(remaining, key=lambda s: (lambda a, l: (a, -l))(*_score(out, [*order, s])))
        order.append(best)
        remaining.remove(best)
        accuracy, loss = _score(out, order)
        accuracies.append(accuracy)
        losses.append(loss)
    return order, accuracies, losses


def dynamic_activation(out: EnsembleOutputs, order: Sequence[int], threshold: float) -> tuple[Tensor, Tensor]:
    """Run students in ``order``; each sample stops once its max softmax probability >= ``threshold``.

    Returns:
        ``(correct, used)``: per sample, whether the final prediction is right and how many
        students ran (1..K; K when the threshold is never reached).
    """
    n, k = out.contributions.shape[1], len(order)
    logits = out.base.expand(n, -1).clone()
    used = torch.full((n,), k, dtype=torch.long, device=logits.device)
    predictions = torch.zeros(n, dtype=torch.long, device=logits.device)
    done = torch.zeros(n, dtype=torch.bool, device=logits.device)
    for step, student in enumerate(order, start=1):
        logits = logits + out.contributions[student]
        confidence, predicted = F.softmax(logits, dim=1).max(dim=1)
        stop = ~done & ((confidence >= threshold) | (step == k))
        used[stop] = step
        predictions[stop] = predicted[stop]
        done |= stop
    return predictions == out.labels, used


@dataclass(frozen=True)
class SubsetCost:
    """Per-sample inference cost of a set of students plus the head.

    Attributes:
        macs: Multiply-accumulates on real values (first layers, once; head).
        synops: Synaptic (accumulate-only) operations from measured spikes.
        spike_rate: Spikes per neuron per timestep over the students that ran.
        params: Parameters of the students and of the head's active columns.
    """

    macs: float
    synops: float
    spike_rate: float
    params: int

    def energy_uj(self, model: EnergyModel) -> float:
        """Energy per sample, microjoules (:func:`trainables.costs.snn_energy_uj`)."""
        return snn_energy_uj(self.macs, self.synops, model)


def subset_cost(out: EnsembleOutputs, plans: Sequence[StudentCostPlan], students: Sequence[int]) -> SubsetCost:
    """Cost of running ``students`` on every sample of ``out`` (static activation)."""
    n = out.contributions.shape[1]
    return _weighted_cost(out, plans, [(s, torch.ones(n, dtype=torch.bool, device=out.labels.device)) for s in students])


def dynamic_cost(out: EnsembleOutputs, plans: Sequence[StudentCostPlan], order: Sequence[int], used: Tensor) -> SubsetCost:
    """Mean cost of dynamic activation: student ``order[j]`` runs on the samples with ``used > j``."""
    return _weighted_cost(out, plans, [(s, used > j) for j, s in enumerate(order)])


def _weighted_cost(out: EnsembleOutputs, plans: Sequence[StudentCostPlan], runs: Sequence[tuple[int, Tensor]]) -> SubsetCost:
    n = out.contributions.shape[1]
    macs = synops = spikes = neuron_steps = 0.0
    params = int(out.base.numel())  # head bias
    for student, ran in runs:
        share = float(ran.sum()) / max(1, n)
        if share == 0:
            continue
        plan = plans[student]
        counts = out.spikes[student][:, ran].float()  # L x samples that ran this student
        mean_counts = counts.mean(dim=1).tolist()
        real, syn = plan.ops(mean_counts)
        head_macs = out.part_sizes[student] * out.num_classes
        # Costs are linear in spike counts, so a student's mean over the samples it ran on, times
        # the share of samples it ran on, is its contribution to the mean over all samples.
        macs += share * (real + head_macs)
        synops += share * syn
        spikes += share * sum(mean_counts)
        neuron_steps += share * plan.timesteps * sum(plan.neurons)
        params += plan.params + head_macs
    rate = spikes / neuron_steps if neuron_steps else 0.0
    return SubsetCost(macs=macs, synops=synops, spike_rate=rate, params=params)


@dataclass
class SubsetCurve:
    """The accuracy-vs-energy curve of one trial (static subsets k = 1..K, and dynamic points).

    Serialised as a JSON string in the trial's ``curve`` report key, so it lands in
    ``epochs.parquet`` and ``trials.parquet`` with the other metrics.
    """

    k: list[int]
    students: list[list[int]]
    val_accuracy: list[float]
    val_loss: list[float]
    energy_uj: list[float]
    macs: list[float]
    synops: list[float]
    spike_rate: list[float]
    test_accuracy: list[float] | None = None
    layer_spike_rates: list[list[float]] = field(default_factory=list)  # per student, per LIF layer
    dynamic_threshold: list[float] = field(default_factory=list)
    dynamic_accuracy: list[float] = field(default_factory=list)
    dynamic_students: list[float] = field(default_factory=list)
    dynamic_energy_uj: list[float] = field(default_factory=list)
    teacher_accuracy: float | None = None
    teacher_test_accuracy: float | None = None
    teacher_energy_uj: float | None = None
    partition: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SubsetCurve:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
