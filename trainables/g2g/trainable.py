"""G2GNet training (and its dense / Erdős–Rényi baselines), one run epoch by epoch.

:class:`G2GTraining` follows :class:`trainables.loop.Training`: it builds from a typed
:class:`~trainables.g2g.config.G2GConfig`, trains epoch by epoch and holds its complete state
(model with masks, optimiser, lr schedule, data-order RNG, DST counters and statistics) for
checkpoints. The Ray side (resume, report, checkpoint) is the shared loop, and its
``deployable()`` is the shared :class:`~trainables.deploy.DeployableRun`'s.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import torch

from trainables.costs import energy_model, model_costs
from trainables.data import DataInfo, Splits, load_splits
from trainables.deploy import DeployableRun
from trainables.g2g.config import G2GConfig
from trainables.g2g.model import G2GNet, build_model
from trainables.g2g.rewiring import DynamicSparseTraining
from trainables.report import StaticCost
from trainables.training import (
    evaluate,
    make_lr_schedule,
    make_optimizer,
    optimisation_state,
    restore_optimisation_state,
    select_device,
    train_epoch,
)

__all__ = ["G2GTraining", "static_costs"]

# DST's random rules get a stream of their own, decorrelated from the data-order generator.
_DST_SEED_OFFSET = 0x5EED


class G2GTraining(DeployableRun):
    """One G2GNet training run: build from a config, train epoch by epoch, checkpoint.

    Args:
        config: A trial config: a :class:`G2GConfig`, or nested and/or dotted keys over its defaults.
        splits: Already loaded data (tests, benchmarks); loaded from ``config.data`` when None.
    """

    def __init__(self, config: G2GConfig | Mapping[str, Any], splits: Splits | None = None) -> None:
        from trainables.g2g.family import ENTRY

        cfg: G2GConfig = ENTRY.resolve(config)  # type: ignore[assignment]
        self.cfg = cfg
        self.device = select_device(cfg.runtime.device)
        seed = int(cfg.seed)
        torch.manual_seed(seed)
        self.splits = splits if splits is not None else load_splits(cfg.data, device=self.device)
        self.model: G2GNet = build_model(cfg, self.splits.info).to(self.device)
        self.batch_size = cfg.optim.batch_size
        self.epochs = cfg.budget.epochs
        self.steps_per_epoch = math.ceil(len(self.splits.y_train) / self.batch_size)
        total_steps = self.epochs * self.steps_per_epoch
        self.optimizer = make_optimizer(self.model.parameters(), cfg.optim)
        self.lr_schedule = make_lr_schedule(self.optimizer, cfg.optim.schedule, total_steps)
        self.generator = torch.Generator().manual_seed(seed)
        self.dst: DynamicSparseTraining | None = None
        if cfg.dst.enabled:
            self.dst = DynamicSparseTraining(
                self.model.sparse_layers(), self.optimizer, cfg.dst, total_steps, seed + _DST_SEED_OFFSET
            )
        self.energy = energy_model(cfg.cost.energy_model)
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

    def network(self) -> G2GNet:
        """The trained network that :meth:`deployable` (from :class:`DeployableRun`) wraps."""
        return self.model

    @classmethod
    def build_model(cls, config: G2GConfig, info: DataInfo) -> G2GNet:
        """The network of a config (masks drawn from its seed), for export and re-evaluation."""
        return build_model(config, info)

    def metrics(self) -> dict[str, Any]:
        """This epoch's report values (contract keys and the family's own)."""
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
        if self.epoch == self.epochs and self.cfg.budget.eval_test:
            values["test_accuracy"] = evaluate(self.model, self.splits.x_test, self.splits.y_test)[0]
        return values

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (CPU); tensors only for ``weights_only``."""
        return {**optimisation_state(self, self.model), "dst": self.dst.state_dict() if self.dst is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a run of the same config."""
        restore_optimisation_state(self, self.model, state)
        if (state.get("dst") is None) != (self.dst is None):
            raise ValueError("checkpoint and config disagree on dst.enabled")
        if self.dst is not None:
            self.dst.load_state_dict(state["dst"])


def static_costs(config: G2GConfig, info: DataInfo) -> dict[str, StaticCost]:
    """The costs a G2G config fixes before training: those of its untrained network.

    Counted by the same code as every report (:func:`~trainables.costs.model_costs` over the
    network :func:`build_model` draws from the config's seed), so without dynamic sparse training
    they are what the trial reports. With it, the count of connections is kept but edges regrown
    at zero weight are not counted until they move, so the reports are at most these values
    (``upper``; in practice within a fraction of a percent, so ``tight``). The global RNG is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        costs = model_costs(build_model(config, info), info.input_shape)
    relation = "upper" if config.dst.enabled else "exact"
    tight = config.dst.enabled
    return {
        "macs": StaticCost(float(costs.macs), relation, tight),
        "params": StaticCost(float(costs.params), relation, tight),
        "density": StaticCost(float(costs.density), relation, tight),
        "energy_uj": StaticCost(float(costs.energy_uj(energy_model(config.cost.energy_model))), relation, tight),
    }
