"""Spiking students and the ensemble that combines them through the teacher's (fine-tuned) head.

A student is a small spiking network (MLP or conv) of LIF layers run for ``T`` timesteps with
direct input encoding: the real-valued image is the input current of the first layer at every
timestep. Its non-spiking linear readout, averaged over time, regresses the student's slice of
the teacher's features. Each student can also run as a clipped-ReLU ANN of the
same shape, which is how ``student.init: ann_bridge`` pre-trains it before copying the weights
into the spiking network.

The ensemble owns ``K`` students, the partition (which student owns which feature dimension),
the training statistics of the teacher's features (students regress standardised features; a
missing slice is filled with its training mean) and the head. Running only a subset of students
is what trades accuracy for energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from trainables.costs import layer_costs, snn_layer_ops
from trainables.sne.config import STUDENT_INITS, STUDENT_SHAPES, NeuronConfig, StudentConfig
from trainables.sne.partition import partition_labels
from trainables.sne.spiking import LIF

__all__ = [
    "STUDENT_SHAPES",
    "STUDENT_INITS",
    "StudentConfig",
    "NeuronConfig",
    "SpikingStudent",
    "StudentCostPlan",
    "student_cost_plan",
    "SpikingEnsemble",
]

class SpikingStudent(nn.Module):
    """One student: ``depth`` spiking layers and a time-averaged linear readout.

    Args:
        cfg: Shape of the student.
        neuron: LIF and simulation parameters.
        input_shape: ``(C, H, W)`` of an input sample.
        out_dim: Size of the student's feature slice.
    """

    def __init__(self, cfg: StudentConfig, neuron: NeuronConfig, input_shape: Sequence[int], out_dim: int) -> None:
        super().__init__()
        self.shape = cfg.shape
        # pool: the readout sees each channel's spikes averaged over positions (conv only; an mlp
        # layer has no positions, so there it is the same as flat).
        self.pool = cfg.readout == "pool" and cfg.shape == "conv"
        self.timesteps = neuron.timesteps
        self.spiking = True  # False: run as the clipped-ReLU ANN of the same shape (ann_bridge)
        c, h, w = (int(s) for s in input_shape)
        layers: list[nn.Module] = []
        if cfg.shape == "mlp":
            sizes = [c * h * w] + [cfg.width] * cfg.depth
            layers = [nn.Linear(sizes[i], sizes[i + 1]) for i in range(cfg.depth)]
            flat = cfg.width
        else:
            channels = [c] + [cfg.channels * 2**i for i in range(cfg.depth)]
            # H == 1 (vectors, 1-D signals): 1-D convs over W; a 3x3 kernel would pay for two
            # rows that only ever see zero padding.
            one_d = h == 1
            kernel, padding, stride = ((1, 3), (0, 1), (1, 2)) if one_d else (3, 1, 2)
            for i in range(cfg.depth):
                # Stride-2 convs instead of pooling: pooled spikes are no longer binary, and every
                # layer after the first must see spikes for its work to be accumulate-only. The
                # first layer strides only with stem_stride: 2 (large inputs).
                strided = i > 0 or cfg.stem_stride == 2
                layers.append(nn.Conv2d(channels[i], channels[i + 1], kernel, stride=stride if strided else 1, padding=padding))
                if strided:
                    h, w = (h, (w + 1) // 2) if one_d else ((h + 1) // 2, (w + 1) // 2)
            flat = channels[-1] * (1 if cfg.readout == "pool" else h * w)
        self.layers = nn.ModuleList(layers)
        # Batch norm between each weight layer and its neurons (student.norm: batch) normalises
        # the input current while training; at inference it is an affine map folded into the
        # layer (folded_layer), so it costs no operation and the exported graph has none.
        self.norms = nn.ModuleList(_norm(cfg.norm, layer) for layer in layers)
        self.lifs = nn.ModuleList(
            LIF(neuron.beta, neuron.threshold, neuron.surrogate_slope, learnable=neuron.learnable) for _ in layers
        )
        self.readout = nn.Linear(flat, out_dim)

    #: Train conv students on channels-last activations (oneDNN's fast layout on the CPU: the
    #: convolutions' forward and backward take 1.1-2.6x less time at these sizes). The result
    #: equals the default layout's to float rounding; evaluation and export keep the default
    #: layout, so a bundle's outputs are exactly what snntorch computes from its NIR graph.
    channels_last_training = True

    def forward(self, x: Tensor) -> Tensor:
        """``N x C x H x W`` images -> ``N x out_dim`` (time-averaged readout when spiking)."""
        h = x.flatten(1) if self.shape == "mlp" else x
        # The first conv reads the input as given (a one-channel image is both layouts at
        # once); its output is what turns channels-last, and every later layer keeps it.
        nhwc = self.training and self.channels_last_training and self.shape == "conv"
        if not self.spiking:
            for i, (layer, norm, lif) in enumerate(zip(self.layers, self.norms, self.lifs)):
                # Clipped ReLU: the ANN activation a rate-coded LIF neuron can represent (its
                # firing rate lies in [0, 1] spikes per step and grows with current / threshold),
                # so the copied weights start near a working SNN.
                z = layer(h)
                if i == 0 and nhwc:
                    z = z.contiguous(memory_format=torch.channels_last)
                h = torch.clamp(norm(z) / lif.threshold_tensor(), 0.0, 1.0)
            return self.readout(self._pooled(h).flatten(1))
        n, steps = x.shape[0], self.timesteps
        # Direct encoding feeds the same input at every step, so the first layer's current is
        # computed once and repeated (the energy model charges it once, at E_MAC).
        z = self.layers[0](h)
        if nhwc:
            z = z.contiguous(memory_format=torch.channels_last)
        current = self.norms[0](z)
        spikes = self.lifs[0](current.unsqueeze(0).expand(steps, *current.shape))
        for layer, norm, lif in zip(self.layers[1:], self.norms[1:], self.lifs[1:]):
            current = norm(layer(spikes.flatten(0, 1))).unflatten(0, (steps, n))
            spikes = lif(current)
        # The readout is linear, so averaging its output over time equals reading out the mean
        # spike train; its cost is still counted per step from the measured rate.
        return self.readout(self._pooled(spikes.mean(dim=0)).flatten(1))

    def _pooled(self, h: Tensor) -> Tensor:
        return h.mean(dim=(-2, -1)) if self.pool else h

    def folded_layer(self, i: int) -> tuple[Tensor, Tensor]:
        """Weight and bias of hidden layer ``i`` with its batch norm (inference statistics) folded in.

        ``norm(W x + b) = (gamma / sigma) (W x + b - mu) + beta``: scale each output's weights by
        ``gamma / sigma`` and shift its bias. Without a norm these are the layer's own tensors.
        """
        layer, norm = self.layers[i], self.norms[i]
        weight, bias = layer.weight.detach(), layer.bias.detach()
        if isinstance(norm, nn.Identity):
            return weight, bias
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
        weight = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
        return weight, (bias - norm.running_mean) * scale + norm.bias.detach()

    def start_recording(self) -> None:
        """Count each sample's spikes per LIF layer from the next forward on."""
        for lif in self.lifs:
            lif.start_recording()

    def stop_recording(self) -> list[Tensor]:
        """Per-sample spike counts of each LIF layer since :meth:`start_recording`."""
        return [lif.stop_recording() for lif in self.lifs]


