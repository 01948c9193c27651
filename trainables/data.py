"""A trial's data: the :class:`DataInfo` a model is built from and the :class:`Splits` it trains on.

Every dataset is small enough to live in memory, so a trial loads it once into tensors
(:func:`load_splits`) and iterates over index batches (:func:`iterate_batches`, from
:mod:`trainables.batches`) instead of going through a ``DataLoader`` and PIL images, which would
dominate the cost of small models. The sources of the raw arrays (embedded digits, torchvision
image sets, bring-your-own ``.npz``) are :mod:`trainables.datasets`; this module resolves the
``data`` section, carves the splits and normalises them.

The validation split is carved from the training set with a fixed seed; the test set is only
the official one and is meant for the end of a run. Problems a user can
cause (missing files, no network, a malformed ``.npz``) raise :class:`DataError` with one line
that says where the data was expected and how to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainables.batches import augment_batch, iterate_batches, shift_batch
from trainables.config import DATA_ENV_VAR, DATASETS, DataConfig
from trainables.datasets import load_raw
from trainables.datasets.digits import DIGITS28_SIZES
from trainables.datasets.raw import DataError, RawData

__all__ = [
    "DataError",
    "DATASETS",
    "DATA_ENV_VAR",
    "DIGITS28_SIZES",
    "DataConfig",
    "DataInfo",
    "Splits",
    "resolve_data_config",
    "check_available",
    "load_splits",
    "iterate_batches",
    "augment_batch",
    "shift_batch",
]

# Datasets whose images are natural photos, where a shifted or mirrored image is still the
# same class. Digits and clothing items are centred and orientation matters (or is fixed).
_AUGMENTABLE = frozenset({"cifar10", "cifar100"})


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about a dataset to be built.

    Attributes:
        name: The dataset name (one of :data:`DATASETS`).
        input_shape: ``(C, H, W)`` of one sample; vectors are ``(1, 1, D)``.
        num_classes: Number of classes (labels are ``0 .. num_classes - 1``).
        n_train: Samples in the training split (after the validation carve-out and
            ``train_subset``).
        n_val: Samples in the validation split.
        n_test: Samples in the official test split.
        class_names: Name of each class (``"0"``, ``"1"``, … when the dataset has none).
        natural_units: What the model's inputs are before normalisation, in words: the
            values an exported model takes (``"pixels in [0, 1] (uint8 / 255)"``).
    """

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    n_train: int
    n_val: int
    n_test: int
    # Descriptive: two infos with the same shapes and sizes are equal whatever their names.
    class_names: tuple[str, ...] = field(default=(), compare=False)
    natural_units: str = field(default="", compare=False)


@dataclass
class Splits:
    """The three splits of a dataset as in-memory tensors.

    Attributes:
        info: Shapes and sizes.
        x_train: ``float32`` ``N x C x H x W``, normalised when the config asks for it.
        y_train: ``int64`` labels.
        x_val: Validation inputs, same layout and normalisation as ``x_train``.
        y_val: Validation labels.
        x_test: Official test inputs, same layout and normalisation as ``x_train``.
        y_test: Official test labels.
        augment: True only when the config asks for augmentation and the dataset is a set of
            natural images where crop and flip make sense (cifar10, cifar100).
        mean: Per-channel mean subtracted from every split (zeros when not normalising).
        std: Per-channel standard deviation divided out (ones when not normalising).
            ``x * std[:, None, None] + mean[:, None, None]`` recovers pixels in ``[0, 1]``
            (uint8 sources) or the raw values (float sources).
    """

    info: DataInfo
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    augment: bool
    mean: Tensor | None = None
    std: Tensor | None = None


# --------------------------------------------------------------------------------------------
# Config


def resolve_data_config(cfg: DataConfig | Mapping[str, Any]) -> DataConfig:
    """A validated ``data`` section with ``root`` and ``path`` absolute (see :meth:`DataConfig.resolved`).

    Raises:
        pydantic.ValidationError: unknown keys or values of the wrong kind (a spec error).
    """
    return DataConfig.model_validate(cfg).resolved()


# --------------------------------------------------------------------------------------------
# Splitting and normalisation


def _split_indices(n: int, cfg: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    fraction = cfg["val_fraction"]
    n_val = round(fraction * n)
    if n_val < 1 or n - n_val < 1:
        raise DataError(
            f"data.val_fraction={fraction} on {n} training samples leaves {n - n_val} for training and "
            f"{n_val} for validation; both need at least 1: change data.val_fraction"
        )
    perm = np.random.default_rng(cfg["split_seed"]).permutation(n)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    if cfg["train_subset"] is not None:
        train_idx = train_idx[: cfg["train_subset"]]
    # Sorted: gathers read memory in order; batch order comes from iterate_batches anyway.
    return torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))


