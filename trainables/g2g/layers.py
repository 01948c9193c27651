"""G2G (group-to-group) sparse linear layers: dense inside an ensemble, sparse between ensembles.

A layer's inputs and outputs are split into ``G`` groups. Each weight gets a fixed mask entry,
drawn once: kept with probability ``p_intra`` when input and output share a group, ``p_inter``
otherwise, so the expected density is ``p_intra / G + (1 - 1/G) * p_inter``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from trainables.g2g.config import GROUPINGS, expected_density

__all__ = [
    "GROUPINGS",
    "group_labels",
    "layer_groupings",
    "g2g_mask",
    "er_mask",
    "expected_density",
    "MaskedLinear",
]

#: How neurons are assigned to groups, layer by layer.


def group_labels(n: int, groups: int, layout: str = "contiguous") -> torch.Tensor:
    """Group label of each of ``n`` units.

    ``contiguous``: blocks ``[0..n/G)``, ``[n/G..2n/G)``, ...; ``interleaved``: ``i mod G``.
    Sizes that ``groups`` does not divide get blocks differing in size by at most one.
    """
    if groups < 1 or groups > n:
        raise ValueError(f"groups must be in [1, {n}] for a layer of {n} units, got {groups}")
    idx = torch.arange(n)
    if layout == "contiguous":
        return idx * groups // n
    if layout == "interleaved":
        return idx % groups
    raise ValueError(f"unknown group layout {layout!r}")


def layer_groupings(
    grouping: str, sizes: Sequence[int], groups: int, generator: torch.Generator | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input labels, output labels) for each layer of a stack with feature sizes ``sizes``.

    Layer ``l`` maps feature space ``l`` (``sizes[l]`` units) to space ``l + 1``.

    - ``index``: every space contiguous; a layer's output groups are the next layer's input
      groups, so the network is ``G`` parallel chains with sparse cross-talk.
    - ``mixer``: space ``k`` is contiguous for even ``k`` and interleaved for odd ``k``, so
      consecutive layers shuffle channels between ensembles (like a channel shuffle).
    - ``random``: each layer's input and output labels are independent random permutations
      of a balanced labelling.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r} (choose from {', '.join(GROUPINGS)})")
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in range(len(sizes) - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        if grouping == "index":
            labels = (group_labels(n_in, groups), group_labels(n_out, groups))
        elif grouping == "mixer":
            layout = ("contiguous", "interleaved")
            labels = (
                group_labels(n_in, groups, layout[layer % 2]),
                group_labels(n_out, groups, layout[(layer + 1) % 2]),
            )
        else:
            in_labels = group_labels(n_in, groups)[torch.randperm(n_in, generator=generator)]
            out_labels = group_labels(n_out, groups)[torch.randperm(n_out, generator=generator)]
            labels = (in_labels, out_labels)
        out.append(labels)
    return out


def g2g_mask(
    in_labels: torch.Tensor,
    out_labels: torch.Tensor,
    p_intra: float,
    p_inter: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean mask of shape (n_out, n_in): per-weight Bernoulli draws by group relation."""
    same = out_labels[:, None] == in_labels[None, :]
    prob = torch.where(same, torch.tensor(float(p_intra)), torch.tensor(float(p_inter)))
    return torch.rand(prob.shape, generator=generator) < prob


def er_mask(
    n_out: int, n_in: int, density: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Erdős–Rényi mask with exactly ``round(density * n_out * n_in)`` kept weights."""
    total = n_out * n_in
    k = min(total, max(1, round(density * total)))
    mask = torch.zeros(total, dtype=torch.bool)
    mask[torch.randperm(total, generator=generator)[:k]] = True
    return mask.view(n_out, n_in)


class MaskedLinear(nn.Module):
    """``y = x @ (W ⊙ M)ᵀ + b`` with a fixed (or rewired) boolean connectivity mask.

    Masked-out weights are kept at exactly zero, so the stored weight is also the effective
    one and optimisers never move a pruned connection (its gradient is zero). With
    ``mask=None`` the layer is dense.

    Initialised like ``nn.Linear`` (Kaiming uniform), then each output row is scaled by
    ``sqrt(fan_in / active_fan_in)`` so sparse rows start with the variance of dense ones.

    Besides the current ``mask``, a sparse layer keeps the connectivity it was built with
    (``initial_mask``, the "original pattern" that ``pattern_fraction`` measures drift from)
    and, for G2G layers, the group label of every input and output unit (``in_groups``,
    ``out_groups``), which rewiring with ``scope: pattern`` needs.
    """

    maskable = True

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mask: torch.Tensor | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
        in_groups: torch.Tensor | None = None,
        out_groups: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        if mask is not None:
            if mask.shape != (out_features, in_features):
                raise ValueError(f"mask shape {tuple(mask.shape)} != {(out_features, in_features)}")
            self.register_buffer("mask", mask.to(torch.bool).clone())
            self.register_buffer("initial_mask", mask.to(torch.bool).clone())
        else:
            self.mask = None
            self.initial_mask = None
        if (in_groups is None) != (out_groups is None):
            raise ValueError("give both in_groups and out_groups, or neither")
        if in_groups is not None and (in_groups.shape != (in_features,) or out_groups.shape != (out_features,)):
            raise ValueError("in_groups/out_groups must hold one label per input/output unit")
        self.register_buffer("in_groups", None if in_groups is None else in_groups.to(torch.long).clone())
        self.register_buffer("out_groups", None if out_groups is None else out_groups.to(torch.long).clone())
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        bound = 1.0 / math.sqrt(self.in_features)  # = nn.Linear's kaiming_uniform_(a=sqrt(5))
        self.weight.copy_(torch.rand(self.weight.shape, generator=generator) * 2 * bound - bound)
        if self.bias is not None:
            self.bias.copy_(torch.rand(self.bias.shape, generator=generator) * 2 * bound - bound)
        if self.mask is not None:
            active = self.mask.sum(dim=1).clamp(min=1).to(self.weight.dtype)
            self.weight.mul_(torch.sqrt(self.in_features / active)[:, None])
            self.weight.mul_(self.mask)

    def effective_weight(self) -> torch.Tensor:
        """The weight the layer multiplies with (``W ⊙ M``), ``out_features × in_features``."""
        return self.weight if self.mask is None else self.weight * self.mask

    def connection_mask(self) -> torch.Tensor:
        """Current connectivity as a boolean ``out_features × in_features`` matrix."""
        if self.mask is None:
            return torch.ones(self.out_features, self.in_features, dtype=torch.bool, device=self.weight.device)
        return self.mask

    def pattern_counts(self) -> tuple[int, int]:
        """(active connections inside the connectivity the layer was built with, active connections).

        A dense layer is its own full pattern, so both counts are the number of weights.
        """
        if self.mask is None:
            return self.weight.numel(), self.weight.numel()
        return int((self.mask & self.initial_mask).sum()), int(self.mask.sum())

    @property
    def density(self) -> float:
        return 1.0 if self.mask is None else float(self.mask.float().mean())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, density={self.density:.3f}"