def _norm(kind: str, layer: nn.Module) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if isinstance(layer, nn.Conv2d):
        return nn.BatchNorm2d(layer.out_channels)
    return nn.BatchNorm1d(layer.out_features)


@dataclass(frozen=True)
class StudentCostPlan:
    """Which layers of a student see real values and which see spikes, with their MACs.

    Attributes:
        layer_macs: MACs of each weight layer for one timestep (hidden layers, then readout;
            then, with a pooled readout, the pooling's one accumulate per last-layer neuron).
        sources: For each weight layer, the index of the LIF layer feeding it, or None for the
            first layer, which sees the real-valued input (direct encoding).
        neurons: Neurons per LIF layer.
        timesteps: ``T``.
        params: Non-zero weights and biases of the student.
    """

    layer_macs: tuple[int, ...]
    sources: tuple[int | None, ...]
    neurons: tuple[int, ...]
    timesteps: int
    params: int

    def spike_rates(self, mean_spikes: Sequence[float]) -> list[float]:
        """Firing rate (spikes per neuron per step) of each LIF layer from mean spike counts per sample."""
        return [float(c) / (self.timesteps * n) for c, n in zip(mean_spikes, self.neurons, strict=True)]

    def ops(self, mean_spikes: Sequence[float]) -> tuple[float, float]:
        """``(real-valued MACs, synaptic ops)`` per sample, from mean spike counts per LIF layer.

        The first layer sees the same real-valued input at every timestep, so its current is
        computed once (``MACs``, at E_MAC); every later layer, readout included, accumulates its
        input spikes (rate x ``T`` x MACs, at E_AC).
        """
        rates = self.spike_rates(mean_spikes)
        return snn_layer_ops(self.layer_macs, [None if s is None else rates[s] for s in self.sources], self.timesteps)


