"""Block-granular G2G layers: whole group-to-group blocks, computed as gather + batched matmul.

With ``G`` groups of inputs and outputs, output group ``o`` is fed by exactly ``fan_in`` input
groups (``block_index[o]``). Its output is one matmul of the gathered input slices
(``batch × fan_in·in_per_group``) with a dense block weight (``fan_in·in_per_group ×
out_per_group``); all ``G`` output groups run as one ``baddbmm``. No zero is ever multiplied,
which is what turns G2G sparsity into wall-clock speed, and the
result equals a masked dense layer with the same connectivity (tests check to 1e-5).

The fixed fan-in per output group is what makes the batched matmul possible, so rewiring at
block granularity moves blocks within their output group's row (see ``rewiring.py``).

Inside a network, consecutive block layers keep their activations *feature-major and
group-major* (``features × batch``, the rows of a group next to each other) through the whole
chain (:meth:`BlockSparseLinear.forward_group_major`, used by ``G2GNet`` in training). Then a
layer's input gather copies whole rows (or whole groups), its ``baddbmm`` reads and writes
contiguous blocks, and its output is already the next layer's input: no per-layer transpose,
no unit-order scatter. A grouping whose units are not contiguous (``mixer``, ``random``) is a
fixed permutation folded into which rows the next layer reads, and the last one into the
classifier's columns; rewiring changes the rows a layer reads (its read plan), not the data
path.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from trainables.g2g.config import block_fan_in_for_density

__all__ = ["block_pattern", "block_fan_in_for_density", "BlockSparseLinear", "GroupMajorBlockMatmul"]


def block_pattern(
    groups: int, fan_in: int, own_group: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Which input groups feed each output group, ``groups × fan_in`` (sorted per row).

    Args:
        groups: Number of groups ``G`` on both sides.
        fan_in: Input groups per output group, in ``[1, G]``.
        own_group: G2G: output group ``o`` always reads input group ``o`` (dense inside an
            ensemble) plus ``fan_in - 1`` other groups drawn uniformly without replacement.
            False: all ``fan_in`` groups drawn uniformly (the block-level Erdős–Rényi baseline).
        generator: Source of the draws.
    """
    if not 1 <= fan_in <= groups:
        raise ValueError(f"block fan-in must be in [1, {groups}], got {fan_in}")
    rows = []
    for o in range(groups):
        if own_group:
            others = torch.tensor([g for g in range(groups) if g != o], dtype=torch.long)
            picked = others[torch.randperm(groups - 1, generator=generator)[: fan_in - 1]]
            row = torch.cat([torch.tensor([o]), picked])
        else:
            row = torch.randperm(groups, generator=generator)[:fan_in]
        rows.append(row.sort().values)
    return torch.stack(rows)


def _group_members(labels: Tensor, groups: int, side: str) -> Tensor:
    """``groups × size`` unit indices of each group; every group must have the same size."""
    counts = torch.bincount(labels, minlength=groups)
    if len(counts) != groups or not bool((counts == counts[0]).all()) or int(counts[0]) == 0:
        raise ValueError(
            f"block granularity needs {groups} equal-sized {side} groups, got sizes {counts.tolist()}; "
            "choose model.groups dividing the layer's feature count"
        )
    order = torch.sort(labels, stable=True).indices
    return order.view(groups, -1)


