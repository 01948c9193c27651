"""Dynamic sparse training: constant density, zero-started growth, the rules pick what they claim."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainables.data import DataInfo
from trainables.g2g.block import BlockSparseLinear
from trainables.g2g.hebbian import hebbian_scores
from trainables.g2g.config import DSTConfig, G2GConfig, ModelConfig
from trainables.g2g.model import G2GNet
from trainables.g2g.rewiring import (
    GROW_RULES,
    PRUNE_RULES,
    SCOPES,
    DynamicSparseTraining,
    rewire_blocks,
    rewire_edges,
    rewire_fraction,
)

INFO = DataInfo("synthetic", (1, 1, 16), 4, 64, 8, 8)


def _setup(granularity="edge", optimizer="adam", seed=0, total_steps=100, p_intra=1.0, kind="g2g", **dst):
    cfg = ModelConfig(kind=kind, width=32, depth=2, groups=4, p_intra=p_intra, p_inter=0.25, granularity=granularity, block_fan_in=2)
    torch.manual_seed(seed)  # the classifier draws from the global generator
    model = G2GNet(cfg, INFO, torch.Generator().manual_seed(seed))
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    settings = {"enabled": True, "interval": 2, "fraction": 0.3, **dst}
    rewiring = DynamicSparseTraining(model.sparse_layers(), opt, DSTConfig(**settings), total_steps, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(48, *INFO.input_shape, generator=gen)
    y = torch.randint(0, INFO.num_classes, (48,), generator=gen)
    return model, opt, rewiring, x, y


def _forward_backward(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()


def _step(model, opt, rewiring, x, y, step):
    _forward_backward(model, opt, x, y)
    opt.step()
    rewiring.after_step(step)


def _masks(model):
    return [layer.connection_mask().clone() for layer in model.hidden]


@pytest.mark.parametrize("granularity", ["edge", "block"])
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("grow", GROW_RULES)
@pytest.mark.parametrize("prune", PRUNE_RULES)
def test_density_is_unchanged_after_every_update(prune, grow, scope, granularity):
    model, opt, rewiring, x, y = _setup(granularity, prune=prune, grow=grow, scope=scope)
    counts = [int(m.sum()) for m in _masks(model)]
    fan_in = [layer.block_index.shape[1] for layer in model.hidden] if granularity == "block" else None
    for step in range(1, 7):
        _step(model, opt, rewiring, x, y, step)
        assert [int(m.sum()) for m in _masks(model)] == counts, f"density changed at step {step}"
        if fan_in is not None:
            for layer, f in zip(model.hidden, fan_in):
                assert torch.equal(layer.block_mask().sum(1), torch.full((layer.groups,), f))
    assert rewiring.updates == 3  # steps 2, 4, 6
    assert rewiring.grown_total > 0
    assert rewiring.hebbian_grown == (rewiring.grown_total if grow == "hebbian" else 0)


@pytest.mark.parametrize("granularity", ["edge", "block"])
def test_density_is_unchanged_with_the_ema_hebbian_window(granularity):
    model, opt, rewiring, x, y = _setup(granularity, prune="hebbian", grow="hebbian", hebbian={"window": "ema", "centered": True})
    counts = [int(m.sum()) for m in _masks(model)]
    for step in range(1, 5):
        _step(model, opt, rewiring, x, y, step)
        assert [int(m.sum()) for m in _masks(model)] == counts
    assert rewiring.moments[0].batches == 4  # the EMA sees every training batch
    assert rewiring.updates == 2


def _connectivity(model):
    """Per layer: the mask (edge) or the block index (block), to diff across an update."""
    return [layer.block_index.clone() if isinstance(layer, BlockSparseLinear) else layer.mask.clone() for layer in model.hidden]


def _entry_masks(layer, old, new):
    """(newly grown, pruned) as boolean masks over ``layer.weight``'s own layout."""
    if isinstance(layer, BlockSparseLinear):
        slots = layer.weight.detach().view(layer.groups, layer.fan_in, layer.in_per_group, layer.out_per_group)
        # A slot that now holds another input group, or a block regrown where it was just
        # pruned (a kept block is never all zero).
        moved_slots = (old != new) | (slots == 0).all(dim=3).all(dim=2)
        grown = moved_slots[:, :, None, None].expand(-1, -1, layer.in_per_group, layer.out_per_group)
        return grown.reshape(layer.weight.shape), None
    return new & ~old, old & ~new


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("granularity", ["edge", "block"])
def test_grown_weights_and_optimiser_moments_are_zero_right_after_growth(granularity, optimizer):
    model, opt, rewiring, x, y = _setup(granularity, optimizer, prune="magnitude", grow="random", interval=3)
    for step in range(1, 3):
        _step(model, opt, rewiring, x, y, step)
    before = _connectivity(model)
    _step(model, opt, rewiring, x, y, 3)  # the update step
    assert rewiring.updates == 1
    keys = ("exp_avg", "exp_avg_sq") if optimizer == "adam" else ("momentum_buffer",)
    checked = 0
    for layer, old, new in zip(model.hidden, before, _connectivity(model)):
        grown, pruned = _entry_masks(layer, old, new)
        assert grown.any()
        assert torch.all(layer.weight[grown] == 0)
        for key in keys:
            state = opt.state[layer.weight][key]
            assert torch.all(state[grown] == 0), key
            assert state[~grown].abs().sum() > 0, "moments elsewhere are kept (the check above can fail)"
        if pruned is not None:
            assert torch.all(layer.weight[pruned] == 0)
        checked += 1
    assert checked == 2


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_pruned_weights_stay_exactly_zero_after_the_next_optimiser_steps(optimizer):
    model, opt, rewiring, x, y = _setup("edge", optimizer, prune="magnitude", grow="gradient", interval=3)
    for step in range(1, 4):
        _step(model, opt, rewiring, x, y, step)
    before = _masks(model)
    for step in range(4, 6):  # momentum from before pruning must not move pruned weights
        _step(model, opt, rewiring, x, y, step)
    pruned_seen = 0
    for layer, old in zip(model.hidden, before):
        assert torch.equal(layer.mask, old)  # no update in between: only the optimiser moved weights
        assert torch.count_nonzero(layer.weight[~layer.mask]) == 0
        pruned_seen += int((layer.initial_mask & ~layer.mask).sum())
    assert pruned_seen > 0