def student_cost_plan(student: SpikingStudent, input_shape: Sequence[int]) -> StudentCostPlan:
    """Count a student's per-timestep MACs with :func:`trainables.costs.layer_costs`."""
    modules = [(f"layers.{i}", layer) for i, layer in enumerate(student.layers)] + [("readout", student.readout)]
    device = next(student.parameters()).device
    example = torch.zeros((1, *input_shape), device=device)
    was_spiking, was_training = student.spiking, student.training
    student.spiking = True
    student.eval()  # a batch of one: batch norm must use its running statistics
    try:
        # Later layers see the T steps folded into the batch, so their counted positions are
        # per step; the first layer and the readout run once per sample in the forward.
        report = layer_costs(student, example, modules)
    finally:
        student.spiking = was_spiking
    sources: list[int | None] = [None] + list(range(len(student.layers)))
    student.start_recording()
    with torch.no_grad():
        student(example)
    student.stop_recording()
    student.train(was_training)
    neurons = tuple(lif.neurons for lif in student.lifs)
    layer_macs = [layer.macs for layer in report.layers]
    if student.pool:
        # Pooling before the readout: one accumulate per spike of the last layer, per step.
        layer_macs.append(neurons[-1])
        sources.append(len(student.layers) - 1)
    return StudentCostPlan(
        layer_macs=tuple(layer_macs),
        sources=tuple(sources),
        neurons=neurons,
        timesteps=student.timesteps,
        params=report.params,
    )


class SpikingEnsemble(nn.Module):
    """``K`` spiking students, each regressing its part of the teacher's features, and the head.

    Students output standardised features ``z = (f - mean) / std`` of their slice. The combiner
    puts them back in the teacher's units; the slice of a student that does not run is its
    training mean (``z = 0``). The head (a fine-tuned copy of the teacher's) maps the combined
    features to logits.

    Args:
        students: The ``K`` students; student ``k`` outputs ``len(parts[k])`` values.
        head: Linear ``D -> classes``.
        parts: The partition of the ``D`` feature dimensions.
        feature_mean: ``D`` training mean of the teacher's features.
        feature_std: ``D`` training standard deviation of the teacher's features.
        active: Number of students :meth:`forward` runs by default.
    """

    def __init__(
        self,
        students: Sequence[SpikingStudent],
        head: nn.Linear,
        parts: Sequence[np.ndarray],
        feature_mean: Tensor,
        feature_std: Tensor,
        active: int,
    ) -> None:
        super().__init__()
        d = head.in_features
        if len(students) != len(parts):
            raise ValueError(f"{len(students)} students for {len(parts)} parts")
        if not 1 <= active <= len(students):
            raise ValueError(f"sne.active must be in [1, sne.students = {len(students)}], got {active}")
        self.students = nn.ModuleList(students)
        self.head = head
        self.register_buffer("assignment", torch.as_tensor(partition_labels(parts, d), dtype=torch.long))
        self.register_buffer("feature_mean", feature_mean.detach().clone().float())
        self.register_buffer("feature_std", feature_std.detach().clone().float())
        # The static activation order (greedy on validation): the best subset of size k is the
        # first k students of this order. Set by the trainable after each evaluation.
        self.register_buffer("order", torch.arange(len(students)))
        self.register_buffer("active", torch.tensor(int(active)))

    @property
    def num_students(self) -> int:
        return len(self.students)

    def part(self, k: int) -> Tensor:
        """Feature dimensions owned by student ``k`` (ascending)."""
        return torch.nonzero(self.assignment == k).flatten()

    def set_spiking(self, spiking: bool) -> None:
        """Run every student as an SNN (True) or as its clipped-ReLU ANN twin (False)."""
        for student in self.students:
            student.spiking = spiking

    def standardized_features(self, x: Tensor, students: Sequence[int] | None = None) -> Tensor:
        """``N x D`` standardised features predicted by ``students`` (default all); others are 0."""
        ids = range(self.num_students) if students is None else students
        z = x.new_zeros((x.shape[0], self.head.in_features))
        for k in ids:
            z[:, self.part(k)] = self.students[k](x)
        return z

    def combine(self, z: Tensor, keep: Tensor | None = None) -> Tensor:
        """Teacher-unit features from standardised ones; dropped students' slices get their mean.

        Args:
            z: ``N x D`` standardised features.
            keep: ``K`` or ``N x K`` boolean: which students' outputs to use (default all).
        """
        if keep is not None:
            mask = keep[..., self.assignment].to(z.dtype)
            z = z * mask
        return z * self.feature_std + self.feature_mean

    def forward(self, x: Tensor, k: int | None = None) -> Tensor:
        """Logits from the first ``k`` students of :attr:`order` (default :attr:`active`); only those run."""
        k = int(self.active) if k is None else int(k)
        ids = [int(i) for i in self.order[:k]]
        keep = torch.zeros(self.num_students, dtype=torch.bool, device=x.device)
        keep[ids] = True
        return self.head(self.combine(self.standardized_features(x, ids), keep))
