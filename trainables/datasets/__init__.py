"""The dataset sources: each reads or generates a dataset's raw arrays (:func:`load_raw` picks one).

One module per source: :mod:`~trainables.datasets.digits` (``digits``, ``digits28``, generated
offline), :mod:`~trainables.datasets.torchvision_sets` (``fashion_mnist``, ``cifar10``,
``cifar100``, on disk or downloaded) and :mod:`~trainables.datasets.npz` (a user's ``.npz``
file). Each returns a :class:`~trainables.datasets.raw.RawData` in ``N x C x H x W`` layout;
splitting, scaling and normalisation are :mod:`trainables.data`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainables.datasets.digits import load_digits, load_digits28
from trainables.datasets.npz import load_npz
from trainables.datasets.raw import DataError, RawData
from trainables.datasets.torchvision_sets import load_torchvision

__all__ = ["DataError", "RawData", "load_raw"]


def load_raw(cfg: Mapping[str, Any]) -> RawData:
    """The raw arrays of the dataset a resolved ``data`` section names."""
    name = cfg["name"]
    if name == "digits":
        return load_digits()
    if name == "digits28":
        return load_digits28()
    if name == "npz":
        return load_npz(cfg["path"])
    return load_torchvision(name, Path(cfg["root"]), cfg["download"])
