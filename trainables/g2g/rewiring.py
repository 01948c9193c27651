"""Dynamic sparse training (DST): prune and regrow connections of the sparse hidden layers.

Every ``dst.interval`` optimiser steps, per sparse hidden layer, the ``k`` active connections
with the lowest prune score are removed and exactly ``k`` inactive ones with the highest grow
score are added, so density is constant. ``k = round(fraction_t × active)``
where ``fraction_t`` follows ``dst.schedule`` and drops to 0 after ``dst.stop × total steps``.
The classifier is never rewired (it is not a sparse hidden layer).

Rules (``dst.prune`` / ``dst.grow``):

- ``magnitude``: prune the smallest ``|w|`` (SET).
- ``random``: uniform (SET's growth).
- ``hebbian``: prune the lowest, grow the highest co-activation score C_H (``hebbian.py``).
- ``gradient``: grow the largest ``|∂L/∂w|`` of the dense gradient (RigL). The dense gradient
  ``grad_outᵀ · input`` is captured by hooks on update steps only; other steps cost nothing.

Grown weights start at exactly 0 and their optimiser moments (Adam's ``exp_avg`` and
``exp_avg_sq``, SGD's momentum) are reset; pruned weights are set to 0 and their moments
cleared too, so the optimiser's momentum cannot move them off zero on the next step.
Growth candidates are the connections inactive *after* pruning, so a just-pruned connection
may be regrown (as a fresh zero), as in RigL's reference implementation.

``dst.scope``:

- ``anywhere`` (reference): grow anywhere in the layer.
- ``pattern``: every move keeps its G2G relation. At edge granularity a pruned intra-group
  connection is replaced by an intra-group one and an inter-group by an inter-group one, so
  the intra/inter densities the G2G draw gave stay exactly as drawn while edges move. At
  block granularity each output group keeps its own (intra-group) block and only inter-group
  blocks move. Layers without G2G groups (Erdős–Rényi) have no relation to keep: ``pattern``
  acts like ``anywhere`` there.

Block granularity moves whole blocks: block scores are the Frobenius norms of the edge
scores over each block, and a block pruned from an output group is replaced by one in the
same output group, keeping the fixed fan-in the batched matmul needs. Counters (``grown``)
count connections, not blocks, so both granularities report in the same unit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from trainables.g2g.block import BlockSparseLinear
from trainables.g2g.config import DSTConfig, GROW_RULES, PRUNE_RULES, SCHEDULES, SCOPES
from trainables.g2g.hebbian import HebbianMoments, hebbian_scores
from trainables.g2g.layers import MaskedLinear

__all__ = [
    "PRUNE_RULES",
    "GROW_RULES",
    "SCHEDULES",
    "SCOPES",
    "DSTConfig",
    "rewire_fraction",
    "rewire_edges",
    "rewire_blocks",
    "reset_optimizer_state",
    "DynamicSparseTraining",
]

def rewire_fraction(step: int, cfg: DSTConfig, total_steps: int) -> float:
    """Share of active connections to move at optimiser step ``step`` (0 = no update).

    ``constant``: ``fraction`` until ``stop × total_steps``; ``cosine``: ``fraction × ½(1 +
    cos(π t / (stop × total_steps)))``, RigL's annealing, reaching 0 at the stop.
    """
    end = cfg.stop * total_steps
    if step <= 0 or step > end:
        return 0.0
    if cfg.schedule == "constant":
        return float(cfg.fraction)
    return float(cfg.fraction) * 0.5 * (1.0 + math.cos(math.pi * step / end))


def _lowest(scores: Tensor, allowed: Tensor, k: int) -> Tensor:
    """Boolean mask of the ``k`` entries of ``scores`` with the lowest values among ``allowed``."""
    chosen = torch.zeros_like(allowed)
    if k <= 0:
        return chosen
    flat = torch.where(allowed, scores.float(), torch.full_like(scores, math.inf, dtype=torch.float)).reshape(-1)
    chosen.view(-1)[torch.topk(flat, k, largest=False).indices] = True
    return chosen


def _highest(scores: Tensor, allowed: Tensor, k: int) -> Tensor:
    """Boolean mask of the ``k`` entries of ``scores`` with the highest values among ``allowed``."""
    chosen = torch.zeros_like(allowed)
    if k <= 0:
        return chosen
    flat = torch.where(allowed, scores.float(), torch.full_like(scores, -math.inf, dtype=torch.float)).reshape(-1)
    chosen.view(-1)[torch.topk(flat, k, largest=True).indices] = True
    return chosen


def rewire_edges(
    mask: Tensor, prune_scores: Tensor, grow_scores: Tensor, k: int, classes: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """One prune-and-grow step on a boolean connectivity mask (pure).

    Args:
        mask: Current connectivity, boolean.
        prune_scores: Lower is pruned first (only active entries are considered).
        grow_scores: Higher is grown first (only entries inactive after pruning).
        k: Connections to move.
        classes: Optional integer class of every entry; each class regains exactly as many
            connections as it lost (``scope: pattern``). None: one class.

    Returns:
        ``(new_mask, pruned, grown)``; ``new_mask`` has as many active entries as ``mask``.
    """
    k = min(int(k), int(mask.sum()))
    pruned = _lowest(prune_scores, mask, k)
    after = mask & ~pruned
    if classes is None:
        grown = _highest(grow_scores, ~after, k)
    else:
        grown = torch.zeros_like(mask)
        for c in torch.unique(classes[pruned]).tolist():
            in_class = classes == c
            grown |= _highest(grow_scores, ~after & in_class, int((pruned & in_class).sum()))
    return after | grown, pruned, grown


def rewire_blocks(
    block_index: Tensor, prune_scores: Tensor, grow_scores: Tensor, k: int, keep_own: bool = False
) -> tuple[Tensor, list[tuple[int, int, int, int]]]:
    """One prune-and-grow step on whole blocks with a fixed fan-in per output group (pure).

    Args:
        block_index: ``G × fan_in`` input groups feeding each output group.
        prune_scores: ``G × G`` block scores (output group × input group); lower pruned first.
        grow_scores: ``G × G``; higher grown first, within the pruned block's output group.
        k: Blocks to move.
        keep_own: Never prune or grow a block's own group (``scope: pattern`` for G2G).

    Returns:
        ``(new_block_index, moves)`` with one ``(row, slot, old_group, new_group)`` per move.
    """
    groups = block_index.shape[0]
    active = torch.zeros(groups, groups, dtype=torch.bool, device=block_index.device).scatter(1, block_index, True)
    own = torch.eye(groups, dtype=torch.bool, device=block_index.device)
    movable = active & ~own if keep_own else active
    pruned = _lowest(prune_scores, movable, min(int(k), int(movable.sum())))
    after = active & ~pruned
    new_index = block_index.clone()
    moves: list[tuple[int, int, int, int]] = []
    for row in torch.nonzero(pruned.any(dim=1)).flatten().tolist():
        candidates = ~after[row] & ~own[row] if keep_own else ~after[row]
        lost = torch.nonzero(pruned[row]).flatten()
        gained = torch.nonzero(_highest(grow_scores[row], candidates, len(lost))).flatten()
        for old, new in zip(lost.tolist(), gained.tolist()):
            slot = int(torch.nonzero(block_index[row] == old)[0])
            new_index[row, slot] = new
            moves.append((row, slot, old, new))
    return new_index, moves


@torch.no_grad()
def reset_optimizer_state(optimizer: torch.optim.Optimizer, param: Tensor, where: Tensor) -> None:
    """Zero every per-weight optimiser buffer of ``param`` (moments, momentum) at ``where``."""
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if isinstance(value, Tensor) and value.shape == param.shape:
            value.masked_fill_(where, 0)


class _Capture:
    """What a layer's hooks saw on the current update step."""

    __slots__ = ("pre", "post", "grad_out")

    def __init__(self) -> None:
        self.pre: Tensor | None = None
        self.post: Tensor | None = None
        self.grad_out: Tensor | None = None