def _brute_force_dense_gradients(model, x, y):
    """dL/dW for every hidden layer's full (dense) weight matrix, by autograd."""
    weights = [layer.effective_weight().detach().clone().requires_grad_() for layer in model.hidden]
    h = model.frontend(x)
    for layer, w in zip(model.hidden, weights):
        h = torch.relu(F.linear(h, w, layer.bias))
    F.cross_entropy(model.classifier(h), y).backward()
    return [w.grad for w in weights]


def _activations(model, x):
    pre, post = [], []
    with torch.no_grad():
        h = model.frontend(x)
        for layer in model.hidden:
            pre.append(h)
            h = torch.relu(layer(h))
            post.append(h)
    return pre, post


@pytest.mark.parametrize("granularity", ["edge", "block"])
@pytest.mark.parametrize("grow", ["gradient", "hebbian"])
def test_growth_picks_the_highest_scores(grow, granularity):
    model, opt, rewiring, x, y = _setup(granularity, prune="random", grow=grow, interval=1, fraction=0.2)
    if grow == "gradient":
        scores = [g.abs() for g in _brute_force_dense_gradients(model, x, y)]
    else:
        scores = [hebbian_scores(pre, post) for pre, post in zip(*_activations(model, x))]
    _step(model, opt, rewiring, x, y, 1)
    assert rewiring.updates == 1
    for layer, score in zip(model.hidden, scores):
        # Right after the update the grown connections are exactly those active at exactly zero
        # (including any regrown where they were just pruned); kept ones are non-zero.
        if isinstance(layer, BlockSparseLinear):
            blocks = layer.block_norms(score)
            active = layer.block_mask()
            grown = active & (layer.block_norms(layer.effective_weight().detach()) == 0)
            assert grown.any()
            for row in torch.nonzero(grown.any(1)).flatten():
                # Within the output group: every grown block beats every block left out.
                assert blocks[row][grown[row]].min() >= blocks[row][~active[row]].max() - 1e-5
        else:
            active = layer.mask
            grown = active & (layer.weight == 0)
            assert grown.any()
            assert score[grown].min() >= score[~active].max() - 1e-5


def test_gradient_is_captured_on_update_steps_only():
    model, opt, rewiring, x, y = _setup("edge", prune="magnitude", grow="gradient", interval=3)
    seen = []
    for step in range(1, 7):
        _forward_backward(model, opt, x, y)
        seen.append(rewiring._captures[0].grad_out is not None)
        opt.step()
        rewiring.after_step(step)
    assert seen == [False, False, True, False, False, True]
    assert all(c.grad_out is None and c.pre is None for c in rewiring._captures)  # released after use


