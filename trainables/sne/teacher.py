"""Teacher ANNs of the spiking ensemble: a registry of backbones, training, and a sweep-wide cache.

A teacher is a :class:`TeacherNet`: a ``body`` mapping inputs to the pooled penultimate feature
vector (dimension ``D``) and a linear ``head`` mapping features to class logits. The students
regress parts of the features; the (fine-tuned) head combines them.

Inputs are ``C x H x W`` samples as the loader yields them; ``H == 1`` means vectors (an ``N x D``
``.npz`` array is ``1 x 1 x D``) or 1-D signals (``N x 1 x L`` is ``1 x 1 x L``).

Backbones (``teacher.arch``), registered by name like timm's models:

- ``cnn``: a plain VGG-style CNN for small images (three stages of two 3x3 convs, widths
  ``w, 2w, 4w``, max-pool between stages, global average pool; ``D = 4w``). On ``H == 1``
  inputs it is the same network in 1-D over ``W``: 1x3 convs, 1x2 max-pools.
- ``mlp``: for inputs of any shape (flattened): two hidden ``Linear`` + ``BatchNorm1d`` + ReLU
  layers of ``4w`` units (``D = 4w``).
- ``resnet18``: torchvision's ResNet-18 adapted to 32x32 inputs (3x3 stride-1 stem, no max-pool;
  ``D = 512``). Images only.
- ``cornet_s``: CORnet-S (Kubilius et al. 2019): areas V1, V2, V4, IT with recurrence inside
  V2/V4/IT (2, 4, 2 passes), scaled by ``width`` (the original is 64) and with a stride-1 V1 for
  small images (``D = 8w``). Images only.

The teacher is trained once per configuration and shared by every trial of a sweep: the first
trial to need it trains it under an exclusive file lock in ``runtime.cache_dir``; the others wait on
the lock and load the result. Or it is loaded from ``teacher.checkpoint``.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.costs import EnergyModel, ann_energy_uj, model_costs
from trainables.data import DataInfo, Splits
from trainables.config import DataConfig, OptimConfig
from trainables.files import write_atomic
from trainables.sne.config import TEACHER_ARCHS, TeacherConfig
from trainables.training import evaluate, make_lr_schedule, make_optimizer, train_epoch

__all__ = [
    "TEACHERS",
    "TeacherConfig",
    "TeacherNet",
    "TeacherRecord",
    "register_teacher",
    "build_teacher",
    "train_teacher",
    "teacher_key",
    "teacher_cache_paths",
    "obtain_teacher",
    "load_cached_teacher",
    "copy_head",
    "TRAINING_LOG_SUFFIX",
]

#: Each training of a cached teacher appends one JSON line to ``teacher-<key>.log`` (provenance,
#: and the evidence that concurrent trials trained it once).
TRAINING_LOG_SUFFIX = ".log"


class TeacherNet(nn.Module):
    """An ANN classifier split into a feature ``body`` and a linear ``head``.

    Args:
        body: Maps ``N x C x H x W`` inputs to ``N x D`` features.
        feature_dim: ``D``.
        num_classes: Outputs of the head.
    """

    def __init__(self, body: nn.Module, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.body = body
        self.feature_dim = int(feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The pooled penultimate features, ``N x D``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


TeacherFactory = Callable[[TeacherConfig, DataInfo], TeacherNet]

#: Backbone name -> factory. Extend with :func:`register_teacher`.
TEACHERS: dict[str, TeacherFactory] = {}


def register_teacher(name: str) -> Callable[[TeacherFactory], TeacherFactory]:
    """Decorator registering a teacher factory under ``name``; duplicate names raise."""

    def decorate(factory: TeacherFactory) -> TeacherFactory:
        if name not in TEACHER_ARCHS:
            raise ValueError(f"teacher {name!r} is not declared in trainables.sne.config.TEACHER_ARCHS (what specs may name)")
        if name in TEACHERS:
            raise ValueError(f"teacher {name!r} is already registered")
        TEACHERS[name] = factory
        return factory

    return decorate


def build_teacher(cfg: TeacherConfig, info: DataInfo) -> TeacherNet:
    """Instantiate the registered backbone ``cfg.arch`` for a dataset."""
    return TEACHERS[cfg.arch](cfg, info)


# ---- backbones ---------------------------------------------------------------------------------


def _conv_bn(c_in: int, c_out: int, kernel: int | tuple[int, int] = 3, padding: int | tuple[int, int] = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _images_only(arch: str, info: DataInfo) -> None:
    """Raise for vectors and 1-D signals (``H == 1``): ``arch`` is built for images."""
    if int(info.input_shape[1]) == 1:
        shape = " x ".join(str(int(s)) for s in info.input_shape)
        raise ValueError(
            f"teacher.arch {arch!r} needs images (H > 1), but the data's samples are {shape} (C x H x W: "
            "vectors or 1-D signals); use teacher.arch: cnn (1-D convs over W) or mlp"
        )


@register_teacher("cnn")
def _cnn(cfg: TeacherConfig, info: DataInfo) -> TeacherNet:
    c, h, w = info.input_shape
    widths = (cfg.width, 2 * cfg.width, 4 * cfg.width)
    layers: list[nn.Module] = []
    # H == 1 (vectors, 1-D signals): the same network in 1-D over W. A 3x3 kernel there would
    # only ever meet zero padding in its outer rows, and a 2x2 pool could not halve H = 1.
    one_d = h == 1
    kernel, padding, pool = ((1, 3), (0, 1), (1, 2)) if one_d else (3, 1, 2)
    size, c_in = w if one_d else min(h, w), c
    for stage, width in enumerate(widths):
        if stage > 0 and size >= 2:
            layers.append(nn.MaxPool2d(pool))
            size //= 2
        layers += _conv_bn(c_in, width, kernel, padding) + _conv_bn(width, width, kernel, padding)
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return TeacherNet(nn.Sequential(*layers), widths[-1], info.num_classes)


class _BatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` that normalises a training batch of one sample with its running statistics.

    A batch of one has no batch variance (``nn.BatchNorm1d`` raises), and the loader keeps the
    last partial batch, so ``n_train % batch_size == 1`` would otherwise stop the teacher's
    training. Same parameters and state dict as ``nn.BatchNorm1d``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


@register_teacher("mlp")
def _mlp(cfg: TeacherConfig, info: DataInfo) -> TeacherNet:
    d_in = math.prod(int(s) for s in info.input_shape)
    hidden = 4 * cfg.width
    body = nn.Sequential(
        nn.Flatten(),
        nn.Linear(d_in, hidden, bias=False),
        _BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden, bias=False),
        _BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
    )
    return TeacherNet(body, hidden, info.num_classes)


class _ResNetBody(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1)


@register_teacher("resnet18")
def _resnet18(cfg: TeacherConfig, info: DataInfo) -> TeacherNet:
    _images_only("resnet18", info)
    import torchvision  # only this backbone needs it; importing it costs about a second

    net = torchvision.models.resnet18(weights=None, num_classes=info.num_classes)
    # The ImageNet stem (7x7 stride 2 + max-pool) would shrink a 32x32 image to 8x8 before the
    # first block; the usual CIFAR adaptation keeps full resolution.
    net.conv1 = nn.Conv2d(info.input_shape[0], 64, 3, stride=1, padding=1, bias=False)
    teacher = TeacherNet(_ResNetBody(net), 512, info.num_classes)
    teacher.head = net.fc
    return teacher


class _StridedConv2d(nn.Conv2d):
    """A conv whose stride is chosen per call: CORnet-S's recurrent conv downsamples on its first pass only.

    Keeping one module (instead of mutating ``stride`` in the forward, as the reference code does)
    keeps the weights shared and lets cost hooks count every pass.
    """

    def forward(self, x: Tensor, stride: int | None = None) -> Tensor:  # type: ignore[override]
        return F.conv2d(x, self.weight, self.bias, stride or self.stride, self.padding)


class _CORblockS(nn.Module):
    """One CORnet-S area: a bottleneck block applied ``times`` times with a skip connection."""

    scale = 4  # bottleneck expansion of the reference implementation

    def __init__(self, c_in: int, c_out: int, times: int) -> None:
        super().__init__()
        self.times = times
        self.conv_input = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.skip = nn.Conv2d(c_out, c_out, 1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_out, c_out * self.scale, 1, bias=False)
        self.conv2 = _StridedConv2d(c_out * self.scale, c_out * self.scale, 3, padding=1, bias=False)
        self.conv3 = nn.Conv2d(c_out * self.scale, c_out, 1, bias=False)
        # Batch norms are per pass: the statistics differ from pass to pass.
        self.norm1 = nn.ModuleList(nn.BatchNorm2d(c_out * self.scale) for _ in range(times))
        self.norm2 = nn.ModuleList(nn.BatchNorm2d(c_out * self.scale) for _ in range(times))
        self.norm3 = nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(times))

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_input(x)
        for t in range(self.times):
            skip = self.norm_skip(self.skip(x)) if t == 0 else x
            h = F.relu(self.norm1[t](self.conv1(x)))
            h = F.relu(self.norm2[t](self.conv2(h, stride=2 if t == 0 else 1)))
            x = F.relu(self.norm3[t](self.conv3(h)) + skip)
        return x


@register_teacher("cornet_s")
def _cornet_s(cfg: TeacherConfig, info: DataInfo) -> TeacherNet:
    _images_only("cornet_s", info)
    w = cfg.width
    body = nn.Sequential(
        # V1 at stride 1: the reference 7x7/2 conv + max-pool is sized for 224x224 images.
        *_conv_bn(info.input_shape[0], w),
        *_conv_bn(w, w),
        _CORblockS(w, 2 * w, times=2),  # V2
        _CORblockS(2 * w, 4 * w, times=4),  # V4
        _CORblockS(4 * w, 8 * w, times=2),  # IT
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return TeacherNet(body, 8 * w, info.num_classes)


# ---- training ----------------------------------------------------------------------------------


def train_teacher(teacher: TeacherNet, splits: Splits, cfg: TeacherConfig) -> float:
    """Train ``teacher`` in place with cross-entropy; return its validation accuracy.

    Seeded by ``cfg.seed`` inside a forked RNG, so the caller's random state is untouched.
    """
    devices = [splits.x_train.device] if splits.x_train.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(cfg.seed)
        generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
        optim = OptimConfig(name=cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum, batch_size=cfg.batch_size)
        optimizer = make_optimizer(teacher.parameters(), optim)
        steps = cfg.epochs * math.ceil(len(splits.y_train) / cfg.batch_size)
        schedule = make_lr_schedule(optimizer, "cosine", steps)
        for epoch in range(1, cfg.epochs + 1):
            train_epoch(teacher, splits, optimizer, schedule, cfg.batch_size, generator, epoch)
    return evaluate(teacher, splits.x_val, splits.y_val)[0]


@dataclass(frozen=True)
class TeacherRecord:
    """A ready teacher and what a trial reports about it.

    Attributes:
        model: The trained teacher, in eval mode.
        accuracy: Validation accuracy.
        test_accuracy: Test accuracy.
        macs: Inference MACs per sample.
        key: Cache key (hash of the teacher and data config); ``""`` for a checkpoint.
        path: The file it was loaded from or saved to; None when trained in place.
    """

    model: TeacherNet
    accuracy: float
    test_accuracy: float
    macs: int
    key: str
    path: str | None

    def energy_uj(self, model: EnergyModel) -> float:
        """ANN inference energy per sample (MACs x E_MAC, by :func:`trainables.costs.ann_energy_uj`)."""
        return ann_energy_uj(self.macs, model)


def _as_dict(data: Any) -> dict[str, Any]:
    """The full ``data`` section (defaults filled), so equal data gives equal cache keys."""
    return DataConfig.model_validate(data).model_dump()


def teacher_key(teacher: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """A short stable hash of everything that determines a trained teacher.

    ``checkpoint`` is excluded (a loaded teacher is never cached) and so is ``data.root`` (the
    same dataset found in another folder is the same data).
    """
    t = {k: v for k, v in teacher.items() if k != "checkpoint"}
    d = {k: v for k, v in data.items() if k != "root"}
    blob = json.dumps({"teacher": t, "data": d}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def teacher_cache_paths(cache_dir: str | os.PathLike, cfg: TeacherConfig, key: str) -> tuple[Path, Path, Path]:
    """(weights file, lock file, training log) of a cached teacher."""
    stem = Path(cache_dir) / f"teacher-{cfg.arch}-{key}"
    return stem.with_suffix(".pt"), stem.with_suffix(".lock"), stem.with_suffix(TRAINING_LOG_SUFFIX)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking): one process at a time inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _state_dict_from(payload: Any) -> dict[str, Tensor]:
    if isinstance(payload, Mapping) and "model" in payload and isinstance(payload["model"], Mapping):
        return dict(payload["model"])
    if isinstance(payload, Mapping):
        return dict(payload)
    raise ValueError("a teacher checkpoint must be a state dict (or a dict with a 'model' state dict)")


def _record(model: TeacherNet, splits: Splits, key: str, path: str | None, accuracy: float | None = None) -> TeacherRecord:
    model.eval()
    val = evaluate(model, splits.x_val, splits.y_val)[0] if accuracy is None else accuracy
    test = evaluate(model, splits.x_test, splits.y_test)[0]
    macs = model_costs(model, splits.info.input_shape).macs
    return TeacherRecord(model=model, accuracy=float(val), test_accuracy=float(test), macs=int(macs), key=key, path=path)


def obtain_teacher(
    teacher_cfg: Mapping[str, Any],
    data_cfg: Mapping[str, Any],
    splits: Splits,
    cache_dir: str | os.PathLike | None,
    device: torch.device | str = "cpu",
) -> TeacherRecord:
    """The trained teacher of a configuration: loaded from a checkpoint, from the cache, or trained.

    With ``cache_dir``, the first caller trains the teacher while holding an exclusive lock on
    ``teacher-<arch>-<key>.lock``, saves it atomically and appends a line to its training log;
    concurrent callers (other trials, other processes or nodes sharing the directory) block on
    the lock and then load the saved file, so a sweep trains each teacher exactly once. Without
    ``cache_dir`` the teacher is trained in place and not kept.

    Args:
        teacher_cfg: The ``teacher`` section of the config.
        data_cfg: The ``data`` section (part of the cache key).
        splits: The loaded dataset.
        cache_dir: Directory shared by the sweep's trials, or None.
        device: Where the teacher runs.

    Raises:
        FileNotFoundError: ``teacher.checkpoint`` names a missing file.
        ValueError: invalid teacher config, or a checkpoint that does not fit the architecture.
    """
    cfg = TeacherConfig.model_validate(teacher_cfg)
    model = build_teacher(cfg, splits.info).to(device)
    if cfg.checkpoint:
        path = Path(cfg.checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"teacher.checkpoint {path} does not exist")
        payload = torch.load(path, map_location=device, weights_only=True)
        try:
            model.load_state_dict(_state_dict_from(payload))
        except RuntimeError as exc:
            raise ValueError(f"teacher.checkpoint {path} does not fit teacher.arch {cfg.arch!r}: {str(exc).splitlines()[0]}") from None
        return _record(model, splits, "", str(path))

    key = teacher_key(cfg.model_dump(), _as_dict(data_cfg))
    if cache_dir is None:
        accuracy = train_teacher(model, splits, cfg)
        return _record(model, splits, key, None, accuracy)

    weights, lock, log = teacher_cache_paths(cache_dir, cfg, key)
    with _exclusive_lock(lock):
        if weights.exists():
            payload = torch.load(weights, map_location=device, weights_only=True)
            model.load_state_dict(payload["model"])
            return _record(model, splits, key, str(weights), float(payload["val_accuracy"]))
        started = time.perf_counter()
        accuracy = train_teacher(model, splits, cfg)
        payload = {"model": model.state_dict(), "val_accuracy": accuracy, "config": json.dumps(cfg.model_dump())}
        write_atomic(weights, lambda handle: torch.save(payload, handle))
        entry = {
            "event": "trained",
            "key": key,
            "arch": cfg.arch,
            "val_accuracy": accuracy,
            "seconds": round(time.perf_counter() - started, 3),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(log, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
        return _record(model, splits, key, str(weights), accuracy)


def load_cached_teacher(
    teacher_cfg: Mapping[str, Any],
    data_cfg: Mapping[str, Any],
    splits: Splits,
    cache_dir: str | os.PathLike,
    device: torch.device | str = "cpu",
) -> TeacherRecord:
    """Load an already trained teacher (from its checkpoint or the cache); never train.

    Raises:
        FileNotFoundError: the teacher is not in ``cache_dir``.
    """
    cfg = TeacherConfig.model_validate(teacher_cfg)
    if cfg.checkpoint:
        return obtain_teacher(teacher_cfg, data_cfg, splits, None, device)
    key = teacher_key(cfg.model_dump(), _as_dict(data_cfg))
    weights, _, _ = teacher_cache_paths(cache_dir, cfg, key)
    if not weights.exists():
        raise FileNotFoundError(f"no trained teacher {weights.name} in {cache_dir}")
    model = build_teacher(cfg, splits.info).to(device)
    payload = torch.load(weights, map_location=device, weights_only=True)
    model.load_state_dict(payload["model"])
    return _record(model, splits, key, str(weights), float(payload["val_accuracy"]))


def copy_head(teacher: TeacherNet) -> nn.Linear:
    """A trainable copy of the teacher's head (the ensemble's combiner starts from it)."""
    return copy.deepcopy(teacher.head)
