"""The G2G trial config: ``model`` and ``dst`` sections plus the shared ones (no torch needed).

Every field is a searchable parameter by its dotted name (``model.width``, ``dst.grow``,
``dst.hebbian.window``); the defaults here are the only defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trainables.config import ConfigModel, OptimConfig, TrialConfig, require

__all__ = [
    "MODEL_KINDS",
    "FRONTENDS",
    "GRANULARITIES",
    "GROUPINGS",
    "PRUNE_RULES",
    "GROW_RULES",
    "SCHEDULES",
    "SCOPES",
    "HEBBIAN_WINDOWS",
    "ModelConfig",
    "HebbianConfig",
    "DSTConfig",
    "G2GConfig",
    "expected_density",
    "block_fan_in_for_density",
]

#: ``g2g``: group-to-group masks; ``dense``: the same width, no mask; ``dense_matched``: dense
#: with the width matching the G2G net's active parameters; ``er``: Erdős–Rényi masks at the
#: G2G net's density.
MODEL_KINDS: tuple[str, ...] = ("g2g", "dense", "dense_matched", "er")
FRONTENDS: tuple[str, ...] = ("flatten", "patch")
#: ``edge``: per-weight masks (masked dense compute); ``block``: whole group-to-group blocks
#: with a fixed number of input groups per output group (gather + batched matmul).
GRANULARITIES: tuple[str, ...] = ("edge", "block")
#: How units are assigned to groups: contiguous ``index`` ranges, a ``random`` assignment, or
#: ``mixer`` (alternating contiguous and strided, so information mixes across groups).
GROUPINGS: tuple[str, ...] = ("index", "random", "mixer")
PRUNE_RULES: tuple[str, ...] = ("magnitude", "random", "hebbian")
GROW_RULES: tuple[str, ...] = ("hebbian", "random", "gradient")
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
SCOPES: tuple[str, ...] = ("anywhere", "pattern")
#: ``batch``: co-activations of the current batch; ``ema``: an exponential moving average.
HEBBIAN_WINDOWS: tuple[str, ...] = ("batch", "ema")


def expected_density(groups: int, p_intra: float, p_inter: float) -> float:
    """Expected fraction of kept weights of a G2G mask with equal-sized groups."""
    return p_intra / groups + (1.0 - 1.0 / groups) * p_inter


def block_fan_in_for_density(groups: int, density: float) -> int:
    """Input groups per output group that best match an edge-granularity ``density`` (≥ 1)."""
    return min(groups, max(1, round(density * groups)))


class ModelConfig(ConfigModel):
    """The ``model`` section of a G2G trial config.

    Attributes:
        kind: One of :data:`MODEL_KINDS`.
        frontend: ``flatten`` the image, or a ``patch`` conv on a 4×4 grid of patches.
        width: Units per hidden layer.
        depth: Hidden layers.
        groups: Groups (ensembles) per layer.
        grouping: One of :data:`GROUPINGS`.
        p_intra: Connection probability inside a group.
        p_inter: Connection probability between groups.
        granularity: ``edge`` or ``block``.
        block_fan_in: Input groups feeding each output group at block granularity; 0 derives it
            from ``p_intra``/``p_inter`` as ``round(density × groups)``, so edge and block nets
            of the same settings have (about) the same density.
        patch_channels: Channels of the patch front end.
        match_params: ``kind: dense`` only: pick the width matching the G2G net's active params.
    """

    kind: Literal[MODEL_KINDS] = "g2g"  # type: ignore[valid-type]
    frontend: Literal[FRONTENDS] = "flatten"  # type: ignore[valid-type]
    width: int = Field(default=256, ge=1)
    depth: int = Field(default=3, ge=1)
    groups: int = Field(default=4, ge=1)
    grouping: Literal[GROUPINGS] = "index"  # type: ignore[valid-type]
    p_intra: float = Field(default=1.0, ge=0, le=1)
    p_inter: float = Field(default=0.1, ge=0, le=1)
    granularity: Literal[GRANULARITIES] = "edge"  # type: ignore[valid-type]
    block_fan_in: int = Field(default=0, ge=0)
    patch_channels: int = Field(default=32, ge=1)
    match_params: bool = False

    @model_validator(mode="after")
    def _groups_fit(self) -> ModelConfig:
        require(
            self.groups <= self.width,
            ("model.groups", "model.width"),
            f"model.groups ({self.groups}) cannot exceed model.width ({self.width})",
        )
        require(
            self.block_fan_in <= self.groups,
            ("model.block_fan_in", "model.groups"),
            f"model.block_fan_in must be in [0, model.groups={self.groups}] (0: derive), got {self.block_fan_in}",
        )
        return self

    @property
    def is_dense(self) -> bool:
        return self.kind in ("dense", "dense_matched")

    @property
    def fan_in_groups(self) -> int:
        """Input groups per output group at block granularity."""
        if self.block_fan_in:
            return self.block_fan_in
        return block_fan_in_for_density(self.groups, expected_density(self.groups, self.p_intra, self.p_inter))

    @property
    def sparse_density(self) -> float:
        """Density of the G2G (and ER) hidden layers these settings give, whatever the kind."""
        if self.granularity == "block":
            return self.fan_in_groups / self.groups
        return expected_density(self.groups, self.p_intra, self.p_inter)

    @property
    def density(self) -> float:
        """Expected density of this kind's hidden layers (1.0 for dense)."""
        return 1.0 if self.is_dense else self.sparse_density


class HebbianConfig(ConfigModel):
    """``dst.hebbian``: how co-activation scores are accumulated.

    Attributes:
        window: ``batch`` (this batch's activations) or ``ema`` (moving averages).
        ema_decay: Decay of the moving averages (``ema`` only).
        centered: Subtract the means first (a covariance rather than raw co-activation).
    """

    window: Literal[HEBBIAN_WINDOWS] = "batch"  # type: ignore[valid-type]
    ema_decay: float = Field(default=0.9, ge=0, lt=1)
    centered: bool = False


class DSTConfig(ConfigModel):
    """The ``dst`` section: dynamic sparse training of the sparse hidden layers.

    Attributes:
        enabled: Rewire at all.
        interval: Optimiser steps between updates.
        fraction: Share of active connections moved per update (start value for cosine).
        prune: One of :data:`PRUNE_RULES`.
        grow: One of :data:`GROW_RULES`.
        schedule: ``constant`` or ``cosine`` decay of ``fraction``.
        stop: No update after ``stop × total steps`` (RigL's recipe: cosine, 0.75).
        scope: ``anywhere`` or ``pattern`` (every move keeps its G2G relation).
        hebbian: The Hebbian score settings.
    """

    enabled: bool = False
    interval: int = Field(default=1000, ge=1)
    fraction: float = Field(default=0.1, ge=0, le=1)
    prune: Literal[PRUNE_RULES] = "magnitude"  # type: ignore[valid-type]
    grow: Literal[GROW_RULES] = "hebbian"  # type: ignore[valid-type]
    schedule: Literal[SCHEDULES] = "constant"  # type: ignore[valid-type]
    stop: float = Field(default=1.0, gt=0, le=1)
    scope: Literal[SCOPES] = "anywhere"  # type: ignore[valid-type]
    hebbian: HebbianConfig = HebbianConfig()

    @property
    def uses_hebbian(self) -> bool:
        return "hebbian" in (self.prune, self.grow)


class G2GConfig(TrialConfig):
    """A whole G2G trial config."""

    model: ModelConfig = ModelConfig()
    dst: DSTConfig = DSTConfig()
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=1e-4, batch_size=128)
