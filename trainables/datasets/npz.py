"""Bring-your-own data: an ``.npz`` archive of ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and ``class_names``).

The archive is read without unpickling; images may be vectors, grey ``N x H x W``, channels
last or channels first, as ``uint8`` pixels or floats; labels are integers ``0..K-1`` (floats
with integer values are accepted). Anything else is a :class:`~trainables.datasets.raw.DataError`
that names the array and the fix.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from trainables.datasets.raw import DataError, RawData, short_reason

__all__ = ["load_npz"]

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NPZ_FIX = "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"


def load_npz(path_value: str | os.PathLike[str] | None) -> RawData:
    if path_value is None:
        raise DataError(
            "data.path is not set: data.name 'npz' needs data.path pointing at an .npz file "
            "with arrays x_train, y_train, x_test, y_test"
        )
    path = Path(os.fspath(path_value)).expanduser().absolute()
    if not path.is_file():
        raise DataError(f"{path}: file not found: set data.path to an .npz file with arrays {', '.join(_NPZ_KEYS)}")
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickle a user file
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not a readable .npz archive ({short_reason(exc)}): {_NPZ_FIX}") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive of named arrays: {_NPZ_FIX}")
    with archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            found = ", ".join(archive.files) or "nothing"
            raise DataError(f"{path}: missing array(s) {', '.join(missing)} (found: {found}): {_NPZ_FIX}")
        arrays: dict[str, np.ndarray] = {}
        for key in _NPZ_KEYS:
            try:
                arrays[key] = archive[key]
            except (ValueError, OSError, zipfile.BadZipFile) as exc:
                raise DataError(f"{path}: array {key} cannot be read ({short_reason(exc)}): {_NPZ_FIX}") from exc
        try:
            names = archive["class_names"] if "class_names" in archive.files else None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: class_names cannot be read ({short_reason(exc)}): save it as a numpy array of strings") from exc

    x_train = _npz_images(path, "x_train", arrays["x_train"])
    x_test = _npz_images(path, "x_test", arrays["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{path}: x_train samples have shape {tuple(x_train.shape[1:])} but x_test samples "
            f"have shape {tuple(x_test.shape[1:])}: both must have the same layout"
        )
    y_train = _npz_labels(path, "y_train", arrays["y_train"], len(x_train), "x_train")
    y_test = _npz_labels(path, "y_test", arrays["y_test"], len(x_test), "x_test")
    unseen = sorted(set(y_test.unique().tolist()) - set(y_train.unique().tolist()))
    if unseen:
        shown = ", ".join(str(c) for c in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
        raise DataError(
            f"{path}: y_test has classes absent from y_train ({shown}): a model never trained on them cannot be "
            "scored on them; relabel the classes 0..K-1 over both splits or drop those test samples"
        )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return RawData(x_train, y_train, x_test, y_test, num_classes, class_names=_npz_class_names(path, names, num_classes))


def _npz_class_names(path: Path, names: np.ndarray | None, num_classes: int) -> tuple[str, ...] | None:
    """The optional ``class_names`` array of an ``.npz`` file: one string per class."""
    if names is None:
        return None
    if names.ndim != 1 or len(names) != num_classes or names.dtype.kind not in "US":
        raise DataError(
            f"{path}: class_names must be {num_classes} strings, one per class label 0..{num_classes - 1} "
            f"(found shape {names.shape}, dtype {names.dtype})"
        )
    return tuple(str(n) for n in names.tolist())


def _npz_images(path: Path, key: str, x: np.ndarray) -> Tensor:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}: {key} has dtype {x.dtype}; expected real numbers (uint8 pixels or floats)")
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{path}: {key} has shape {x.shape}; expected N x D vectors, N x H x W, "
            "N x H x W x C (C = 1 or 3) or N x C x H x W images"
        )
    if len(x) == 0 or x.size == 0:
        raise DataError(f"{path}: {key} is empty (shape {x.shape})")
    if x.ndim == 2:
        x = x[:, None, None, :]  # vectors: (1, 1, D) so every model sees C x H x W
    elif x.ndim == 3:
        x = x[:, None, :, :]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        # Channels last (the numpy/PIL habit). An ambiguous shape such as N x 3 x 5 x 3 is
        # read as channels first, torch's layout.
        x = np.moveaxis(x, -1, 1)
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x))  # scaled by 1/255 when split
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError(f"{path}: {key} contains NaN or infinite values")
    return torch.from_numpy(x)


def _npz_labels(path: Path, key: str, y: np.ndarray, n_expected: int, x_key: str) -> Tensor:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # a column vector of labels is a common way to save them
    if y.ndim != 1:
        raise DataError(f"{path}: {key} has shape {y.shape}; expected one integer class label per sample")
    if len(y) != n_expected:
        raise DataError(f"{path}: {x_key} has {n_expected} samples but {key} has {len(y)} labels; they must match")
    if np.issubdtype(y.dtype, np.floating):
        # Labels saved as floats (3.0) are accepted; a fractional value means they are not classes.
        if not np.isfinite(y).all() or not np.equal(np.mod(y, 1), 0).all():
            bad = y[~(np.isfinite(y) & np.equal(np.mod(y, 1), 0))][0]
            raise DataError(f"{path}: {key} must hold integer class labels 0..K-1, found {bad!r}")
    elif not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {key} has dtype {y.dtype}; expected integer class labels 0..K-1")
    labels = y.astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{path}: {key} must hold class labels 0..K-1, found negative label {int(labels.min())}")
    return torch.from_numpy(labels)
