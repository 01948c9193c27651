"""Ray Tune function trainable for G2GNet (and its dense / Erdős–Rényi baselines).

:class:`G2GTraining` is one training run, epoch by epoch, with its complete state (model with
masks, optimiser, lr schedule, data-order RNG, DST counters and statistics) for checkpoints;
:func:`g2g_trainable` is the thin Ray boundary that reports and checkpoints it.
"""

from __future__ import annotations

import copy
import math
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import torch
from ray import tune

from trainables.config import resolve_config
from trainables.costs import energy_model, model_costs
from trainables.data import DataInfo, Splits, load_splits
from trainables.g2g.model import G2GNet, ModelConfig, build_model
from trainables.g2g.rewiring import DST_DEFAULTS, DSTConfig, DynamicSparseTraining
from trainables.registry import TrainableEntry, register_trainable
from trainables.report import make_report
from trainables.training import (
    shared_defaults,
    configure_threads,
    evaluate,
    load_state,
    make_lr_schedule,
    make_optimizer,
    save_state,
    select_device,
    train_epoch,
)

__all__ = ["G2G_DEFAULTS", "G2G_REPORT_KEYS", "G2GTraining", "g2g_trainable", "ENTRY"]

G2G_DEFAULTS: dict[str, Any] = {
    "model": {k: v for k, v in ModelConfig().__dict__.items()},
    "dst": copy.deepcopy(DST_DEFAULTS),
    **shared_defaults(lr=1e-3, weight_decay=1e-4, batch_size=128, epochs=10),
}

#: Keys the G2G family reports every epoch on top of the base contract.
G2G_REPORT_KEYS: tuple[str, ...] = (
    "dst_updates",  # DST updates that moved connections so far (0 with DST off)
    "grown_total",  # connections grown by DST so far
    "hebbian_grown",  # of those, grown by the Hebbian rule
    # Active hidden connections still in the connectivity drawn at build time: 1.0 without
    # DST; an Erdős–Rényi net is measured against its own initial mask; dense nets are 1.0.
    "pattern_fraction",
)

# DST's random rules get a stream of their own, decorrelated from the data-order generator.
_DST_SEED_OFFSET = 0x5EED


class G2GTraining:
    """One G2GNet training run: build from a config, train epoch by epoch, checkpoint.

    Args:
        config: A trial config (nested and/or dotted keys over :data:`G2G_DEFAULTS`).
        splits: Already loaded data (tests, benchmarks); loaded from ``config["data"]`` when None.
    """

    def __init__(self, config: Mapping[str, Any], splits: Splits | None = None) -> None:
        cfg = resolve_config(G2G_DEFAULTS, config)
        self.cfg = cfg
        self.device = select_device(cfg["runtime"]["device"])
        seed = int(cfg["seed"])
        torch.manual_seed(seed)
        self.splits = splits if splits is not None else load_splits(cfg["data"], device=self.device)
        self.model: G2GNet = build_model(cfg, self.splits.info).to(self.device)
        optim = cfg["optim"]
        self.batch_size = int(optim["batch_size"])
        self.epochs = int(cfg["budget"]["epochs"])
        self.steps_per_epoch = math.ceil(len(self.splits.y_train) / self.batch_size)
        total_steps = self.epochs * self.steps_per_epoch
        self.optimizer = make_optimizer(self.model.parameters(), optim)
        self.lr_schedule = make_lr_schedule(self.optimizer, optim["schedule"], total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        dst_cfg = DSTConfig.from_mapping(cfg["dst"])
        self.dst: DynamicSparseTraining | None = None
        if dst_cfg.enabled:
            self.dst = DynamicSparseTraining(
                self.model.sparse_layers(), self.optimizer, dst_cfg, total_steps, seed + _DST_SEED_OFFSET
            )
        self.energy = energy_model(cfg["cost"]["energy_model"])
        self.epoch = 0
        self.train_time_s = 0.0

    def train_epoch(self) -> float:
        """Train one more epoch (rewiring on DST's schedule); returns the mean training loss."""
        started = time.perf_counter()
        loss = train_epoch(
            self.model,
            self.splits,
            self.optimizer,
            self.lr_schedule,
            self.batch_size,
            self.generator,
            self.epoch + 1,
            after_step=self.dst.after_step if self.dst is not None else None,
        )
        self.train_time_s += time.perf_counter() - started
        self.epoch += 1
        return loss

    def metrics(self) -> dict[str, Any]:
        """This epoch's report (contract keys and :data:`G2G_REPORT_KEYS`)."""
        val_accuracy, val_loss = evaluate(self.model, self.splits.x_val, self.splits.y_val)
        costs = model_costs(self.model, self.splits.info.input_shape)
        counters = self.dst.metrics() if self.dst is not None else {"dst_updates": 0, "grown_total": 0, "hebbian_grown": 0}
        values: dict[str, Any] = {
            "epoch": self.epoch,
            "val_accuracy": val_accuracy,
            "val_loss": val_loss,
            "macs": costs.macs,
            "energy_uj": costs.energy_uj(self.energy),
            "params": costs.params,
            "density": costs.density,
            "train_time_s": self.train_time_s,
            "budget_fraction": self.epoch / self.epochs,
            **counters,
            "pattern_fraction": self.model.pattern_fraction(),
        }
        if self.epoch == self.epochs and self.cfg["budget"]["eval_test"]:
            values["test_accuracy"] = evaluate(self.model, self.splits.x_test, self.splits.y_test)[0]
        return make_report(values, G2G_REPORT_KEYS)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (CPU); tensors only for ``weights_only``."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "train_time_s": self.train_time_s,
            "dst": self.dst.state_dict() if self.dst is not None else None,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a run of the same config."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.train_time_s = int(state["epoch"]), float(state["train_time_s"])
        if (state.get("dst") is None) != (self.dst is None):
            raise ValueError("checkpoint and config disagree on dst.enabled")
        if self.dst is not None:
            self.dst.load_state_dict(state["dst"])


def g2g_trainable(config: dict[str, Any]) -> None:
    """Train one G2GNet configuration, reporting the contract keys every epoch."""
    cfg = resolve_config(G2G_DEFAULTS, config)
    configure_threads(cfg["runtime"]["threads"])
    run = G2GTraining(cfg)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            run.load_state_dict(load_state(directory, map_location=run.device))
    every = max(1, int(cfg["budget"]["checkpoint_every"]))
    while run.epoch < run.epochs:
        run.train_epoch()
        report = run.metrics()
        if run.epoch % every == 0 or run.epoch == run.epochs:
            with tempfile.TemporaryDirectory() as directory:
                save_state(directory, run.state_dict())
                tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(report)


def _build(config: dict[str, Any], info: DataInfo) -> torch.nn.Module:
    return build_model(resolve_config(G2G_DEFAULTS, config), info)


ENTRY = register_trainable(
    TrainableEntry(
        name="g2g",
        trainable=g2g_trainable,
        defaults=G2G_DEFAULTS,
        build_model=_build,
        extra_report_keys=G2G_REPORT_KEYS,
        description="G2GNet: group-to-group sparse MLP with DST (and dense / Erdős–Rényi baselines)",
    )
)
