"""G2GNet: group-to-group sparse MLPs, their baselines, and dynamic sparse training.

Modules: ``config`` (the typed ``model``/``dst`` sections, no torch), ``layers`` and ``block``
(masked and block-sparse linear layers), ``hebbian`` (co-activation scores), ``rewiring``
(dynamic sparse training), ``model`` (the network), ``trainable`` (one training run) and
``family`` (the registry entry).

Names are imported lazily on first use, so ``import trainables.g2g.config`` (what validating a
spec needs) loads neither torch nor Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES: dict[str, str] = {
    "GROUPINGS": "config",
    "GRANULARITIES": "config",
    "MODEL_KINDS": "config",
    "ModelConfig": "config",
    "DSTConfig": "config",
    "G2GConfig": "config",
    "expected_density": "config",
    "MaskedLinear": "layers",
    "er_mask": "layers",
    "g2g_mask": "layers",
    "layer_groupings": "layers",
    "BlockSparseLinear": "block",
    "block_pattern": "block",
    "HebbianMoments": "hebbian",
    "hebbian_scores": "hebbian",
    "G2GNet": "model",
    "build_model": "model",
    "matched_dense_width": "model",
    "DynamicSparseTraining": "rewiring",
    "rewire_blocks": "rewiring",
    "rewire_edges": "rewiring",
    "rewire_fraction": "rewiring",
    "G2GTraining": "trainable",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'trainables.g2g' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"trainables.g2g.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
