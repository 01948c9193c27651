"""G2GNet: a front end, ``depth`` sparse G2G layers of ``width`` with ReLU, a dense classifier."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from trainables.data import DataInfo
from trainables.g2g.layers import (
    GROUPINGS,
    MaskedLinear,
    er_mask,
    expected_density,
    g2g_mask,
    layer_groupings,
)

__all__ = ["MODEL_KINDS", "FRONTENDS", "ModelConfig", "PatchEncoder", "G2GNet", "build_model", "matched_dense_width"]

#: ``g2g``: group-to-group masks; ``dense``: the same width, no mask; ``er``: Erdős–Rényi masks
#: at the G2G net's density.
MODEL_KINDS: tuple[str, ...] = ("g2g", "dense", "er")
FRONTENDS: tuple[str, ...] = ("flatten", "patch")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "g2g"
    frontend: str = "flatten"
    width: int = 256
    depth: int = 3
    groups: int = 4
    grouping: str = "index"
    p_intra: float = 1.0
    p_inter: float = 0.1
    granularity: str = "edge"
    patch_channels: int = 32
    match_params: bool = False  # dense kind only: pick the width matching the G2G net's active params

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ModelConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown model keys: {sorted(unknown)}")
        cfg = cls(**values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"model.kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        if self.frontend not in FRONTENDS:
            raise ValueError(f"model.frontend must be one of {FRONTENDS}, got {self.frontend!r}")
        if self.grouping not in GROUPINGS:
            raise ValueError(f"model.grouping must be one of {GROUPINGS}, got {self.grouping!r}")
        if self.width < 1 or self.depth < 1 or self.groups < 1:
            raise ValueError("model.width, model.depth and model.groups must be >= 1")
        if self.groups > self.width:
            raise ValueError(f"model.groups ({self.groups}) cannot exceed model.width ({self.width})")
        for name in ("p_intra", "p_inter"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"model.{name} must be in [0, 1], got {p}")

    @property
    def density(self) -> float:
        """Expected density of the sparse hidden layers (1.0 for dense)."""
        if self.kind == "dense":
            return 1.0
        return expected_density(self.groups, self.p_intra, self.p_inter)


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
    """Front end → ``depth`` × (masked linear + ReLU) → dense classifier (never masked)."""

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
        if cfg.kind == "dense" and cfg.match_params:
            width = matched_dense_width(cfg, n_in, info.num_classes)
        self.width = width
        sizes = [n_in] + [width] * cfg.depth
        if cfg.kind == "g2g" and cfg.groups > n_in:
            raise ValueError(f"model.groups ({cfg.groups}) cannot exceed the input features ({n_in})")
        labels = layer_groupings(cfg.grouping, sizes, cfg.groups, generator) if cfg.kind == "g2g" else None
        layers = []
        for i in range(cfg.depth):
            if cfg.kind == "g2g":
                mask = g2g_mask(*labels[i], cfg.p_intra, cfg.p_inter, generator)
            elif cfg.kind == "er":
                mask = er_mask(sizes[i + 1], sizes[i], cfg.density, generator)
            else:
                mask = None
            layers.append(MaskedLinear(sizes[i], sizes[i + 1], mask=mask, generator=generator))
        self.hidden = nn.ModuleList(layers)
        # Group labels are kept so rewiring can tell edges inside the original pattern.
        self.group_labels = labels
        self.classifier = nn.Linear(width, info.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.frontend(x)
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.classifier(x)


def _sparse_params(cfg: ModelConfig, n_in: int, n_classes: int) -> float:
    """Expected active parameters of the G2G/ER net (weights at density + biases + head)."""
    d = expected_density(cfg.groups, cfg.p_intra, cfg.p_inter)
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


def build_model(config: Mapping[str, Any], info: DataInfo) -> G2GNet:
    """Build the network of a resolved trial config (masks drawn from ``config['seed']``)."""
    cfg = ModelConfig.from_mapping(config["model"])
    generator = torch.Generator().manual_seed(int(config["seed"]))
    return G2GNet(cfg, info, generator)