class DynamicSparseTraining:
    """Runs DST on a model's sparse hidden layers, driven by the training loop.

    Call :meth:`after_step` after every optimiser step (``train_epoch(after_step=...)``). Hooks
    on the layers capture activations (and the output gradient for ``grow: gradient``) only on
    the forward/backward pass of an update step, or every training step for the ``ema``
    Hebbian window. Random rules draw from a generator of their own, so turning DST on does
    not change the data order.

    Args:
        layers: The sparse hidden layers (``G2GNet.sparse_layers()``); never the classifier.
        optimizer: The optimiser whose per-weight state is reset for moved connections.
        cfg: DST settings.
        total_steps: Optimiser steps of the whole run (for the schedule and ``stop``).
        seed: Seed of the generator used by random rules.
    """

    def __init__(
        self,
        layers: Sequence[nn.Module],
        optimizer: torch.optim.Optimizer,
        cfg: DSTConfig,
        total_steps: int,
        seed: int = 0,
    ) -> None:
        for layer in layers:
            if not isinstance(layer, (MaskedLinear, BlockSparseLinear)) or (
                isinstance(layer, MaskedLinear) and layer.mask is None
            ):
                raise TypeError(f"DST rewires sparse MaskedLinear or BlockSparseLinear layers, got {layer!r}")
        self.layers = list(layers)
        self.optimizer = optimizer
        self.cfg = cfg
        self.total_steps = int(total_steps)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.step = 0
        self.updates = 0
        self.grown_total = 0
        self.hebbian_grown = 0
        self._captures = [_Capture() for _ in self.layers]
        self.moments: list[HebbianMoments] | None = None
        if cfg.uses_hebbian and cfg.hebbian.window == "ema":
            self.moments = [
                HebbianMoments(m.in_features, m.out_features, cfg.hebbian.ema_decay, m.weight.device) for m in self.layers
            ]
        self._handles: list[Any] = []
        self._removed = False
        self._sync_hooks()

    # ---- capture -------------------------------------------------------------------------
    def _sync_hooks(self) -> None:
        """Hooks on the layers only while the next step captures (always for the EMA window).

        A layer without hooks runs in the network's group-major block chain, so steps that
        capture nothing cost nothing.
        """
        wanted = not self._removed and (self.moments is not None or self._capturing())
        if wanted and not self._handles:
            self._handles = [layer.register_forward_hook(self._forward_hook(i)) for i, layer in enumerate(self.layers)]
        elif not wanted and self._handles:
            for handle in self._handles:
                handle.remove()
            self._handles = []

    def _capturing(self) -> bool:
        nxt = self.step + 1
        return nxt % self.cfg.interval == 0 and rewire_fraction(nxt, self.cfg, self.total_steps) > 0

    def _forward_hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if not module.training or not torch.is_grad_enabled():
                return  # evaluation and cost counting are not training batches
            pre = inputs[0].detach()
            if self.moments is not None:
                # The net's nonlinearity is ReLU: C_H compares inputs with post-ReLU outputs.
                self.moments[index].update(pre, torch.relu(output.detach()))
            if not self._capturing():
                return
            capture = self._captures[index]
            capture.pre = pre
            if self.cfg.uses_hebbian and self.moments is None:
                capture.post = torch.relu(output.detach())
            if self.cfg.grow == "gradient" and output.requires_grad:

                def keep_grad(grad: Tensor) -> None:
                    capture.grad_out = grad.detach()

                output.register_hook(keep_grad)

        return hook

    # ---- the update ----------------------------------------------------------------------
    def after_step(self, step: int) -> None:
        """Call after optimiser step number ``step`` (1-based count of steps taken)."""
        self.step = int(step)
        try:
            if self.step % self.cfg.interval == 0:
                fraction = rewire_fraction(self.step, self.cfg, self.total_steps)
                if fraction > 0:
                    self.update(fraction)
        finally:
            for capture in self._captures:
                capture.pre = capture.post = capture.grad_out = None
            self._sync_hooks()

    @torch.no_grad()
    def update(self, fraction: float) -> int:
        """Rewire every layer by ``fraction`` now; returns the connections grown."""
        grown_now = 0
        for index, layer in enumerate(self.layers):
            # Scores are built and dropped one layer at a time (at most one n_out × n_in
            # score matrix of each kind alive).
            if isinstance(layer, BlockSparseLinear):
                grown_now += self._update_blocks(index, layer, fraction)
            else:
                grown_now += self._update_edges(index, layer, fraction)
        if grown_now:
            self.updates += 1
            self.grown_total += grown_now
            if self.cfg.grow == "hebbian":
                self.hebbian_grown += grown_now
        return grown_now

    def _hebbian(self, index: int) -> Tensor:
        if self.moments is not None:
            return self.moments[index].scores(self.cfg.hebbian.centered)
        capture = self._captures[index]
        if capture.pre is None or capture.post is None:
            raise RuntimeError("Hebbian rewiring needs the activations of the update step; call after_step after each optimiser step")
        return hebbian_scores(capture.pre, capture.post, self.cfg.hebbian.centered)

    def _dense_gradient(self, index: int) -> Tensor:
        capture = self._captures[index]
        if capture.pre is None or capture.grad_out is None:
            raise RuntimeError("gradient growth needs the output gradient of the update step; call after_step after each optimiser step")
        return capture.grad_out.float().t() @ capture.pre.float()

    def _random(self, shape: torch.Size, device: torch.device) -> Tensor:
        return torch.rand(shape, generator=self.generator).to(device)

    def _edge_scores(self, index: int, layer: nn.Module, rule: str, weight: Tensor) -> Tensor:
        if rule == "magnitude":
            return weight.abs()
        if rule == "random":
            return self._random(weight.shape, weight.device)
        if rule == "hebbian":
            return self._hebbian(index)
        return self._dense_gradient(index).abs()

    def _update_edges(self, index: int, layer: MaskedLinear, fraction: float) -> int:
        mask = layer.mask
        k = round(fraction * int(mask.sum()))
        if k == 0:
            return 0
        prune = self._edge_scores(index, layer, self.cfg.prune, layer.weight)
        # Both rules Hebbian: one score matrix serves both (random rules need two draws).
        grow = prune if self.cfg.grow == self.cfg.prune == "hebbian" else self._edge_scores(index, layer, self.cfg.grow, layer.weight)
        classes = None
        if self.cfg.scope == "pattern" and layer.in_groups is not None:
            classes = (layer.out_groups[:, None] == layer.in_groups[None, :]).to(torch.int8)
        new_mask, pruned, grown = rewire_edges(mask, prune, grow, k, classes)
        del prune, grow, classes
        moved = pruned | grown
        layer.mask.copy_(new_mask)
        layer.weight.masked_fill_(moved, 0.0)
        reset_optimizer_state(self.optimizer, layer.weight, moved)
        return int(grown.sum())

    def _block_scores(self, index: int, layer: BlockSparseLinear, rule: str) -> Tensor:
        if rule == "random":
            return self._random(torch.Size((layer.groups, layer.groups)), layer.weight.device)
        if rule == "magnitude":
            # Norm of each active block's weights; inactive blocks have none (never pruned).
            norms = torch.zeros(layer.groups, layer.groups, device=layer.weight.device)
            per_slot = layer.weight.view(layer.groups, layer.fan_in, layer.in_per_group, -1).pow(2).sum(dim=(2, 3)).sqrt()
            return norms.scatter(1, layer.block_index, per_slot)
        edge = self._hebbian(index) if rule == "hebbian" else self._dense_gradient(index)
        return layer.block_norms(edge)

    def _update_blocks(self, index: int, layer: BlockSparseLinear, fraction: float) -> int:
        k = round(fraction * layer.groups * layer.fan_in)
        if k == 0:
            return 0
        prune = self._block_scores(index, layer, self.cfg.prune)
        grow = prune if self.cfg.grow == self.cfg.prune == "hebbian" else self._block_scores(index, layer, self.cfg.grow)
        keep_own = self.cfg.scope == "pattern" and layer.own_group
        new_index, moves = rewire_blocks(layer.block_index, prune, grow, k, keep_own)
        if not moves:
            return 0
        moved = torch.zeros_like(layer.weight, dtype=torch.bool)
        for row, slot, _, _ in moves:
            moved[row, layer.slot_weights(row, slot)] = True
        layer.block_index.copy_(new_index)
        layer.weight.masked_fill_(moved, 0.0)
        reset_optimizer_state(self.optimizer, layer.weight, moved)
        return len(moves) * layer.block_size

    # ---- reporting and checkpoints -------------------------------------------------------
    def metrics(self) -> dict[str, int]:
        """Counters for the epoch report."""
        return {"dst_updates": self.updates, "grown_total": self.grown_total, "hebbian_grown": self.hebbian_grown}

    def state_dict(self) -> dict[str, Any]:
        """Counters, generator and EMA statistics (masks live in the model's state dict)."""
        return {
            "step": self.step,
            "updates": self.updates,
            "grown_total": self.grown_total,
            "hebbian_grown": self.hebbian_grown,
            "generator": self.generator.get_state(),
            "moments": [m.state_dict() for m in self.moments] if self.moments is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        self.step = int(state["step"])
        self.updates = int(state["updates"])
        self.grown_total = int(state["grown_total"])
        self.hebbian_grown = int(state["hebbian_grown"])
        self.generator.set_state(state["generator"])
        saved = state.get("moments")
        if (saved is None) != (self.moments is None):
            raise ValueError("checkpoint and config disagree on the Hebbian EMA window")
        if self.moments is not None:
            for moments, values in zip(self.moments, saved):
                moments.load_state_dict(values)
        self._sync_hooks()

    def remove(self) -> None:
        """Detach the hooks (the model trains as without DST afterwards)."""
        self._removed = True
        self._sync_hooks()
