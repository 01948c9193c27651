"""Datasets for trainables: embedded digits, torchvision image sets and bring-your-own ``.npz``.

Every dataset is small enough to live in memory, so a trial loads it once into tensors
(:func:`load_splits`) and iterates over index batches (:func:`iterate_batches`) instead of
going through a ``DataLoader`` and PIL images, which would dominate the cost of small models.

The validation split is carved from the training set with a fixed seed; the test set is only
the official one and is meant for the end of a run. Problems a user can
cause (missing files, no network, a malformed ``.npz``) raise :class:`DataError` with one line
that says where the data was expected and how to fix it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import urllib.error
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainables.config import DATA_ENV_VAR, DATASETS, DataConfig

__all__ = [
    "DataError",
    "DATASETS",
    "DATA_ENV_VAR",
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


class DataError(Exception):
    """A user-facing data problem.

    ``str(exc)`` is one clear line (the path, what is missing, how to fix it); the CLI prints it
    without a traceback and exits non-zero.
    """

    def __init__(self, message: str) -> None:
        # One line, always: the message may embed the text of a lower-level error.
        super().__init__(" ".join(str(message).split("\n")))


# The digits set has no official test split; this seed fixes ours for every run and every
# split_seed, so test accuracies of different sweeps are comparable.
_DIGITS_TEST_SEED = 0
_DIGITS_TEST_FRACTION = 0.2

# Per-socket-operation timeout while downloading. Offline machines fail fast on DNS; this bounds
# the case of a network that silently drops packets.
_DOWNLOAD_SOCKET_TIMEOUT_S = 10.0

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
# Raw data: each source returns its arrays in N x C x H x W layout, before splitting and scaling


@dataclass
class _RawData:
    x_train: Tensor  # N x C x H x W; uint8 (scaled by 1/255 later) or float32
    y_train: Tensor  # int64
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...] | None = None  # None: the class indices are the names


def _load_raw(cfg: Mapping[str, Any]) -> _RawData:
    name = cfg["name"]
    if name == "digits":
        return _load_digits()
    if name == "digits28":
        return _load_digits28()
    if name == "npz":
        return _load_npz(cfg["path"])
    return _load_torchvision(name, Path(cfg["root"]), cfg["download"])


def _load_digits() -> _RawData:
    # Imported here: scikit-learn costs about a second to import and only this set needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
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
    return _RawData(
        images[train_t], labels[train_t], images[test_t], labels[test_t], num_classes=10,
        class_names=tuple(str(c) for c in bunch.target_names),
    )


#: Size of the generated ``digits28`` set (train pool, test set) and the seed that defines it.
DIGITS28_SIZES = (10_000, 2_000)
_DIGITS28_SEED = 0


def _load_digits28() -> _RawData:
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

    base = _load_digits()
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
    return _RawData(x_train, y_train, x_test, y_test, num_classes=10, class_names=base.class_names)


@dataclass(frozen=True)
class _TorchvisionSet:
    title: str  # how users know the dataset, for messages
    class_name: str  # the torchvision.datasets class
    layout: str  # "cifar" (pickled batches) or "mnist" (raw idx files)


_TORCHVISION_SETS: dict[str, _TorchvisionSet] = {
    "fashion_mnist": _TorchvisionSet("Fashion-MNIST", "FashionMNIST", "mnist"),
    "cifar10": _TorchvisionSet("CIFAR-10", "CIFAR10", "cifar"),
    "cifar100": _TorchvisionSet("CIFAR-100", "CIFAR100", "cifar"),
}


def _torchvision_class(spec: _TorchvisionSet) -> Any:
    # Imported here: torchvision.datasets adds over a second to start-up and most trials that
    # use digits or an npz file never need it.
    from torchvision import datasets

    return getattr(datasets, spec.class_name)


def _expected_folder(spec: _TorchvisionSet, root: Path) -> Path:
    cls = _torchvision_class(spec)
    if spec.layout == "cifar":
        return root / cls.base_folder
    return root / cls.__name__ / "raw"  # torchvision's MNIST.raw_folder


def _expected_files(spec: _TorchvisionSet) -> list[str]:
    # The same file lists torchvision's own _check_integrity / _check_exists walk through.
    cls = _torchvision_class(spec)
    if spec.layout == "cifar":
        return [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]


def _folder_hint(spec: _TorchvisionSet) -> str:
    cls = _torchvision_class(spec)
    if spec.layout == "cifar":
        return f"copy the extracted '{cls.base_folder}/' folder into"
    return f"copy the '{cls.__name__}/raw/' folder with the four unzipped idx files into"


def _read_torchvision(spec: _TorchvisionSet, root: Path) -> tuple[Any, Any]:
    # torchvision's constructors run its own checks (md5 for CIFAR, presence for MNIST) and
    # raise RuntimeError when they fail; download stays off here, it is attempted separately.
    cls = _torchvision_class(spec)
    return cls(str(root), train=True, download=False), cls(str(root), train=False, download=False)


def _short_reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    else:
        text = str(exc)
    text = " ".join(text.split()) or "no details"
    if len(text) > 240:  # long enough for torchvision's mirror-by-mirror download errors
        text = text[:237] + "..."
    return f"{type(exc).__name__}: {text}"


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # urllib (used by torchvision's downloader) has no timeout of its own: without this an
    # unreachable host behind a packet-dropping firewall would hang the CLI for minutes.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _unavailable(
    spec: _TorchvisionSet,
    root: Path,
    read_error: BaseException,
    download_error: BaseException | None,
) -> DataError:
    folder = _expected_folder(spec, root)
    expected = _expected_files(spec)
    missing = [name for name in expected if not (folder / name).is_file()]
    if len(missing) == len(expected):
        problem = f"{spec.title} not found under {folder}"
    elif missing:
        problem = f"{spec.title} incomplete under {folder} (missing {', '.join(missing)})"
    else:
        problem = f"{spec.title} under {folder} could not be read ({_short_reason(read_error)})"
    if download_error is not None:
        problem += f" and could not be downloaded ({_short_reason(download_error)})"
        fix = f"{_folder_hint(spec)} {root}, or point data.root / ${DATA_ENV_VAR} at a folder that has it"
    else:
        problem += " and data.download is false"
        fix = (
            f"{_folder_hint(spec)} {root}, point data.root / ${DATA_ENV_VAR} at a folder that has it, "
            "or set data.download: true"
        )
    return DataError(f"{problem}: {fix}")


def _open_torchvision(spec: _TorchvisionSet, root: Path, download: bool) -> tuple[Any, Any]:
    try:
        return _read_torchvision(spec, root)
    except Exception as exc:  # any failure to read files on disk is a data problem, not a bug
        read_error: BaseException = exc
    if not download:
        raise _unavailable(spec, root, read_error, None) from read_error
    try:
        with _socket_timeout(_DOWNLOAD_SOCKET_TIMEOUT_S):
            _torchvision_class(spec)(str(root), train=True, download=True)
    except Exception as exc:  # offline, DNS, HTTP, disk full, bad archive: all become one line
        raise _unavailable(spec, root, read_error, exc) from exc
    try:
        return _read_torchvision(spec, root)
    except Exception as exc:
        folder = _expected_folder(spec, root)
        raise DataError(
            f"{spec.title} under {folder} is unreadable even after downloading ({_short_reason(exc)}): "
            f"delete {folder} and run again, or {_folder_hint(spec)} {root}"
        ) from exc


def _load_torchvision(name: str, root: Path, download: bool) -> _RawData:
    spec = _TORCHVISION_SETS[name]
    train, test = _open_torchvision(spec, root, download)
    # Read the arrays directly: converting 60k PIL images one by one would take longer than
    # training a small model for an epoch.
    x_train, x_test = (_images_nchw(ds.data) for ds in (train, test))
    y_train, y_test = (torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64) for ds in (train, test))
    # The class list is the dataset's definition; the label check guards a hand-made copy.
    num_classes = max(len(train.classes), int(max(y_train.max(), y_test.max())) + 1)
    names = tuple(str(c) for c in train.classes) if len(train.classes) == num_classes else None
    return _RawData(x_train, y_train, x_test, y_test, num_classes, class_names=names)


def _images_nchw(data: Any) -> Tensor:
    x = torch.as_tensor(np.asarray(data))
    if x.dim() == 3:  # MNIST family: N x H x W grey
        return x.unsqueeze(1)
    return x.permute(0, 3, 1, 2)  # CIFAR: torchvision stores N x H x W x C


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NPZ_FIX = "save it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"


def _load_npz(path_value: str | os.PathLike[str] | None) -> _RawData:
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
        raise DataError(f"{path}: not a readable .npz archive ({_short_reason(exc)}): {_NPZ_FIX}") from exc
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
                raise DataError(f"{path}: array {key} cannot be read ({_short_reason(exc)}): {_NPZ_FIX}") from exc
        try:
            names = archive["class_names"] if "class_names" in archive.files else None
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: class_names cannot be read ({_short_reason(exc)}): save it as a numpy array of strings") from exc

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
    return _RawData(x_train, y_train, x_test, y_test, num_classes, class_names=_npz_class_names(path, names, num_classes))


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


def _natural_units(name: str, raw: _RawData) -> str:
    if name == "digits":
        return "pixel intensities in [0, 1] (scikit-learn's counts 0..16 divided by 16)"
    if name == "digits28":
        return "pixels in [0, 1] (the generated uint8 values divided by 255)"
    if raw.x_train.dtype == torch.uint8:
        return "pixels in [0, 1] (uint8 values divided by 255)"
    return "the .npz file's values as stored (float32)"


def _info(name: str, raw: _RawData, train_idx: Tensor, val_idx: Tensor) -> DataInfo:
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
    raw = _load_raw(resolved)
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
    raw = _load_raw(resolved)
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