class GroupMajorBlockMatmul(torch.autograd.Function):
    """One block layer on feature-major activations: gather, then one bias-fused ``baddbmm``.

    ``h`` is ``rows × batch``; the layer reads ``index`` chunks of ``chunk`` consecutive rows
    (whole groups when ``chunk`` is the group size, single rows otherwise), which, in order,
    form the ``G × K × batch`` input of the batched matmul. The output is ``G × out_per_group ×
    batch`` viewed as ``n_out × batch`` in output-group order.

    With ``batch_major`` the input is ``batch × rows`` instead (the chain's first layer reads
    the front end's output so): the gather copies each sample's chunks and the matmul reads
    the result through a transposed view, which saves transposing the whole input first.

    The backward is written out so it saves only the gathered input and the weight, skips
    the input gradient when nothing upstream needs it (the first layer), and scatter-adds the
    input gradient once.
    """

    @staticmethod
    def forward(
        ctx, h: Tensor, weight: Tensor, bias: Tensor | None, index: Tensor, chunk: int, batch_major: bool = False
    ) -> Tensor:
        groups, k, out_per_group = weight.shape
        if batch_major:
            batch = h.shape[0]
            gathered = h.view(batch, -1, chunk).index_select(1, index).view(batch, groups, k).permute(1, 2, 0)
        else:
            batch = h.shape[1]
            gathered = h.view(-1, chunk, batch).index_select(0, index).view(groups, k, batch)
        ctx.dtypes = (h.dtype, weight.dtype, None if bias is None else bias.dtype)
        device = h.device.type
        if torch.is_autocast_enabled(device):
            # Under autocast (bf16/fp16) the matmuls run in the low precision, as nn.Linear's
            # do; the backward then computes in it too and hands back gradients in each
            # input's own dtype.
            low = torch.get_autocast_dtype(device)
            gathered, weight = gathered.to(low), weight.to(low)
            bias = None if bias is None else bias.to(low)
        with torch.autocast(device, enabled=False):
            w = weight.transpose(1, 2)
            out = torch.bmm(w, gathered) if bias is None else torch.baddbmm(bias, w, gathered)
        ctx.save_for_backward(gathered, weight, index)
        ctx.chunk, ctx.rows, ctx.batch_major = chunk, h.shape[1] if batch_major else h.shape[0], batch_major
        return out.view(groups * out_per_group, batch)

    @staticmethod
    def backward(ctx, grad: Tensor):
        gathered, weight, index = ctx.saved_tensors
        h_dtype, weight_dtype, bias_dtype = ctx.dtypes
        groups, k, out_per_group = weight.shape
        batch = gathered.shape[2]
        g = grad.reshape(groups, out_per_group, batch).to(gathered.dtype)
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(gathered, g.transpose(1, 2)).to(weight_dtype)
        if ctx.needs_input_grad[2]:
            grad_b = g.sum(2, keepdim=True).to(bias_dtype)
        if ctx.needs_input_grad[0]:
            grad_gathered = torch.bmm(weight, g)
            if ctx.batch_major:
                grad_gathered = grad_gathered.permute(2, 0, 1).reshape(batch, -1, ctx.chunk)
                grad_h = grad.new_zeros((batch, ctx.rows // ctx.chunk, ctx.chunk), dtype=grad_gathered.dtype)
                grad_h.index_add_(1, index, grad_gathered)
                grad_h = grad_h.view(batch, ctx.rows).to(h_dtype)
            else:
                grad_h = grad.new_zeros((ctx.rows // ctx.chunk, ctx.chunk, batch), dtype=grad_gathered.dtype)
                grad_h.index_add_(0, index, grad_gathered.view(-1, ctx.chunk, batch))
                grad_h = grad_h.view(ctx.rows, batch).to(h_dtype)
        return grad_h, grad_w, grad_b, None, None, None


class BlockSparseLinear(nn.Module):
    """A G2G layer of dense group-to-group blocks with a fixed fan-in per output group.

    ``weight`` has shape ``G × (fan_in·in_per_group) × out_per_group``: ``weight[o]`` maps the
    concatenated inputs of groups ``block_index[o, 0], block_index[o, 1], …`` (in slot order)
    to the units of output group ``o``. Units of a group need not be contiguous (``mixer`` and
    ``random`` groupings): inputs are gathered by index and outputs put back in unit order;
    contiguous groups take a cheaper group-level gather.

    Args:
        in_groups: Group label of every input unit (``n_in``), balanced.
        out_groups: Group label of every output unit (``n_out``), balanced.
        block_index: ``G × fan_in`` input groups feeding each output group.
        bias: Learn a bias per output unit.
        generator: Source of the initial weights, drawn exactly as :class:`MaskedLinear`
            draws them, so the same generator state gives the same effective weights.
        own_group: The layer follows the G2G prior (each output group reads its own input
            group); False for the block-level Erdős–Rényi baseline. Rewiring with
            ``scope: pattern`` keeps own-group blocks only when True.
    """

    maskable = True

    def __init__(
        self,
        in_groups: Tensor,
        out_groups: Tensor,
        block_index: Tensor,
        bias: bool = True,
        generator: torch.Generator | None = None,
        own_group: bool = True,
    ) -> None:
        super().__init__()
        groups, fan_in = block_index.shape
        self.own_group = bool(own_group)
        self.in_features, self.out_features = len(in_groups), len(out_groups)
        self.groups, self.fan_in = int(groups), int(fan_in)
        in_index = _group_members(in_groups.long(), self.groups, "input")
        out_index = _group_members(out_groups.long(), self.groups, "output")
        self.in_per_group, self.out_per_group = in_index.shape[1], out_index.shape[1]
        self.register_buffer("in_groups", in_groups.to(torch.long).clone())
        self.register_buffer("out_groups", out_groups.to(torch.long).clone())
        self.register_buffer("block_index", block_index.to(torch.long).clone())
        self.register_buffer("initial_block_index", block_index.to(torch.long).clone())
        # Derived from the labels, so rebuilt rather than saved.
        self.register_buffer("in_index", in_index, persistent=False)
        self.register_buffer("out_index", out_index, persistent=False)
        self.register_buffer("out_inverse", torch.argsort(out_index.reshape(-1)), persistent=False)
        self.in_contiguous = bool(torch.equal(in_index.reshape(-1), torch.arange(self.in_features)))
        self.out_contiguous = bool(torch.equal(out_index.reshape(-1), torch.arange(self.out_features)))
        k = self.fan_in * self.in_per_group
        self._plan: tuple[tuple, Tensor, int] | None = None
        self.weight = nn.Parameter(torch.empty(self.groups, k, self.out_per_group))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.reset_parameters(generator)

    @property
    def block_size(self) -> int:
        """Connections per block (``in_per_group × out_per_group``)."""
        return self.in_per_group * self.out_per_group

    @property
    def density(self) -> float:
        return self.fan_in / self.groups

    def columns(self) -> Tensor:
        """``G × (fan_in·in_per_group)`` input unit indices gathered for each output group."""
        return self.in_index[self.block_index].reshape(self.groups, -1)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        # Same draws, order and row scaling as MaskedLinear: every row's active fan-in is
        # fan_in·in_per_group, so the scale is one number.
        bound = 1.0 / math.sqrt(self.in_features)
        dense = torch.rand(self.out_features, self.in_features, generator=generator) * 2 * bound - bound
        if self.bias is not None:
            self.bias.copy_(torch.rand(self.out_features, generator=generator) * 2 * bound - bound)
        active = self.fan_in * self.in_per_group
        dense.mul_(math.sqrt(self.in_features / active))
        rows, cols = self._weight_coordinates()
        self.weight.copy_(dense.to(self.weight.device)[rows, cols])

    def _weight_coordinates(self) -> tuple[Tensor, Tensor]:
        """Dense (row, column) of every entry of ``weight``, each ``G × K × out_per_group``."""
        shape = self.weight.shape
        rows = self.out_index[:, None, :].expand(shape)
        cols = self.columns()[:, :, None].expand(shape)
        return rows, cols

    def effective_weight(self) -> Tensor:
        """The equivalent dense ``out_features × in_features`` weight (zeros outside the blocks)."""
        rows, cols = self._weight_coordinates()
        return self.weight.new_zeros(self.out_features, self.in_features).index_put((rows, cols), self.weight)

    def connection_mask(self) -> Tensor:
        """Current connectivity as a boolean ``out_features × in_features`` matrix."""
        rows, cols = self._weight_coordinates()
        mask = torch.zeros(self.out_features, self.in_features, dtype=torch.bool, device=self.weight.device)
        return mask.index_put((rows, cols), torch.ones((), dtype=torch.bool, device=mask.device))

    def block_mask(self) -> Tensor:
        """``G × G`` boolean: which (output group, input group) blocks are active."""
        mask = torch.zeros(self.groups, self.groups, dtype=torch.bool, device=self.block_index.device)
        return mask.scatter(1, self.block_index, True)

    def block_norms(self, scores: Tensor) -> Tensor:
        """Frobenius norm of a dense ``n_out × n_in`` score matrix over every ``G × G`` block."""
        grouped = scores[self.out_index.reshape(-1)][:, self.in_index.reshape(-1)]
        blocks = grouped.view(self.groups, self.out_per_group, self.groups, self.in_per_group)
        return blocks.pow(2).sum(dim=(1, 3)).sqrt()

    def slot_weights(self, row: int, slot: int) -> slice:
        """Slice of ``weight[row]``'s K axis holding block slot ``slot``."""
        return slice(slot * self.in_per_group, (slot + 1) * self.in_per_group)

    def pattern_counts(self) -> tuple[int, int]:
        """(active connections in blocks the layer was built with, active connections)."""
        kept = (self.block_index[:, :, None] == self.initial_block_index[:, None, :]).any(-1).sum()
        return int(kept) * self.block_size, self.groups * self.fan_in * self.block_size

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        if self.in_contiguous:
            # Whole groups are contiguous slices: gather G·fan_in slices, not single columns.
            gathered = x.reshape(batch, self.groups, self.in_per_group).index_select(1, self.block_index.reshape(-1))
        else:
            gathered = x.index_select(1, self.columns().reshape(-1))
        # Group-major and contiguous (G × batch × K): the forward matmul and, in the backward,
        # the weight-gradient matmul then read plain or transposed contiguous blocks, which
        # is faster than the strided batch-major view although it costs one copy.
        gathered = gathered.reshape(batch, self.groups, -1).transpose(0, 1).contiguous()
        if self.bias is not None:
            bias = self.bias.view(self.groups, 1, -1) if self.out_contiguous else self.bias[self.out_index].unsqueeze(1)
            out = torch.baddbmm(bias, gathered, self.weight)
        else:
            out = torch.bmm(gathered, self.weight)
        out = out.transpose(0, 1).reshape(batch, self.out_features)
        # Outputs come grouped; put them back in unit order unless groups are contiguous.
        return out if self.out_contiguous else out.index_select(1, self.out_inverse)

    def read_plan(self, position: Tensor | None = None) -> tuple[Tensor, int]:
        """Which rows of a feature-major input :meth:`forward_group_major` gathers.

        Args:
            position: Row of the input holding each input unit (``None``: unit ``u`` is row
                ``u``). A previous block layer's :attr:`out_inverse` is exactly this.

        Returns:
            ``(index, chunk)``: gather chunks ``index`` of ``chunk`` consecutive rows. When the
            rows come in whole aligned groups (contiguous groupings) ``chunk`` is the group
            size, otherwise 1. Cached until ``block_index`` changes (rewiring) or ``position``
            does.
        """
        key = (
            self.block_index._version,
            self.block_index.data_ptr(),
            None if position is None else (position.data_ptr(), position._version),
        )
        if self._plan is not None and self._plan[0] == key:
            return self._plan[1], self._plan[2]
        rows = self.columns().reshape(-1)
        if position is not None:
            rows = position[rows]
        size = self.in_per_group
        starts = rows.view(-1, size)[:, 0]
        aligned = bool((starts % size == 0).all()) and bool(
            torch.equal(rows.view(-1, size), starts[:, None] + torch.arange(size, device=rows.device))
        )
        index, chunk = (torch.div(starts, size, rounding_mode="floor"), size) if aligned and size > 1 else (rows, 1)
        self._plan = (key, index, chunk)
        return index, chunk

    def grouped_bias(self) -> Tensor | None:
        """The bias in output-group order, ``G × out_per_group × 1`` (``None`` without bias)."""
        if self.bias is None:
            return None
        bias = self.bias if self.out_contiguous else self.bias.index_select(0, self.out_index.reshape(-1))
        return bias.view(self.groups, self.out_per_group, 1)

    def forward_group_major(self, h: Tensor, position: Tensor | None = None, batch_major: bool = False) -> Tensor:
        """The layer on feature-major activations, ``n_in × batch`` in, ``n_out × batch`` out.

        Args:
            h: Inputs, one row per input unit, in any order that ``position`` describes.
            position: Row of ``h`` holding each input unit; ``None`` for unit order.
            batch_major: ``h`` is ``batch × n_in`` (a chain's first layer); the output is
                feature-major all the same.

        Returns:
            Outputs in output-group order: row ``r`` holds unit ``out_index.reshape(-1)[r]``
            (unit order when the output groups are contiguous); ``out_inverse`` gives the row
            of each unit for the next layer.
        """
        index, chunk = self.read_plan(position)
        return GroupMajorBlockMatmul.apply(h.contiguous(), self.weight, self.grouped_bias(), index, chunk, batch_major)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, groups={self.groups}, "
            f"fan_in={self.fan_in}, density={self.density:.3f}"
        )
