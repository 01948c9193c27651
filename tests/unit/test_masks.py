"""G2G masks: density follows the formula for every grouping; mixer alternates layouts."""

from __future__ import annotations

import pytest
import torch

from trainables.data import DataInfo
from trainables.g2g.layers import GROUPINGS, er_mask, expected_density, g2g_mask, group_labels, layer_groupings
from trainables.g2g.config import ModelConfig
from trainables.g2g.model import G2GNet


@pytest.mark.parametrize("grouping", GROUPINGS)
@pytest.mark.parametrize("groups, p_intra, p_inter", [(8, 1.0, 1 / 7), (4, 1.0, 0.1), (2, 0.8, 0.3), (16, 1.0, 0.0)])
def test_mask_density_matches_the_formula(grouping, groups, p_intra, p_inter):
    gen = torch.Generator().manual_seed(0)
    sizes = [256, 512, 512]
    masks = [g2g_mask(i, o, p_intra, p_inter, gen) for i, o in layer_groupings(grouping, sizes, groups, gen)]
    expected = expected_density(groups, p_intra, p_inter)
    for mask in masks:
        n = mask.numel()
        tolerance = 5 * (expected * (1 - expected) / n) ** 0.5 + 1e-9  # 5 sigma of a binomial
        assert abs(mask.float().mean().item() - expected) <= tolerance


def test_75_percent_sparsity_reference_point():
    assert expected_density(8, 1.0, 1 / 7) == pytest.approx(0.25)


def test_intra_group_blocks_are_dense_and_inter_blocks_empty_when_p_inter_is_zero():
    gen = torch.Generator().manual_seed(1)
    (in_l, out_l), = layer_groupings("index", [8, 12], 4, gen)
    mask = g2g_mask(in_l, out_l, 1.0, 0.0, gen)
    same = out_l[:, None] == in_l[None, :]
    assert torch.equal(mask, same)


def test_mixer_alternates_contiguous_and_interleaved():
    labels = layer_groupings("mixer", [16, 16, 16, 16], 4)
    contiguous, interleaved = group_labels(16, 4, "contiguous"), group_labels(16, 4, "interleaved")
    assert torch.equal(labels[0][0], contiguous) and torch.equal(labels[0][1], interleaved)
    assert torch.equal(labels[1][0], interleaved) and torch.equal(labels[1][1], contiguous)
    assert torch.equal(labels[2][0], contiguous) and torch.equal(labels[2][1], interleaved)
    # A layer's input layout is the previous layer's output layout (feature spaces chain).
    for prev, nxt in zip(labels, labels[1:]):
        assert torch.equal(prev[1], nxt[0])


def test_index_chains_groups_and_random_permutes_them():
    index = layer_groupings("index", [16, 16, 16], 4)
    assert all(torch.equal(a, group_labels(16, 4)) for pair in index for a in pair)
    rand = layer_groupings("random", [16, 16, 16], 4, torch.Generator().manual_seed(0))
    assert not torch.equal(rand[0][1], rand[1][0]), "random draws each layer's labels independently"
    for in_l, out_l in rand:  # still balanced
        assert torch.bincount(in_l).tolist() == [4, 4, 4, 4] and torch.bincount(out_l).tolist() == [4, 4, 4, 4]


def test_er_mask_has_exact_density():
    mask = er_mask(64, 32, 0.25, torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 512


def test_model_kinds_share_density_and_masked_weights_are_zero():
    info = DataInfo("synthetic", (1, 8, 8), 10, 100, 10, 10)
    nets = {
        kind: G2GNet(ModelConfig(kind=kind, width=128, depth=2, groups=8, p_inter=1 / 7), info, torch.Generator().manual_seed(0))
        for kind in ("g2g", "er", "dense")
    }
    for kind in ("g2g", "er"):
        for layer in nets[kind].hidden:
            assert abs(layer.density - 0.25) < 0.05
            assert torch.count_nonzero(layer.weight[~layer.mask]) == 0
    assert all(layer.mask is None for layer in nets["dense"].hidden)


def test_row_rescaled_init_keeps_row_scale_of_dense():
    gen = torch.Generator().manual_seed(0)
    info = DataInfo("synthetic", (1, 1, 512), 10, 100, 10, 10)
    sparse = G2GNet(ModelConfig(width=512, depth=1, groups=8, p_inter=0.0), info, gen).hidden[0]
    dense = G2GNet(ModelConfig(kind="dense", width=512, depth=1), info, gen).hidden[0]
    row_norm = lambda w: w.pow(2).sum(1).mean().item()  # noqa: E731
    assert row_norm(sparse.weight) == pytest.approx(row_norm(dense.weight), rel=0.15)
