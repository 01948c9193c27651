"""G2GNet: a front end, ``depth`` sparse G2G layers of ``width`` with ReLU, a dense classifier.

The baselines share the class, so one grid over ``model.kind`` compares them:

- ``g2g``: group-to-group connectivity (per-edge Bernoulli masks, or whole blocks with
  ``granularity: block``).
- ``dense``: the same width, no mask.
- ``dense_matched``: a dense net whose width is chosen so its parameters match the G2G net's
  expected active parameters (the same as ``kind: dense`` with ``match_params: true``; a kind
  of its own so a grid over kinds needs no second parameter that only some kinds use).
- ``er``: Erdős–Rényi masks at the G2G net's density (at block granularity: each output group
  reads ``fan_in`` input groups drawn uniformly, without the G2G preference for its own group).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainables.data import DataInfo
from trainables.g2g.block import BlockSparseLinear, block_pattern
from trainables.g2g.config import FRONTENDS, GRANULARITIES, MODEL_KINDS, G2GConfig, ModelConfig
from trainables.g2g.layers import MaskedLinear, er_mask, g2g_mask, layer_groupings

__all__ = [
    "MODEL_KINDS",
    "FRONTENDS",
    "GRANULARITIES",
    "ModelConfig",
    "PatchEncoder",
    "G2GNet",
    "build_model",
    "matched_dense_width",
]

class PatchEncoder(nn.Module):
    """One conv with kernel = stride = patch size on a 4×4 grid of patches, then flatten."""

    GRID = 4

    def __init__(self, input_shape: tuple[int, int, int], channels: int) -> None:
        super().__init__()
        c, h, w = input_shape
        if h % self.GRID or w % self.GRID:
            raise ValueError(
                f"model.frontend 'patch' needs image sides divisible by {self.GRID}, got {h}x{w}"
            )
        self.conv = nn.Conv2d(c, channels, kernel_size=(h // self.GRID, w // self.GRID),
                              stride=(h // self.GRID, w // self.GRID))
        self.out_features = channels * self.GRID * self.GRID

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1)


class G2GNet(nn.Module):
    """Front end → ``depth`` × (sparse linear + ReLU) → dense classifier (never masked).

    ``hidden`` holds :class:`MaskedLinear` layers (edge granularity, and dense kinds with no
    mask) or :class:`BlockSparseLinear` layers (block granularity). Masks and block indices
    are buffers, drawn from ``generator``, so they travel with the state dict.
    """

    def __init__(self, cfg: ModelConfig, info: DataInfo, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        c, h, w = info.input_shape
        if cfg.frontend == "patch":
            self.frontend: nn.Module = PatchEncoder(info.input_shape, cfg.patch_channels)
            n_in = self.frontend.out_features
        else:
            self.frontend = nn.Flatten(1)
            n_in = c * h * w
        width = cfg.width
        if cfg.kind == "dense_matched" or (cfg.kind == "dense" and cfg.match_params):
            width = matched_dense_width(cfg, n_in, info.num_classes)
        self.width = width
        sizes = [n_in] + [width] * cfg.depth
        if cfg.kind == "g2g" and cfg.groups > n_in:
            raise ValueError(f"model.groups ({cfg.groups}) cannot exceed the input features ({n_in})")
        block = cfg.granularity == "block" and not cfg.is_dense
        if block and (n_in % cfg.groups or width % cfg.groups):
            raise ValueError(
                f"model.granularity 'block' needs model.groups ({cfg.groups}) to divide the input "
                f"features ({n_in}) and model.width ({width})"
            )
        labels = layer_groupings(cfg.grouping, sizes, cfg.groups, generator) if cfg.kind == "g2g" else None
        layers: list[nn.Module] = []
        for i in range(cfg.depth):
            if block:
                # ER blocks have no G2G grouping: contiguous groups are just the block units.
                in_l, out_l = labels[i] if labels is not None else layer_groupings("index", sizes[i : i + 2], cfg.groups)[0]
                own = cfg.kind == "g2g"
                pattern = block_pattern(cfg.groups, cfg.fan_in_groups, own_group=own, generator=generator)
                layers.append(BlockSparseLinear(in_l, out_l, pattern, generator=generator, own_group=own))
            elif cfg.kind == "g2g":
                mask = g2g_mask(*labels[i], cfg.p_intra, cfg.p_inter, generator)
                layers.append(MaskedLinear(sizes[i], sizes[i + 1], mask, generator=generator, in_groups=labels[i][0], out_groups=labels[i][1]))
            elif cfg.kind == "er":
                mask = er_mask(sizes[i + 1], sizes[i], cfg.density, generator)
                layers.append(MaskedLinear(sizes[i], sizes[i + 1], mask, generator=generator))
            else:
                layers.append(MaskedLinear(sizes[i], sizes[i + 1], generator=generator))
        self.hidden = nn.ModuleList(layers)
        # Group labels are kept so rewiring can tell edges inside the original pattern.
        self.group_labels = labels
        self.classifier = nn.Linear(width, info.num_classes)

    def sparse_layers(self) -> list[nn.Module]:
        """The hidden layers with a sparse connectivity (the ones rewiring may change)."""
        return [m for m in self.hidden if isinstance(m, BlockSparseLinear) or getattr(m, "mask", None) is not None]

    def pattern_fraction(self) -> float:
        """Fraction of active hidden connections that are in the connectivity drawn at build time.

        1.0 until rewiring moves connections; dense nets are their own full pattern (1.0).
        """
        counts = [layer.pattern_counts() for layer in self.hidden]
        active = sum(total for _, total in counts)
        return sum(kept for kept, _ in counts) / active if active else 1.0

    def group_major(self) -> bool:
        """Whether :meth:`forward` runs the hidden layers as one group-major block chain.

        True in training for block-granular nets whose hidden layers carry no forward hooks
        (hooks see the usual batch-major tensors: cost counting, and DST on the steps it
        captures, get the layer-by-layer path). Evaluation and export always take that path.
        """
        return (
            self.training
            and len(self.hidden) > 0
            and all(
                isinstance(m, BlockSparseLinear) and not m._forward_hooks and not m._forward_pre_hooks
                for m in self.hidden
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frontend(x)
        if self.group_major():
            return self._forward_group_major(x)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.classifier(x)

    def _forward_group_major(self, x: torch.Tensor) -> torch.Tensor:
        # The first layer gathers from the batch-major input; the chain then stays features ×
        # batch; the last layer's output-group order is folded into the classifier's columns
        # instead of being undone.
        h, position = x, None
        for i, layer in enumerate(self.hidden):
            h = torch.relu(layer.forward_group_major(h, position, batch_major=i == 0))
            position = None if layer.out_contiguous else layer.out_inverse
        weight = self.classifier.weight
        if position is not None:
            weight = weight.index_select(1, self.hidden[-1].out_index.reshape(-1))
        return F.linear(h.t(), weight, self.classifier.bias)


def _sparse_params(cfg: ModelConfig, n_in: int, n_classes: int) -> float:
    """Expected active parameters of the G2G/ER net (weights at density + biases + head)."""
    d = cfg.sparse_density
    w = cfg.width
    hidden = d * (n_in * w + (cfg.depth - 1) * w * w) + cfg.depth * w
    return hidden + w * n_classes + n_classes


def matched_dense_width(cfg: ModelConfig, n_in: int, n_classes: int) -> int:
    """Width of a dense net of the same depth whose parameters best match the sparse net's."""
    target = _sparse_params(cfg, n_in, n_classes)

    def dense_params(w: int) -> float:
        return n_in * w + (cfg.depth - 1) * w * w + cfg.depth * w + w * n_classes + n_classes

    # dense_params is increasing in w: solve the quadratic, then pick the closer integer.
    a = cfg.depth - 1
    b = n_in + cfg.depth + n_classes
    c = n_classes - target
    w = (-c / b) if a == 0 else (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    lo = max(1, math.floor(w))
    return min((lo, lo + 1), key=lambda k: abs(dense_params(k) - target))


def build_model(config: G2GConfig, info: DataInfo) -> G2GNet:
    """Build the network of a trial config (masks drawn from ``config.seed``)."""
    generator = torch.Generator().manual_seed(int(config.seed))
    return G2GNet(config.model, info, generator)