@pytest.mark.parametrize("p_intra", [1.0, 0.7])
@pytest.mark.parametrize("grow", ["random", "gradient"])
def test_pattern_scope_never_grows_outside_the_g2g_pattern(grow, p_intra):
    def relation_counts(model):
        out = []
        for layer in model.hidden:
            intra = layer.out_groups[:, None] == layer.in_groups[None, :]
            out.append((int((layer.mask & intra).sum()), int((layer.mask & ~intra).sum())))
        return out

    for scope in ("pattern", "anywhere"):
        model, opt, rewiring, x, y = _setup("edge", p_intra=p_intra, prune="random", grow=grow, scope=scope, fraction=0.4)
        start = relation_counts(model)
        changed = False
        for step in range(1, 9):
            before = _masks(model)
            _step(model, opt, rewiring, x, y, step)
            if scope == "pattern":
                assert relation_counts(model) == start, f"pattern scope moved an edge across relations at step {step}"
                for layer, old in zip(model.hidden, before):
                    intra = layer.out_groups[:, None] == layer.in_groups[None, :]
                    new_intra = layer.mask & ~old & intra
                    assert not (p_intra == 1.0 and new_intra.any()), "full intra blocks have no room"
            changed |= relation_counts(model) != start
        # Control: without the scope, growth lands in the other relation (the check can fail).
        assert changed == (scope == "anywhere")


def test_pattern_scope_at_block_granularity_keeps_every_groups_own_block():
    for scope in ("pattern", "anywhere"):
        model, opt, rewiring, x, y = _setup("block", prune="random", grow="random", scope=scope, fraction=0.5)
        lost_own = False
        for step in range(1, 11):
            _step(model, opt, rewiring, x, y, step)
            for layer in model.hidden:
                own = layer.block_mask().diagonal()
                if scope == "pattern":
                    assert own.all(), f"own-group block pruned at step {step}"
                lost_own |= not bool(own.all())
        assert rewiring.grown_total > 0
        assert lost_own == (scope == "anywhere")


def test_er_layers_have_no_relation_so_pattern_acts_like_anywhere():
    model, opt, rewiring, x, y = _setup("edge", kind="er", prune="random", grow="random", scope="pattern")
    counts = [int(m.sum()) for m in _masks(model)]
    for step in range(1, 5):
        _step(model, opt, rewiring, x, y, step)
    assert [int(m.sum()) for m in _masks(model)] == counts and rewiring.updates == 2


def test_rewire_edges_moves_exactly_k_and_respects_classes():
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(10, 12, generator=gen) < 0.4
    classes = (torch.arange(10)[:, None] % 2 == torch.arange(12)[None, :] % 2).long()
    prune, grow = torch.rand(10, 12, generator=gen), torch.rand(10, 12, generator=gen)
    new, pruned, grown = rewire_edges(mask, prune, grow, 7, classes)
    assert int(pruned.sum()) == int(grown.sum()) == 7 and int(new.sum()) == int(mask.sum())
    assert torch.all(pruned <= mask) and torch.all(grown <= ~(mask & ~pruned))
    for c in (0, 1):
        assert int((pruned & (classes == c)).sum()) == int((grown & (classes == c)).sum())
    # The pruned are the lowest-scored active edges.
    assert prune[pruned].max() <= prune[mask & ~pruned].min()


def test_rewire_blocks_keeps_fan_in_and_moves_within_rows():
    index = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 3]])
    prune = torch.arange(16, dtype=torch.float).view(4, 4)  # row 0 has the lowest blocks
    grow = torch.zeros(4, 4)
    grow[0, 3] = 5.0
    grow[0, 2] = 4.0
    new, moves = rewire_blocks(index, prune, grow, 2)
    # Row 0's blocks (0, 1) score lowest; its two best inactive groups (3, 2) replace them.
    assert sorted((row, old) for row, _, old, _ in moves) == [(0, 0), (0, 1)]
    assert sorted(new for *_, new in moves) == [2, 3]
    assert new[0].sort().values.tolist() == [2, 3] and torch.equal(new[1:], index[1:])
    kept, moves = rewire_blocks(index, prune, grow, 2, keep_own=True)
    assert all(old != row for row, _, old, _ in moves)  # own-group blocks never pruned
    assert kept[0, 0] == 0 and kept[1, 0] == 1


