"""The ``digits`` and ``digits28`` sets: scikit-learn's 8x8 digits and a 28x28 set generated from them.

``digits`` is scikit-learn's bundled set with a fixed stratified 20 % test split (the set has no
official one). ``digits28`` redraws those digits at 28x28 with strong random distortions, as a
fixed function of a seed, so it needs no download either.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from trainables.datasets.raw import RawData

__all__ = ["DIGITS28_SIZES", "load_digits", "load_digits28"]

# The digits set has no official test split; this seed fixes ours for every run and every
# split_seed, so test accuracies of different sweeps are comparable.
_DIGITS_TEST_SEED = 0
_DIGITS_TEST_FRACTION = 0.2


def load_digits() -> RawData:
    """``digits``: scikit-learn's 1797 8x8 digits, pixel counts 0..16 scaled to [0, 1], 20 % held out as the test set."""
    # Imported here: scikit-learn costs about a second to import and only this set needs it.
    from sklearn.datasets import load_digits as load_sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = load_sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # counts 0..16 -> [0, 1]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=_DIGITS_TEST_FRACTION,
        stratify=bunch.target,
        random_state=_DIGITS_TEST_SEED,
    )
    # Sorted so the split_seed permutation acts on a canonical order of the training pool.
    train_t = torch.from_numpy(np.sort(train_idx))
    test_t = torch.from_numpy(np.sort(test_idx))
    return RawData(
        images[train_t], labels[train_t], images[test_t], labels[test_t], num_classes=10,
        class_names=tuple(str(c) for c in bunch.target_names),
    )


#: Size of the generated ``digits28`` set (train pool, test set) and the seed that defines it.
DIGITS28_SIZES = (10_000, 2_000)
_DIGITS28_SEED = 0


def load_digits28() -> RawData:
    """``digits28``: scikit-learn's digits redrawn at 28x28 with strong distortions, generated offline.

    Each sample is a source digit (8x8) upsampled to 20x20 and placed on a 28x28 canvas, then:
    a random stroke-width change (dilation on 30 %, erosion on 20 %), a random affine map
    (rotation up to 20 degrees, scale 0.8-1.15, shear up to 0.25, shift up to 7.5 %), a smooth
    random elastic displacement, a random contrast gain 0.7-1.0, an 8x8 fragment of another digit
    pasted at 40 % intensity at a random place (clutter) and Gaussian pixel noise (sigma 0.1),
    quantised to ``uint8``. Training and test samples come from disjoint source digits (the same
    stratified 80/20 split as ``digits``), so the test set measures generalisation to unseen
    writers' digits rather than to new distortions of seen ones. The set is a fixed function of
    :data:`_DIGITS28_SEED`: every run, on every machine, sees the same pixels.
    """
    import math

    import torch.nn.functional as F

    base = load_digits()
    generator = torch.Generator().manual_seed(_DIGITS28_SEED)

    def draw(images: Tensor, labels: Tensor, n: int) -> tuple[Tensor, Tensor]:
        source = torch.randint(0, len(images), (n,), generator=generator)
        x = F.interpolate(images[source], size=(20, 20), mode="bicubic", align_corners=False).clamp(0, 1)
        x = F.pad(x, (4, 4, 4, 4))
        stroke = torch.rand(n, generator=generator)[:, None, None, None]
        dilated = F.max_pool2d(x, 3, 1, 1)
        eroded = 0.5 * (x - F.max_pool2d(-x, 3, 1, 1))
        x = torch.where(stroke < 0.3, dilated, torch.where(stroke >= 0.8, eroded, x))

        def uniform(low: float, high: float) -> Tensor:
            return low + (high - low) * torch.rand(n, generator=generator)

        angle, scale = uniform(-math.radians(20), math.radians(20)), uniform(0.8, 1.15)
        shear, shift_x, shift_y = uniform(-0.25, 0.25), uniform(-0.15, 0.15), uniform(-0.15, 0.15)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack(
            [
                torch.stack([cos / scale, (-sin + shear * cos) / scale, shift_x], dim=1),
                torch.stack([sin / scale, (cos + shear * sin) / scale, shift_y], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, [n, 1, 28, 28], align_corners=False)
        elastic = F.interpolate(torch.randn(n, 2, 7, 7, generator=generator) * 0.05, size=(28, 28), mode="bicubic", align_corners=False)
        x = F.grid_sample(x, grid + elastic.permute(0, 2, 3, 1), mode="bilinear", padding_mode="zeros", align_corners=False)
        x = x * uniform(0.7, 1.0)[:, None, None, None]
        other = F.interpolate(images[torch.randint(0, len(images), (n,), generator=generator)], size=(28, 28), mode="bilinear", align_corners=False)
        top, left = torch.randint(0, 21, (n,), generator=generator), torch.randint(0, 21, (n,), generator=generator)
        rows, cols = torch.arange(28)[None, :, None], torch.arange(28)[None, None, :]
        window = (rows >= top[:, None, None]) & (rows < top[:, None, None] + 8) & (cols >= left[:, None, None]) & (cols < left[:, None, None] + 8)
        x = torch.maximum(x, 0.4 * other * window[:, None].to(x.dtype))
        x = x + 0.1 * torch.randn(x.shape, generator=generator)
        pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        return pixels, labels[source]

    n_train, n_test = DIGITS28_SIZES
    x_train, y_train = draw(base.x_train, base.y_train, n_train)
    x_test, y_test = draw(base.x_test, base.y_test, n_test)
    return RawData(x_train, y_train, x_test, y_test, num_classes=10, class_names=base.class_names)