def _as_float(x: Tensor) -> Tensor:
    x = x.contiguous()
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x.to(torch.float32)


def _natural_units(name: str, raw: RawData) -> str:
    if name == "digits":
        return "pixel intensities in [0, 1] (scikit-learn's counts 0..16 divided by 16)"
    if name == "digits28":
        return "pixels in [0, 1] (the generated uint8 values divided by 255)"
    if raw.x_train.dtype == torch.uint8:
        return "pixels in [0, 1] (uint8 values divided by 255)"
    return "the .npz file's values as stored (float32)"


def _info(name: str, raw: RawData, train_idx: Tensor, val_idx: Tensor) -> DataInfo:
    c, h, w = (int(s) for s in raw.x_train.shape[1:])
    return DataInfo(
        name=name,
        input_shape=(c, h, w),
        num_classes=raw.num_classes,
        n_train=len(train_idx),
        n_val=len(val_idx),
        n_test=len(raw.x_test),
        class_names=raw.class_names or tuple(str(k) for k in range(raw.num_classes)),
        natural_units=_natural_units(name, raw),
    )


# --------------------------------------------------------------------------------------------
# Public entry points


def check_available(cfg: DataConfig | Mapping[str, Any]) -> DataInfo:
    """Check that the dataset can be loaded, before any trial starts.

    Torchvision sets are checked with torchvision's own integrity checks and downloaded when
    missing and ``download`` is true (bounded by a socket timeout). The arrays are read (that
    is torchvision's check) but no float tensors are built.

    Args:
        cfg: The ``data`` section of a config (a :class:`DataConfig` or its fields).

    Returns:
        The :class:`DataInfo` that :func:`load_splits` will report for the same config.

    Raises:
        DataError: when the data is missing, cannot be downloaded or is malformed.
        ValueError: for unknown config keys or invalid values.
    """
    resolved = resolve_data_config(cfg).model_dump()
    raw = load_raw(resolved)
    train_idx, val_idx = _split_indices(len(raw.x_train), resolved)
    return _info(resolved["name"], raw, train_idx, val_idx)


def load_splits(cfg: DataConfig | Mapping[str, Any], device: torch.device | str = "cpu") -> Splits:
    """Load a dataset into train / validation / test tensors.

    The validation split is ``round(val_fraction * n_train)`` samples of the training set,
    chosen by a permutation seeded with ``split_seed``; the test split is the official one
    (a fixed stratified 20 % for digits, which has none). With ``normalize`` every split is
    standardised per channel with the mean and standard deviation of the training split.

    Args:
        cfg: The ``data`` section of a config (a :class:`DataConfig` or its fields).
        device: Where the tensors are placed.

    Returns:
        The splits, with ``x`` as ``float32`` ``N x C x H x W`` and ``y`` as ``int64``.

    Raises:
        DataError: when the data is missing, cannot be downloaded or is malformed.
        ValueError: for unknown config keys or invalid values.
    """
    resolved = resolve_data_config(cfg).model_dump()
    name = resolved["name"]
    raw = load_raw(resolved)
    train_idx, val_idx = _split_indices(len(raw.x_train), resolved)
    info = _info(name, raw, train_idx, val_idx)

    x_train = _as_float(raw.x_train[train_idx])
    x_val = _as_float(raw.x_train[val_idx])
    x_test = _as_float(raw.x_test)
    channels = x_train.shape[1]
    if resolved["normalize"]:
        # Training-split statistics only: the validation and test sets must not leak into them.
        mean = x_train.mean(dim=(0, 2, 3))
        std = x_train.std(dim=(0, 2, 3), correction=0)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))  # constant channel: centre only
        for x in (x_train, x_val, x_test):
            x.sub_(mean[:, None, None]).div_(std[:, None, None])
    else:
        mean, std = torch.zeros(channels), torch.ones(channels)

    dev = torch.device(device)
    return Splits(
        info=info,
        x_train=x_train.to(dev),
        y_train=raw.y_train[train_idx].to(dev),
        x_val=x_val.to(dev),
        y_val=raw.y_train[val_idx].to(dev),
        x_test=x_test.to(dev),
        y_test=raw.y_test.to(dev),
        augment=bool(resolved["augment"]) and name in _AUGMENTABLE,
        mean=mean.to(dev),
        std=std.to(dev),
    )