def test_schedules_and_stop():
    const = DSTConfig(enabled=True, fraction=0.1, stop=0.5, schedule="constant")
    assert rewire_fraction(10, const, 100) == pytest.approx(0.1)
    assert rewire_fraction(50, const, 100) == pytest.approx(0.1)
    assert rewire_fraction(51, const, 100) == 0.0
    cosine = DSTConfig(enabled=True, fraction=0.3, stop=0.75, schedule="cosine")
    assert rewire_fraction(1, cosine, 1000) == pytest.approx(0.3, rel=1e-4)
    assert rewire_fraction(375, cosine, 1000) == pytest.approx(0.15)
    assert rewire_fraction(750, cosine, 1000) == pytest.approx(0.0, abs=1e-12)
    assert rewire_fraction(751, cosine, 1000) == 0.0


def test_updates_stop_at_the_stop_fraction_of_training():
    model, opt, rewiring, x, y = _setup("edge", total_steps=8, stop=0.5, interval=1, grow="random")
    for step in range(1, 9):
        _step(model, opt, rewiring, x, y, step)
    assert rewiring.updates == 4  # steps 1..4 of 8


def test_classifier_and_dense_layers_are_never_rewired():
    model, opt, rewiring, *_ = _setup("edge")
    assert all(layer is not model.classifier for layer in rewiring.layers)
    with pytest.raises(TypeError, match="sparse"):
        DynamicSparseTraining([model.classifier], opt, DSTConfig(enabled=True), 10)
    dense = G2GNet(ModelConfig(kind="dense", width=16, depth=2), INFO)
    assert dense.sparse_layers() == []


@pytest.mark.parametrize(
    "values, message",
    [
        ({"prune": "smallest"}, "dst.prune"),
        ({"grow": "rigl"}, "dst.grow"),
        ({"scope": "blocks"}, "dst.scope"),
        ({"interval": 0}, "dst.interval"),
        ({"stop": 0.0}, "dst.stop"),
        ({"hebbian": {"window": "epoch"}}, "dst.hebbian.window"),
        ({"hebbian": {"ema_decay": 1.5}}, "ema_decay"),
        ({"speed": 1}, r"dst\.speed\n\s+Extra inputs are not permitted"),  # an unknown dst key
    ],
)
def test_invalid_dst_settings_name_the_parameter(values, message):
    # Validated as the ``dst`` section of a trial config, so the error names the dotted parameter.
    with pytest.raises(ValueError, match=message):
        G2GConfig.model_validate({"dst": values})


def test_block_update_counts_connections_not_blocks():
    model, opt, rewiring, x, y = _setup("block", prune="magnitude", grow="random", interval=1, fraction=0.25)
    _step(model, opt, rewiring, x, y, 1)
    moved_blocks = round(0.25 * 4 * 2)  # per layer: fraction × G × fan_in
    assert rewiring.grown_total == sum(moved_blocks * layer.block_size for layer in model.hidden)
    assert model.hidden[0].block_size != model.hidden[1].block_size  # 16→32 then 32→32
    active = sum(int(m.sum()) for m in _masks(model))
    # Moved blocks may land back where they were (a fresh zero block): at most this much drift.
    assert 1 - rewiring.grown_total / active <= model.pattern_fraction() <= 1.0


@pytest.mark.parametrize("grow", ["gradient", "hebbian"])
def test_block_dst_hooks_the_layers_only_on_steps_it_captures(grow):
    """Between updates the block net trains in its group-major chain (no hooks on its layers)."""
    model, opt, rewiring, x, y = _setup("block", prune="magnitude", grow=grow, interval=3)
    chained, captured = [], []
    for step in range(1, 7):
        chained.append(model.group_major())
        _forward_backward(model, opt, x, y)
        captured.append(rewiring._captures[0].pre is not None)
        opt.step()
        rewiring.after_step(step)
    assert chained == [True, True, False, True, True, False]
    assert captured == [False, False, True, False, False, True]
    rewiring.remove()
    assert model.group_major()


def test_block_dst_with_the_ema_window_keeps_its_hooks_every_step():
    model, opt, rewiring, x, y = _setup("block", prune="hebbian", grow="hebbian", interval=3, hebbian={"window": "ema"})
    for step in range(1, 4):
        assert not model.group_major()
        _step(model, opt, rewiring, x, y, step)
    rewiring.remove()
    assert model.group_major()
