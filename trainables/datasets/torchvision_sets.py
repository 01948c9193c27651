"""Fashion-MNIST, CIFAR-10 and CIFAR-100 through torchvision, read from disk or downloaded.

The files are checked with torchvision's own integrity checks; when they are missing and
``data.download`` is true they are downloaded under a socket timeout. Every failure becomes one
:class:`~trainables.datasets.raw.DataError` line that names the folder expected, the files
missing and how to fix it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from trainables.config import DATA_ENV_VAR
from trainables.datasets.raw import DataError, RawData, short_reason

__all__ = ["TORCHVISION_SETS", "load_torchvision"]

# Per-socket-operation timeout while downloading. Offline machines fail fast on DNS; this bounds
# the case of a network that silently drops packets.
_DOWNLOAD_SOCKET_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class _TorchvisionSet:
    title: str  # how users know the dataset, for messages
    class_name: str  # the torchvision.datasets class
    layout: str  # "cifar" (pickled batches) or "mnist" (raw idx files)


TORCHVISION_SETS: dict[str, _TorchvisionSet] = {
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
        problem = f"{spec.title} under {folder} could not be read ({short_reason(read_error)})"
    if download_error is not None:
        problem += f" and could not be downloaded ({short_reason(download_error)})"
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
            f"{spec.title} under {folder} is unreadable even after downloading ({short_reason(exc)}): "
            f"delete {folder} and run again, or {_folder_hint(spec)} {root}"
        ) from exc


def load_torchvision(name: str, root: Path, download: bool) -> RawData:
    spec = TORCHVISION_SETS[name]
    train, test = _open_torchvision(spec, root, download)
    # Read the arrays directly: converting 60k PIL images one by one would take longer than
    # training a small model for an epoch.
    x_train, x_test = (_images_nchw(ds.data) for ds in (train, test))
    y_train, y_test = (torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64) for ds in (train, test))
    # The class list is the dataset's definition; the label check guards a hand-made copy.
    num_classes = max(len(train.classes), int(max(y_train.max(), y_test.max())) + 1)
    names = tuple(str(c) for c in train.classes) if len(train.classes) == num_classes else None
    return RawData(x_train, y_train, x_test, y_test, num_classes, class_names=names)


def _images_nchw(data: Any) -> Tensor:
    x = torch.as_tensor(np.asarray(data))
    if x.dim() == 3:  # MNIST family: N x H x W grey
        return x.unsqueeze(1)
    return x.permute(0, 3, 1, 2)  # CIFAR: torchvision stores N x H x W x C
