"""The ``g2g`` registry entry: config model, report keys and training class of G2GNet."""

from __future__ import annotations

from trainables.g2g.config import G2GConfig
from trainables.registry import TrainableEntry, register_trainable
from trainables.report import Metric

__all__ = ["ENTRY", "G2G_METRICS", "G2G_REPORT_KEYS"]

#: Keys the G2G family reports every epoch on top of the base contract.
G2G_METRICS: tuple[Metric, ...] = (
    Metric("dst_updates", None, "DST updates", kind="progress"),  # updates that moved connections so far (0 with DST off)
    Metric("grown_total", None, "connections grown", kind="info"),  # grown by DST so far
    Metric("hebbian_grown", None, "connections grown by the Hebbian rule", kind="info"),
    # Active hidden connections still in the connectivity drawn at build time: 1.0 without
    # DST; an Erdős–Rényi net is measured against its own initial mask; dense nets are 1.0.
    Metric("pattern_fraction", None, "share of connections in the initial pattern", kind="info"),
)
G2G_REPORT_KEYS: tuple[str, ...] = tuple(m.name for m in G2G_METRICS)

ENTRY = register_trainable(
    TrainableEntry(
        name="g2g",
        config=G2GConfig,
        training="trainables.g2g.trainable:G2GTraining",
        exporter="trainables.g2g.export",
        static_costs="trainables.g2g.trainable:static_costs",
        metrics=G2G_METRICS,
        description="G2GNet: group-to-group sparse MLP with DST (and dense / Erdős–Rényi baselines)",
        example={
            "data": {"name": "digits", "val_fraction": 0.2, "train_subset": 300},
            "model": {"width": 32, "depth": 2, "groups": 4, "p_inter": 0.2},
            "dst": {"enabled": True, "interval": 2, "fraction": 0.2, "grow": "hebbian"},
            "budget": {"epochs": 3},
            "optim": {"batch_size": 64},
        },
    )
)
