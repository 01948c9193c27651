"""Hebbian co-activation scores C_H ("neurons that fire together wire together").

For a layer with input activations ``A_pre`` (samples × n_in) and output activations after the
nonlinearity ``A_post`` (samples × n_out), ``C_H[j, i] = cos(A_post[:, j], A_pre[:, i])``: both
are column-normalised and ``C_H = A_postᵀ A_pre``. The mean-centred variant
is the Pearson correlation. A unit that never fires (a zero column) scores 0 with every other
unit rather than NaN, so it is neither favoured nor avoided by rewiring.

Two windows: the latest batch (:func:`hebbian_scores`, the reference) or an exponential moving
average over batches (:class:`HebbianMoments`). The EMA keeps the sufficient statistics
(means, mean squares and the mean cross product) rather than averaging per-batch cosines, so
its scores are the cosine over an exponentially weighted window of samples, and with a decay
of 0 they equal the batch scores exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from trainables.g2g.config import HEBBIAN_WINDOWS

__all__ = ["HEBBIAN_WINDOWS", "hebbian_scores", "HebbianMoments"]

# Norms below this are a silent unit; dividing by the clamped norm gives a score of 0.
_EPS = 1e-12


def hebbian_scores(pre: Tensor, post: Tensor, centered: bool = False) -> Tensor:
    """Cosine similarity of every output column with every input column.

    Args:
        pre: Input activations, ``samples × n_in``.
        post: Output activations after the nonlinearity, ``samples × n_out``.
        centered: Subtract each column's mean first (Pearson correlation).

    Returns:
        ``C_H`` of shape ``n_out × n_in`` with entries in ``[-1, 1]``.
    """
    if pre.dim() != 2 or post.dim() != 2 or pre.shape[0] != post.shape[0]:
        raise ValueError(f"expected samples × features for both, got {tuple(pre.shape)} and {tuple(post.shape)}")
    pre, post = pre.float(), post.float()
    if centered:
        pre = pre - pre.mean(dim=0, keepdim=True)
        post = post - post.mean(dim=0, keepdim=True)
    pre = pre / pre.norm(dim=0, keepdim=True).clamp_min(_EPS)
    post = post / post.norm(dim=0, keepdim=True).clamp_min(_EPS)
    return post.t() @ pre


class HebbianMoments:
    """Exponential moving averages of the statistics C_H needs, for the ``ema`` window.

    Keeps per-sample means of ``pre``, ``post``, their squares and the cross product
    ``postᵀ pre / samples``; each batch moves them by ``1 - decay``. The first batch sets them
    (no start-up bias toward zero). Memory: one ``n_out × n_in`` matrix per layer, the size
    of its weight.

    Args:
        n_in: Input units of the layer.
        n_out: Output units of the layer.
        decay: Weight of the past, in ``[0, 1)``; 0 keeps only the latest batch.
        device: Where the averages live (the layer's device).
    """

    def __init__(self, n_in: int, n_out: int, decay: float, device: torch.device | str | None = None) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"dst.hebbian.ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.batches = 0
        self.mean_pre = torch.zeros(n_in, device=device)
        self.mean_post = torch.zeros(n_out, device=device)
        self.sq_pre = torch.zeros(n_in, device=device)
        self.sq_post = torch.zeros(n_out, device=device)
        self.cross = torch.zeros(n_out, n_in, device=device)

    @torch.no_grad()
    def update(self, pre: Tensor, post: Tensor) -> None:
        """Fold one batch (``samples × n_in``, ``samples × n_out``) into the averages."""
        pre, post = pre.float(), post.float()
        n = pre.shape[0]
        batch = (pre.mean(0), post.mean(0), pre.pow(2).mean(0), post.pow(2).mean(0), post.t() @ pre / n)
        stored = (self.mean_pre, self.mean_post, self.sq_pre, self.sq_post, self.cross)
        weight = 1.0 if self.batches == 0 else 1.0 - self.decay
        for running, new in zip(stored, batch):
            running.lerp_(new, weight)
        self.batches += 1

    def scores(self, centered: bool = False) -> Tensor:
        """C_H over the averaged window (``n_out × n_in``); zeros before the first batch."""
        cross, sq_pre, sq_post = self.cross, self.sq_pre, self.sq_post
        if centered:
            cross = cross - torch.outer(self.mean_post, self.mean_pre)
            sq_pre = sq_pre - self.mean_pre.pow(2)
            sq_post = sq_post - self.mean_post.pow(2)
        # Mean squares are per-sample norms² / samples; the 1/samples cancels in the cosine.
        norm_pre = sq_pre.clamp_min(0).sqrt().clamp_min(_EPS)
        norm_post = sq_post.clamp_min(0).sqrt().clamp_min(_EPS)
        return cross / norm_post[:, None] / norm_pre[None, :]

    def state_dict(self) -> dict[str, object]:
        """Tensors and counters for a checkpoint (loadable with ``weights_only=True``)."""
        return {
            "decay": self.decay,
            "batches": self.batches,
            "mean_pre": self.mean_pre.clone(),
            "mean_post": self.mean_post.clone(),
            "sq_pre": self.sq_pre.clone(),
            "sq_post": self.sq_post.clone(),
            "cross": self.cross.clone(),
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.decay = float(state["decay"])  # type: ignore[arg-type]
        self.batches = int(state["batches"])  # type: ignore[arg-type]
        for name in ("mean_pre", "mean_post", "sq_pre", "sq_post", "cross"):
            getattr(self, name).copy_(state[name])  # type: ignore[arg-type]
