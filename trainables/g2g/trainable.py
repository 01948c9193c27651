"""Ray Tune function trainable for G2GNet (and its dense / Erdős–Rényi baselines)."""

from __future__ import annotations

import math
import tempfile
import time
from typing import Any

import torch
from ray import tune

from trainables.config import resolve_config
from trainables.costs import energy_model, model_costs
from trainables.data import DATA_DEFAULTS, DataInfo, load_splits
from trainables.g2g.model import ModelConfig, build_model
from trainables.registry import TrainableEntry, register_trainable
from trainables.report import make_report
from trainables.training import (
    configure_threads,
    evaluate,
    load_state,
    make_lr_schedule,
    make_optimizer,
    save_state,
    select_device,
    train_epoch,
)

__all__ = ["G2G_DEFAULTS", "g2g_trainable", "ENTRY"]

G2G_DEFAULTS: dict[str, Any] = {
    "model": {k: v for k, v in ModelConfig().__dict__.items()},
    "optim": {
        "name": "adam",
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "momentum": 0.9,
        "schedule": "cosine",
        "batch_size": 128,
    },
    "data": dict(DATA_DEFAULTS),
    "budget": {"epochs": 10, "checkpoint_every": 1, "eval_test": True},
    "cost": {"energy_model": "fp32_45nm"},
    "runtime": {"device": "auto", "threads": 1, "cache_dir": None},
    "seed": 0,
}


def g2g_trainable(config: dict[str, Any]) -> None:
    """Train one G2GNet configuration, reporting the contract keys every epoch."""
    cfg = resolve_config(G2G_DEFAULTS, config)
    configure_threads(cfg["runtime"]["threads"])
    device = select_device(cfg["runtime"]["device"])
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    splits = load_splits(cfg["data"], device=device)
    model = build_model(cfg, splits.info).to(device)
    optim = cfg["optim"]
    epochs = int(cfg["budget"]["epochs"])
    steps_per_epoch = math.ceil(len(splits.y_train) / optim["batch_size"])
    optimizer = make_optimizer(model.parameters(), optim)
    lr_schedule = make_lr_schedule(optimizer, optim["schedule"], epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    start_epoch, train_time = 0, 0.0

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_state(directory, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, train_time = int(state["epoch"]), float(state["train_time_s"])

    emodel = energy_model(cfg["cost"]["energy_model"])
    every = max(1, int(cfg["budget"]["checkpoint_every"]))
    for epoch in range(start_epoch + 1, epochs + 1):
        started = time.perf_counter()
        train_epoch(model, splits, optimizer, lr_schedule, optim["batch_size"], generator, epoch)
        train_time += time.perf_counter() - started
        val_accuracy, val_loss = evaluate(model, splits.x_val, splits.y_val)
        costs = model_costs(model, splits.info.input_shape)
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "val_accuracy": val_accuracy,
            "val_loss": val_loss,
            "macs": costs.macs,
            "energy_uj": costs.energy_uj(emodel),
            "params": costs.params,
            "density": costs.density,
            "train_time_s": train_time,
            "budget_fraction": epoch / epochs,
        }
        if epoch == epochs and cfg["budget"]["eval_test"]:
            metrics["test_accuracy"] = evaluate(model, splits.x_test, splits.y_test)[0]
        report = make_report(metrics)
        if epoch % every == 0 or epoch == epochs:
            with tempfile.TemporaryDirectory() as directory:
                save_state(
                    directory,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "lr_schedule": lr_schedule.state_dict(),
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "epoch": epoch,
                        "train_time_s": train_time,
                    },
                )
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
        description="G2GNet: group-to-group sparse MLP (with dense and Erdős–Rényi baselines)",
    )
)
