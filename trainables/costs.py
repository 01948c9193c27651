"""The one place that counts compute and energy.

MACs come from active (non-zero) connections, never from dense shapes. Energy: ANN energy = MACs x E_MAC; SNN energy = (MACs of layers that see
real-valued input) x E_MAC + synaptic operations x E_AC, with synaptic operations = measured
input spike rate x timesteps x layer MACs. Memory traffic is not modelled: these figures are a
relative comparison between networks, not a power meter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from trainables.energy import ENERGY_MODELS, EnergyModel, energy_model

__all__ = [
    "EnergyModel",
    "ENERGY_MODELS",
    "energy_model",
    "LayerCost",
    "CostReport",
    "active_weight",
    "layer_costs",
    "model_costs",
    "ann_energy_uj",
    "snn_energy_uj",
    "synaptic_ops",
    "snn_layer_ops",
]


def ann_energy_uj(macs: float, model: EnergyModel) -> float:
    """Energy of ``macs`` multiply-accumulates, in microjoules."""
    return float(macs) * model.e_mac_pj * 1e-6


def synaptic_ops(input_spike_rate: float, timesteps: int, layer_macs: float) -> float:
    """Synaptic (accumulate) operations of a layer fed by spikes.

    ``input_spike_rate`` is the measured fraction of input neurons spiking per timestep.
    """
    return float(input_spike_rate) * int(timesteps) * float(layer_macs)


def snn_energy_uj(real_input_macs: float, synops: float, model: EnergyModel) -> float:
    """Energy of a spiking network: real-valued-input MACs at E_MAC plus synops at E_AC (uJ)."""
    return (float(real_input_macs) * model.e_mac_pj + float(synops) * model.e_ac_pj) * 1e-6


@dataclass(frozen=True)
class LayerCost:
    """Per-sample cost of one weight layer."""

    name: str
    kind: str  # "linear" | "conv"
    macs: int  # active weights x output positions
    params: int  # active weights + biases
    active_weights: int
    dense_weights: int
    maskable: bool  # True for layers whose connectivity is sparse/searchable


@dataclass(frozen=True)
class CostReport:
    """Costs of a whole network for one inference sample."""

    layers: tuple[LayerCost, ...]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def density(self) -> float:
        """Active / dense weights over the maskable layers (1.0 when there are none)."""
        sparse = [layer for layer in self.layers if layer.maskable]
        dense = sum(layer.dense_weights for layer in sparse)
        if dense == 0:
            return 1.0
        return sum(layer.active_weights for layer in sparse) / dense

    def energy_uj(self, model: EnergyModel) -> float:
        """ANN energy of the whole network."""
        return ann_energy_uj(self.macs, model)


def active_weight(module: nn.Module) -> torch.Tensor:
    """The weight a layer actually multiplies with (masked layers expose ``effective_weight``)."""
    effective = getattr(module, "effective_weight", None)
    if callable(effective):
        return effective()
    return module.weight


@torch.no_grad()
def layer_costs(
    model: nn.Module, example_input: torch.Tensor, modules: Iterable[tuple[str, nn.Module]] | None = None
) -> CostReport:
    """Count per-sample MACs and active parameters of every weight layer of ``model``.

    Runs one forward pass on ``example_input`` (batch of one or more) with hooks to learn each
    layer's output positions (conv feature-map size). A layer's MACs are its non-zero weights
    times its output positions, so masked-out connections cost nothing.

    Args:
        model: Any network built from ``nn.Linear``/``nn.Conv*`` or modules exposing
            ``weight`` (and optionally ``effective_weight()`` and ``maskable = True``).
        example_input: An input batch of the shape the model expects.
        modules: Restrict counting to these (name, module) pairs; default all weight layers.
    """
    if modules is None:
        modules = [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.Tensor) and _is_weight_layer(m)
        ]
    modules = list(modules)
    positions: dict[str, int] = {}
    handles = []
    for name, module in modules:
        handles.append(module.register_forward_hook(_positions_hook(name, positions)))
    was_training = model.training
    model.eval()
    try:
        model(example_input)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    costs = []
    for name, module in modules:
        weight = active_weight(module)
        active = int(torch.count_nonzero(weight))
        bias = getattr(module, "bias", None)
        n_bias = int(bias.numel()) if isinstance(bias, torch.Tensor) else 0
        pos = positions.get(name, 0)  # a layer the forward pass never reached costs nothing
        kind = "conv" if isinstance(module, nn.modules.conv._ConvNd) else "linear"
        costs.append(
            LayerCost(
                name=name,
                kind=kind,
                macs=active * pos,
                params=active + n_bias,
                active_weights=active,
                dense_weights=int(weight.numel()),
                maskable=bool(getattr(module, "maskable", False)),
            )
        )
    return CostReport(tuple(costs))


def model_costs(model: nn.Module, input_shape: Sequence[int]) -> CostReport:
    """:func:`layer_costs` for a single sample of ``input_shape`` (without the batch dim)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return layer_costs(model, torch.zeros((1, *input_shape), device=device))


def _is_weight_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)) or bool(
        getattr(module, "maskable", False) or getattr(module, "is_weight_layer", False)
    )


def _positions_hook(name: str, positions: dict[str, int]):
    def hook(module: nn.Module, inputs, output) -> None:
        out = output[0] if isinstance(output, tuple) else output
        batch = out.shape[0]
        if isinstance(module, nn.modules.conv._ConvNd):
            per_sample = out[0].numel() // out.shape[1]  # spatial positions
        else:
            # Linear-like: one position per sample (extra leading dims, e.g. time, multiply).
            per_sample = out.numel() // (batch * out.shape[-1])
        # A layer called several times per forward (recurrence, timesteps) accumulates.
        positions[name] = positions.get(name, 0) + per_sample

    return hook


def snn_layer_ops(
    layer_macs: Sequence[float], input_spike_rates: Sequence[float | None], timesteps: int
) -> tuple[float, float]:
    """Real-valued MACs and synaptic operations of a spiking network run for ``timesteps`` steps.

    Applies the energy model layer by layer: a layer fed real
    values (the first layer under direct input encoding) costs its MACs once — its input is the
    same at every timestep, so its output current is computed once and reused (as the SNE
    students do) — and a layer fed spikes costs ``rate × T × MACs`` synaptic operations.

    Args:
        layer_macs: Each weight layer's MACs for one timestep (e.g. from :func:`layer_costs`).
        input_spike_rates: For each layer, the measured fraction of its input neurons spiking per
            timestep; ``None`` for a layer fed real values.
        timesteps: Simulation length ``T``.

    Returns:
        ``(real_input_macs, synops)``, ready for :func:`snn_energy_uj`.
    """
    real, synops = 0.0, 0.0
    for macs, rate in zip(layer_macs, input_spike_rates, strict=True):
        if rate is None:
            real += float(macs)
        else:
            synops += synaptic_ops(rate, timesteps, macs)
    return real, synops
