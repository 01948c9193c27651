"""Block-sparse G2G layers equal masked-dense ones; baselines and costs of every kind and granularity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainables.costs import model_costs
from trainables.data import DataInfo
from trainables.g2g.block import BlockSparseLinear, block_fan_in_for_density, block_pattern
from trainables.g2g.config import MODEL_KINDS, G2GConfig, ModelConfig
from trainables.g2g.layers import GROUPINGS, MaskedLinear, expected_density, layer_groupings
from trainables.g2g.model import G2GNet, _sparse_params, matched_dense_width

INFO = DataInfo("synthetic", (1, 8, 8), 10, 100, 10, 10)


def _block_and_masked(grouping: str, n_in: int, n_out: int, groups: int, fan_in: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    (in_l, out_l), = layer_groupings(grouping, [n_in, n_out], groups, gen)
    pattern = block_pattern(groups, fan_in, generator=gen)
    state = gen.get_state()
    block = BlockSparseLinear(in_l, out_l, pattern, generator=gen)
    gen.set_state(state)
    masked = MaskedLinear(n_in, n_out, block.connection_mask(), generator=gen)
    return block, masked


@pytest.mark.parametrize("grouping", GROUPINGS)
@pytest.mark.parametrize("groups, fan_in", [(4, 1), (4, 2), (8, 3), (2, 2)])
def test_block_layer_output_and_gradients_equal_masked_dense(grouping, groups, fan_in):
    block, masked = _block_and_masked(grouping, 32, 48, groups, fan_in)
    # Same generator state → the same effective weights, bit for bit.
    assert torch.equal(block.effective_weight(), masked.effective_weight())
    x = torch.randn(7, 32, generator=torch.Generator().manual_seed(1))
    xb, xm = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(7, 48, generator=torch.Generator().manual_seed(2))
    yb, ym = block(xb), masked(xm)
    torch.testing.assert_close(yb, ym, atol=1e-5, rtol=1e-5)
    yb.backward(upstream)
    ym.backward(upstream)
    torch.testing.assert_close(xb.grad, xm.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(block.bias.grad, masked.bias.grad, atol=1e-5, rtol=1e-5)
    # The block weight's gradient is the masked-dense gradient read at the block positions.
    rows, cols = block._weight_coordinates()
    torch.testing.assert_close(block.weight.grad, masked.weight.grad[rows, cols], atol=1e-5, rtol=1e-5)
    # ... and the masked-dense gradient is zero outside the blocks.
    assert torch.count_nonzero(masked.weight.grad[~block.connection_mask()]) == 0


def test_block_layer_density_and_connectivity():
    block, _ = _block_and_masked("index", 64, 64, 8, 2)
    mask = block.connection_mask()
    assert mask.sum() == 8 * 2 * (8 * 8)  # G × fan_in blocks of in_per_group × out_per_group
    assert block.density == pytest.approx(mask.float().mean().item())
    assert torch.equal(block.block_mask().sum(1), torch.full((8,), 2))
    # Every output unit has exactly fan_in × in_per_group inputs.
    assert torch.equal(mask.sum(1), torch.full((64,), 16))


def test_block_norms_are_frobenius_norms_of_each_block():
    block, _ = _block_and_masked("mixer", 16, 16, 4, 2)
    scores = torch.randn(16, 16, generator=torch.Generator().manual_seed(0))
    norms = block.block_norms(scores)
    for o in range(4):
        for g in range(4):
            rows = block.out_groups == o
            cols = block.in_groups == g
            assert norms[o, g].item() == pytest.approx(scores[rows][:, cols].norm().item(), rel=1e-5)


@pytest.mark.parametrize("own_group", [True, False])
def test_block_pattern_has_fixed_fan_in_distinct_groups_and_own_group(own_group):
    pattern = block_pattern(8, 3, own_group=own_group, generator=torch.Generator().manual_seed(0))
    assert pattern.shape == (8, 3)
    for o, row in enumerate(pattern.tolist()):
        assert len(set(row)) == 3 and all(0 <= g < 8 for g in row)
        if own_group:
            assert o in row
    if not own_group:
        # ER blocks ignore the own group: over many draws some row must lack it.
        many = block_pattern(8, 3, own_group=False, generator=torch.Generator().manual_seed(1))
        assert any(o not in row for o, row in enumerate(many.tolist()))


def test_block_layer_rejects_unequal_groups():
    labels_in = torch.tensor([0, 0, 0, 1])
    with pytest.raises(ValueError, match="equal-sized input groups"):
        BlockSparseLinear(labels_in, torch.tensor([0, 0, 1, 1]), torch.tensor([[0], [1]]))


def test_block_fan_in_matches_edge_density():
    assert block_fan_in_for_density(8, expected_density(8, 1.0, 1 / 7)) == 2  # 75 % sparsity
    assert block_fan_in_for_density(4, 0.01) == 1  # never an empty row
    cfg = ModelConfig(groups=8, p_inter=1 / 7, granularity="block")
    assert cfg.fan_in_groups == 2 and cfg.sparse_density == pytest.approx(0.25)
    assert ModelConfig(groups=8, granularity="block", block_fan_in=3).sparse_density == pytest.approx(3 / 8)


@pytest.mark.parametrize("grouping", GROUPINGS)
def test_block_net_equals_masked_net_with_the_same_masks(grouping):
    info = DataInfo("synthetic", (1, 8, 8), 10, 100, 10, 10)
    block_net = G2GNet(ModelConfig(width=32, depth=3, groups=4, grouping=grouping, granularity="block", block_fan_in=2), info, torch.Generator().manual_seed(3))
    edge_net = G2GNet(ModelConfig(kind="dense", width=32, depth=3), info)
    with torch.no_grad():
        for src, dst in zip(block_net.hidden, edge_net.hidden):
            dst.weight.copy_(src.effective_weight())
            dst.bias.copy_(src.bias)
        edge_net.classifier.load_state_dict(block_net.classifier.state_dict())
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(block_net(x), edge_net(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["g2g", "er"])
def test_block_net_costs_count_active_blocks(kind):
    cfg = ModelConfig(kind=kind, width=64, depth=2, groups=8, granularity="block", block_fan_in=2)
    net = G2GNet(cfg, INFO, torch.Generator().manual_seed(0))
    costs = model_costs(net, INFO.input_shape)
    hidden = [c for c in costs.layers if c.maskable]
    assert len(hidden) == 2
    for layer_cost, layer in zip(hidden, net.hidden):
        assert layer_cost.active_weights == 8 * 2 * layer.block_size  # active blocks × block size
        assert layer_cost.macs == layer_cost.active_weights
        assert layer_cost.dense_weights == layer.in_features * layer.out_features
    assert costs.density == pytest.approx(2 / 8)
    assert costs.macs == 2 * (64 * 64 // 4) + 64 * 10  # two hidden layers at 1/4 density + the head


def test_block_granularity_needs_groups_dividing_features():
    info = DataInfo("synthetic", (1, 1, 30), 10, 100, 10, 10)
    with pytest.raises(ValueError, match="model.groups .* to divide"):
        G2GNet(ModelConfig(width=32, groups=4, granularity="block"), info)


def test_model_kinds_include_the_param_matched_dense_baseline():
    assert set(MODEL_KINDS) == {"g2g", "dense", "dense_matched", "er"}
    # Validated as the ``model`` section of a trial config, so the error names the dotted parameter.
    with pytest.raises(ValueError, match="model.kind"):
        G2GConfig.model_validate({"model": {"kind": "dense-matched"}})
    with pytest.raises(ValueError, match="model.granularity"):
        G2GConfig.model_validate({"model": {"granularity": "row"}})


@pytest.mark.parametrize("granularity", ["edge", "block"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_dense_matched_width_matches_the_sparse_nets_active_params(granularity, depth):
    info = DataInfo("synthetic", (1, 16, 16), 10, 100, 10, 10)
    settings = dict(width=256, depth=depth, groups=8, p_inter=1 / 7, granularity=granularity)
    g2g = G2GNet(ModelConfig(**settings), info, torch.Generator().manual_seed(0))
    matched = G2GNet(ModelConfig(kind="dense_matched", **settings), info, torch.Generator().manual_seed(0))
    alias = G2GNet(ModelConfig(kind="dense", match_params=True, **settings), info, torch.Generator().manual_seed(0))
    assert matched.width == alias.width == matched_dense_width(ModelConfig(**settings), 256, 10)
    assert matched.width < 256
    w = matched.width
    dense_params = model_costs(matched, info.input_shape).params
    # The closest integer width: within half a width step of the G2G net's expected params.
    step = 256 + (depth - 1) * (2 * w + 1) + depth + 10
    assert abs(dense_params - _sparse_params(ModelConfig(**settings), 256, 10)) <= step / 2
    # ... and close to the params of the drawn G2G net (its mask is random around the expectation).
    sparse_params = model_costs(g2g, info.input_shape).params
    assert abs(dense_params - sparse_params) <= step / 2 + 0.03 * sparse_params


@pytest.mark.parametrize("kind", MODEL_KINDS)
@pytest.mark.parametrize("granularity", ["edge", "block"])
def test_pattern_fraction_is_one_without_rewiring(kind, granularity):
    cfg = ModelConfig(kind=kind, width=32, depth=2, groups=4, p_inter=0.2, granularity=granularity)
    net = G2GNet(cfg, INFO, torch.Generator().manual_seed(0))
    assert net.pattern_fraction() == 1.0
    expected_sparse = 0 if kind.startswith("dense") else 2
    assert len(net.sparse_layers()) == expected_sparse


def test_pattern_fraction_counts_connections_outside_the_drawn_mask():
    net = G2GNet(ModelConfig(width=16, depth=1, groups=4, p_inter=0.0), INFO, torch.Generator().manual_seed(0))
    layer = net.hidden[0]
    active = int(layer.mask.sum())
    outside = torch.nonzero(~layer.initial_mask)[:3]
    inside = torch.nonzero(layer.initial_mask)[:3]
    layer.mask[outside[:, 0], outside[:, 1]] = True  # move three connections out of the pattern
    layer.mask[inside[:, 0], inside[:, 1]] = False
    assert net.pattern_fraction() == pytest.approx((active - 3) / active)


def test_masked_layer_keeps_group_labels_for_g2g_only():
    g2g = G2GNet(ModelConfig(width=16, depth=2, groups=4, grouping="mixer"), INFO, torch.Generator().manual_seed(0))
    er = G2GNet(ModelConfig(kind="er", width=16, depth=2, groups=4), INFO, torch.Generator().manual_seed(0))
    for layer, (in_l, out_l) in zip(g2g.hidden, g2g.group_labels):
        assert torch.equal(layer.in_groups, in_l) and torch.equal(layer.out_groups, out_l)
    assert all(layer.in_groups is None for layer in er.hidden)
    # Labels and the drawn mask are buffers, so they travel with a checkpoint.
    assert {"hidden.0.initial_mask", "hidden.0.in_groups", "hidden.0.out_groups"} <= set(g2g.state_dict())


def test_masked_linear_is_unchanged_by_the_new_buffers():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(6, 5, generator=gen) < 0.5
    layer = MaskedLinear(5, 6, mask, generator=torch.Generator().manual_seed(1))
    x = torch.randn(3, 5)
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight * mask, layer.bias))
    assert layer.pattern_counts() == (int(mask.sum()), int(mask.sum()))


@pytest.mark.parametrize("grouping", ["index", "random"])
def test_block_layer_gradients_pass_gradcheck_in_double_precision(grouping):
    block, _ = _block_and_masked(grouping, 8, 12, 4, 2)
    block = block.double()
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    inputs = (x, block.weight, block.bias)

    def layer(x, weight, bias):
        return torch.func.functional_call(block, {"weight": weight, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(layer, inputs)


def test_block_layer_without_bias_equals_masked_dense():
    gen = torch.Generator().manual_seed(4)
    (in_l, out_l), = layer_groupings("mixer", [16, 16], 4, gen)
    block = BlockSparseLinear(in_l, out_l, block_pattern(4, 2, generator=gen), bias=False, generator=gen)
    x = torch.randn(5, 16, requires_grad=True)
    y = block(x)
    torch.testing.assert_close(y, x @ block.effective_weight().t(), atol=1e-5, rtol=1e-5)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(5, 16) @ block.effective_weight().detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("grouping", GROUPINGS)
@pytest.mark.parametrize("groups, fan_in", [(4, 2), (8, 3), (2, 1)])
@pytest.mark.parametrize("frontend", ["flatten", "patch"])
def test_the_group_major_training_chain_equals_the_layer_by_layer_path(grouping, groups, fan_in, frontend):
    """Training runs the hidden layers feature-major (no per-layer transpose or unit scatter);
    outputs and every gradient equal the batch-major path, also after a block moves. With the
    patch front end the first layer's input gradient (batch-major gather) is checked too."""
    info = DataInfo("synthetic", (3, 4, 4), 10, 100, 10, 10)
    cfg = ModelConfig(width=48, depth=3, groups=groups, grouping=grouping, granularity="block", block_fan_in=fan_in,
                      frontend=frontend, patch_channels=6)
    net = G2GNet(cfg, info, torch.Generator().manual_seed(4)).train()
    x = torch.randn(9, 3, 4, 4, generator=torch.Generator().manual_seed(5))

    def outputs_and_grads(group_major: bool):
        net.zero_grad(set_to_none=True)
        handles = [] if group_major else [layer.register_forward_hook(lambda *_: None) for layer in net.hidden]
        try:
            assert net.group_major() is group_major
            out = net(x)
            out.pow(2).sum().backward()
        finally:
            for handle in handles:
                handle.remove()
        return out.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}

    for _ in range(2):
        chain, chain_grads = outputs_and_grads(True)
        plain, plain_grads = outputs_and_grads(False)
        torch.testing.assert_close(chain, plain, atol=1e-5, rtol=1e-5)
        for name in plain_grads:
            torch.testing.assert_close(chain_grads[name], plain_grads[name], atol=1e-5, rtol=1e-5, msg=name)
        # Rewire: every output group reads another input group in its last slot (what DST
        # does in place); the chain's read plan must follow.
        with torch.no_grad():
            for layer in net.hidden:
                index = layer.block_index.clone()
                row_sets = [set(row.tolist()) for row in index]
                for o, row in enumerate(row_sets):
                    free = [g for g in range(groups) if g not in row]
                    if free:
                        index[o, -1] = free[0]
                layer.block_index.copy_(index)
    if grouping == "index":
        assert net.hidden[1].read_plan(None)[1] == 48 // groups  # whole groups, not single rows


def test_evaluation_and_export_keep_the_batch_major_path():
    cfg = ModelConfig(width=32, depth=2, groups=4, granularity="block", block_fan_in=2)
    net = G2GNet(cfg, INFO, torch.Generator().manual_seed(0))
    assert net.train().group_major()
    assert not net.eval().group_major()
    assert not G2GNet(ModelConfig(width=32, depth=2, groups=4, p_inter=0.25), INFO).train().group_major()  # edge masks


def test_the_block_chain_under_bf16_autocast_matches_fp32_and_keeps_gradient_dtypes():
    block, _ = _block_and_masked("index", 64, 64, 4, 2)
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = block.forward_group_major(x)
    assert low.dtype == torch.bfloat16
    low.float().sum().backward()
    assert x.grad.dtype == block.weight.grad.dtype == block.bias.grad.dtype == torch.float32
    low_grad = block.weight.grad.clone()
    block.zero_grad()
    full = block.forward_group_major(x.detach())
    full.sum().backward()
    torch.testing.assert_close(low.float(), full, atol=0.05, rtol=0.05)
    torch.testing.assert_close(low_grad, block.weight.grad, atol=0.1, rtol=0.05)
