"""Cost counting: MACs from active connections; energy per the documented model."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainables.costs import ann_energy_uj, model_costs, snn_energy_uj, synaptic_ops
from trainables.data import DataInfo
from trainables.energy import ENERGY_MODELS, energy_model
from trainables.g2g.config import ModelConfig
from trainables.g2g.model import G2GNet


def _dense_flops_per_layer(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


@pytest.mark.parametrize("frontend", ["flatten", "patch"])
@pytest.mark.parametrize("kind", ["g2g", "er", "dense"])
def test_macs_equal_active_weights_and_match_flop_counter_scaled_by_density(kind, frontend):
    info = DataInfo("synthetic", (3, 16, 16), 10, 100, 10, 10)
    cfg = ModelConfig(kind=kind, frontend=frontend, width=64, depth=3, groups=4, p_inter=0.2, patch_channels=8)
    net = G2GNet(cfg, info, torch.Generator().manual_seed(0)).eval()
    costs = model_costs(net, info.input_shape)
    x = torch.randn(1, *info.input_shape)
    feats = net.frontend(x)
    expected = 0
    if frontend == "patch":
        conv_flops = _dense_flops_per_layer(net.frontend.conv, x)
        expected += conv_flops // 2  # a MAC is two FLOPs
    for layer in net.hidden:
        dense = nn.Linear(layer.in_features, layer.out_features)
        dense_macs = _dense_flops_per_layer(dense, feats) // 2
        expected += round(dense_macs * layer.density)  # flop counter × density
        assert costs_layer(costs, layer, net) == int(torch.count_nonzero(layer.effective_weight()))
        feats = torch.relu(layer(feats))
    expected += _dense_flops_per_layer(net.classifier, feats) // 2
    assert costs.macs == expected


def costs_layer(costs, layer, net):
    name = next(n for n, m in net.named_modules() if m is layer)
    return next(c.macs for c in costs.layers if c.name == name)


def test_params_count_active_weights_and_biases():
    info = DataInfo("synthetic", (1, 4, 4), 3, 10, 2, 2)
    net = G2GNet(ModelConfig(width=8, depth=1, groups=2, p_inter=0.0), info, torch.Generator().manual_seed(0))
    layer = net.hidden[0]
    costs = model_costs(net, info.input_shape)
    assert costs.params == int(layer.mask.sum()) + 8 + 8 * 3 + 3
    assert costs.density == pytest.approx(layer.density)


def test_energy_model_numbers_by_hand():
    fp32 = energy_model("fp32_45nm")
    assert ann_energy_uj(1_000_000, fp32) == pytest.approx(4.6)  # 1e6 MACs × 4.6 pJ = 4.6 µJ
    ops = synaptic_ops(0.1, 4, 1000)  # 10% spikes × 4 steps × 1000 MACs = 400 ACs
    assert ops == pytest.approx(400)
    assert snn_energy_uj(500, ops, fp32) == pytest.approx((500 * 4.6 + 400 * 0.9) * 1e-6)
    assert ENERGY_MODELS["int8_45nm"].e_ac_pj == 0.03
    with pytest.raises(ValueError, match="fp32_45nm"):
        energy_model("fp64")
