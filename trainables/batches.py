"""Mini-batches of in-memory tensors, and the two on-the-fly augmentations applied to them.

:func:`iterate_batches` visits every sample once per epoch (in order or shuffled by a given
generator); :func:`augment_batch` (random crop and horizontal flip, for natural images) and
:func:`shift_batch` (random shift, no flip) transform a whole batch with one gather.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["augment_batch", "iterate_batches", "shift_batch"]


def iterate_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    augment: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` mini-batches covering every sample once; the last partial batch is kept.

    Args:
        x: Inputs, first dimension is the sample.
        y: Labels, same length as ``x``.
        batch_size: Samples per batch (the last batch may be smaller).
        shuffle: Visit samples in a random order drawn from ``generator``.
        generator: Source of randomness for the order and the augmentation; the global torch
            generator when None. Pass a seeded one for reproducible epochs.
        augment: Apply :func:`augment_batch` to each input batch.

    Yields:
        Pairs of input and label batches on the device of ``x``.

    Raises:
        ValueError: if ``batch_size < 1`` or ``x`` and ``y`` differ in length.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} samples but y has {len(y)}")
    gen = generator if generator is not None else torch.default_generator
    order: Tensor | None = None
    if shuffle:
        order = torch.randperm(n, generator=gen, device=gen.device).to(x.device)
    for start in range(0, n, batch_size):
        if order is None:
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            xb, yb = x[idx], y[idx.to(y.device)]
        if augment:
            xb = augment_batch(xb, gen)
        yield xb, yb


def shift_batch(x: Tensor, generator: torch.Generator, *, shift: int = 2) -> Tensor:
    """Move each sample by its own random offset of up to ``shift`` pixels per axis (no flip).

    The image is zero-padded by ``shift`` on each side and cropped back to ``H x W`` at a random
    offset, so content moves by ``-shift .. shift`` pixels and what leaves the frame is replaced
    by zeros (the channel mean on normalised inputs). Samples with ``H = 1`` (vectors and 1-D
    signals) move along ``W`` only. Unlike :func:`augment_batch` nothing is mirrored, so it
    suits digits and other inputs whose handedness matters.

    Args:
        x: Batch ``N x C x H x W``.
        generator: Source of the offsets; the same generator state gives the same output.
        shift: Largest offset in pixels (>= 0).

    Returns:
        A new tensor of the same shape, dtype and device as ``x``.

    Raises:
        ValueError: if ``x`` is not 4-dimensional or ``shift`` is negative.
    """
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    pad_h = 0 if x.dim() == 4 and x.shape[2] == 1 else shift
    return _random_crop(x, generator, pad_h=pad_h, pad_w=shift, flip=False, caller="shift_batch")


def augment_batch(x: Tensor, generator: torch.Generator, *, padding: int = 4) -> Tensor:
    """Standard CIFAR augmentation: random crop of the zero-padded image, random horizontal flip.

    Each sample gets its own crop offset in ``[0, 2 * padding]`` on both axes and a flip with
    probability 1/2. The work is one gather over the padded batch, with no per-sample Python
    loop. Padding is zero in the tensor's own units: on normalised inputs that is the
    channel mean, a neutral value for the network.

    Args:
        x: Batch ``N x C x H x W``.
        generator: Source of the random offsets and flips; the same generator state gives the
            same output.
        padding: Pixels of zero padding on each side before cropping back to ``H x W``.

    Returns:
        A new tensor of the same shape, dtype and device as ``x``.

    Raises:
        ValueError: if ``x`` is not 4-dimensional.
    """
    return _random_crop(x, generator, pad_h=padding, pad_w=padding, flip=True, caller="augment_batch")


def _random_crop(x: Tensor, generator: torch.Generator, *, pad_h: int, pad_w: int, flip: bool, caller: str) -> Tensor:
    """Zero-pad ``x`` by ``pad_h`` rows and ``pad_w`` columns on each side, crop back to ``H x W``
    at a random offset per sample and, with ``flip``, mirror each sample with probability 1/2.
    The work is one gather over the padded batch, with no per-sample Python loop."""
    if x.dim() != 4:
        raise ValueError(f"{caller} expects N x C x H x W, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
    # Drawn on the generator's device (a CPU generator cannot fill a CUDA tensor), then moved.
    dy = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator, device=generator.device).to(x.device)
    cols_fwd = torch.arange(w, device=x.device)
    if flip:
        mirror = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(x.device)
        # Flipping is folded into the column index: read columns right to left inside the crop.
        cols = dx[:, None] + torch.where(mirror[:, None], cols_fwd.flip(0)[None, :], cols_fwd[None, :])
    else:
        cols = dx[:, None] + cols_fwd[None, :]
    rows = dy[:, None] + torch.arange(h, device=x.device)[None, :]
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * pad_w))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
