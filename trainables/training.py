"""The training loop pieces shared by trainable families: seeding, devices, epochs, checkpoints.

Short enough to read in one sitting; families compose these in their trainable function.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainables.config import OptimConfig
from trainables.files import write_atomic
from trainables.data import Splits, iterate_batches

__all__ = [
    "DivergedError",
    "select_device",
    "configure_threads",
    "make_optimizer",
    "make_lr_schedule",
    "train_epoch",
    "evaluate",
    "check_finite",
    "optimisation_state",
    "restore_optimisation_state",
    "save_state",
    "load_state",
    "CHECKPOINT_FILE",
]

CHECKPOINT_FILE = "state.pt"


class DivergedError(RuntimeError):
    """Training produced a non-finite loss; the trial ends as an error with this message."""


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``/``cuda``/``cuda:N`` as given."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device is {preference!r} but no CUDA device is available")
    return device


def configure_threads(threads: int) -> None:
    """Use exactly the CPUs a trial was given, so concurrent trials do not oversubscribe.

    Also quiets Ray's per-checkpoint INFO lines in the worker, which would drown the sweep's
    own progress output.
    """
    torch.set_num_threads(max(1, int(threads)))
    for name in ("ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)


def make_optimizer(params, optim: OptimConfig) -> torch.optim.Optimizer:
    """The optimiser an ``optim`` section names (SGD with Nesterov momentum when momentum > 0).

    Uses PyTorch's fused implementation (one kernel over all parameters) when every
    parameter is a float tensor on the CPU or a CUDA device: the same update to float
    rounding, about 4× faster than the default ``foreach`` one on the CPU (5.3 M parameters:
    2.0 ms per Adam step against 7.7 ms, 2-CPU Xeon), which matters once the network itself
    is sparse.
    """
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = bool(tensors) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in tensors)
    extra = {"fused": True} if fused else {}
    if optim.name == "adam":
        return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay, **extra)
    if optim.name == "adamw":
        return torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, **extra)
    return torch.optim.SGD(
        params, lr=optim.lr, momentum=optim.momentum, weight_decay=optim.weight_decay, nesterov=optim.momentum > 0, **extra
    )


def make_lr_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int):
    """``cosine`` anneals to zero over the whole budget (per step); ``constant`` keeps lr."""
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def check_finite(loss: float, epoch: int, context: str = "") -> None:
    if not math.isfinite(loss):
        raise DivergedError(
            f"training diverged at epoch {epoch}: loss is {loss}{context}; "
            "lower the learning rate or narrow its range in the spec"
        )


def train_epoch(
    model: nn.Module,
    splits: Splits,
    optimizer: torch.optim.Optimizer,
    lr_schedule,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
    after_step: Callable[[int], None] | None = None,
    before_step: Callable[[int], None] | None = None,
) -> float:
    """One pass over the training split; returns the mean loss.

    ``before_step(step)``/``after_step(step)`` run around each optimiser step (e.g. rewiring);
    a non-finite batch loss stops training at once with :class:`DivergedError`.
    """
    model.train()
    total, count = 0.0, 0
    for x, y in iterate_batches(
        splits.x_train, splits.y_train, batch_size, shuffle=True, generator=generator, augment=splits.augment
    ):
        loss = F.cross_entropy(model(x), y)
        value = loss.item()
        check_finite(value, epoch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_step is not None:
            before_step(lr_schedule.last_epoch)
        optimizer.step()
        lr_schedule.step()
        if after_step is not None:
            after_step(lr_schedule.last_epoch)
        total += value * len(y)
        count += len(y)
    return total / max(1, count)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``x, y``."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        logits = model(xb)
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += int((logits.argmax(1) == yb).sum())
        n += len(yb)
    return correct / max(1, n), loss / max(1, n)


def optimisation_state(run: Any, model: nn.Module) -> dict[str, Any]:
    """The state every training run keeps: weights, optimiser, lr schedule, RNGs, epoch, time.

    ``run`` has ``optimizer``, ``lr_schedule``, ``generator``, ``epoch`` and ``train_time_s``.
    """
    return {
        "model": model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "lr_schedule": run.lr_schedule.state_dict(),
        "generator": run.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "epoch": run.epoch,
        "train_time_s": run.train_time_s,
    }


def restore_optimisation_state(run: Any, model: nn.Module, state: Mapping[str, Any]) -> None:
    """Load what :func:`optimisation_state` saved back into ``run`` and ``model``."""
    model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.lr_schedule.load_state_dict(state["lr_schedule"])
    run.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    run.epoch, run.train_time_s = int(state["epoch"]), float(state["train_time_s"])


def save_state(directory: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write a checkpoint atomically (temp file, then rename) as ``state.pt``."""
    path = Path(directory) / CHECKPOINT_FILE
    write_atomic(path, lambda handle: torch.save(dict(state), handle))
    return path


def load_state(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_state` (tensors only: ``weights_only=True``)."""
    return torch.load(Path(directory) / CHECKPOINT_FILE, map_location=map_location, weights_only=True)
