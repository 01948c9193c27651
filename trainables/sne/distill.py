"""Distilling the teacher into the ensemble: feature regression, optional logit KL, student dropout.

One training step:

- every student regresses its slice of the teacher's standardised features (MSE on the
  time-averaged output);
- each sample drops each student with probability ``dropout`` (at least one is kept); the head
  sees the combined features with dropped slices at their training mean, so every subset of
  students works at inference;
- the head is fine-tuned with cross-entropy on the labels, on detached features: it adapts to the
  students without pulling their regression away from the teacher;
- optionally (``augment: shift``) each input is moved by a random offset of up to 2 pixels and
  the teacher labels the moved input: more distinct inputs for the same training set;
- optionally (``kl_weight > 0``) a KL term between the ensemble's logits and the teacher's,
  through the head, trains students and head together (Hinton et al.'s temperature-scaled KL).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.data import Splits, iterate_batches, shift_batch
from trainables.sne.config import DistillConfig
from trainables.sne.students import SpikingEnsemble
from trainables.sne.teacher import TeacherNet
from trainables.training import check_finite

__all__ = ["DistillConfig", "TeacherTargets", "student_dropout", "distillation_loss", "augmented", "distill_epoch", "teacher_targets"]


@dataclass
class TeacherTargets:
    """The teacher's outputs on the training split, precomputed when inputs are not augmented.

    Attributes:
        features: ``N x D`` features.
        logits: ``N x C`` logits.
    """

    features: Tensor
    logits: Tensor


@torch.no_grad()
def teacher_targets(teacher: TeacherNet, x: Tensor, batch_size: int = 1024) -> TeacherTargets:
    """Teacher features and logits of ``x`` (eval mode, batched)."""
    teacher.eval()
    feats, logits = [], []
    for start in range(0, len(x), batch_size):
        f = teacher.features(x[start : start + batch_size])
        feats.append(f)
        logits.append(teacher.head(f))
    return TeacherTargets(torch.cat(feats), torch.cat(logits))


def student_dropout(n: int, k: int, p: float, generator: torch.Generator, device: torch.device | str = "cpu") -> Tensor:
    """``N x K`` keep-mask: each student kept with probability ``1 - p``, at least one per row.

    A row that would drop every student keeps one chosen uniformly at random instead.
    """
    keep = torch.rand((n, k), generator=generator, device=generator.device) >= p
    empty = ~keep.any(dim=1)
    if empty.any():
        rescue = torch.randint(0, k, (int(empty.sum()),), generator=generator, device=generator.device)
        keep[torch.nonzero(empty).flatten(), rescue] = True
    return keep.to(device)


def distillation_loss(
    ensemble: SpikingEnsemble,
    x: Tensor,
    y: Tensor,
    teacher_features: Tensor,
    teacher_logits: Tensor,
    keep: Tensor,
    cfg: DistillConfig,
) -> tuple[Tensor, dict[str, float]]:
    """The training loss of one batch and its parts (``mse``, ``ce``, ``kl``)."""
    target = (teacher_features - ensemble.feature_mean) / ensemble.feature_std
    z = ensemble.standardized_features(x)
    mse = F.mse_loss(z, target)
    ce = F.cross_entropy(ensemble.head(ensemble.combine(z.detach(), keep)), y)
    loss = mse + ce
    kl_value = 0.0
    if cfg.kl_weight > 0:
        tau = cfg.kl_temperature
        logits = ensemble.head(ensemble.combine(z, keep))
        kl = F.kl_div(F.log_softmax(logits / tau, dim=1), F.softmax(teacher_logits / tau, dim=1), reduction="batchmean") * tau**2
        loss = loss + cfg.kl_weight * kl
        kl_value = kl.item()
    return loss, {"mse": mse.item(), "ce": ce.item(), "kl": kl_value}


def augmented(splits: Splits, cfg: DistillConfig) -> bool:
    """Whether training inputs change from epoch to epoch (``data.augment`` or ``sne.augment``):
    the teacher must then label each batch instead of using precomputed targets."""
    return splits.augment or cfg.augment != "none"


def distill_epoch(
    ensemble: SpikingEnsemble,
    teacher: TeacherNet,
    splits: Splits,
    targets: TeacherTargets | None,
    optimizer: torch.optim.Optimizer,
    lr_schedule,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
    cfg: DistillConfig,
) -> dict[str, float]:
    """One pass over the training split; returns the mean loss parts.

    Args:
        targets: Precomputed teacher outputs on ``splits.x_train``; None when inputs are
            augmented (``splits.augment`` or ``cfg.augment``), in which case the teacher runs on
            each augmented batch.

    Raises:
        DivergedError: on a non-finite loss.
    """
    if targets is not None and augmented(splits, cfg):
        raise ValueError("augmented distillation needs the teacher on each batch: pass targets=None")
    ensemble.train()
    teacher.eval()
    index = torch.arange(len(splits.y_train), device=splits.y_train.device)
    totals = {"loss": 0.0, "mse": 0.0, "ce": 0.0, "kl": 0.0}
    count = 0
    # Batches of (input, sample index): the index finds the labels and precomputed targets.
    for xb, idx in iterate_batches(splits.x_train, index, batch_size, shuffle=True, generator=generator, augment=splits.augment):
        yb = splits.y_train[idx]
        if cfg.augment == "shift":
            xb = shift_batch(xb, generator)
        if targets is None:
            with torch.no_grad():
                feats = teacher.features(xb)
                logits = teacher.head(feats)
        else:
            feats, logits = targets.features[idx], targets.logits[idx]
        keep = student_dropout(len(yb), ensemble.num_students, cfg.dropout, generator, xb.device)
        loss, parts = distillation_loss(ensemble, xb, yb, feats, logits, keep, cfg)
        value = loss.item()
        check_finite(value, epoch, " (SNE distillation)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        n = len(yb)
        totals["loss"] += value * n
        for key, part in parts.items():
            totals[key] += part * n
        count += n
    return {key: value / max(1, count) for key, value in totals.items()}
