"""Deployable models: a trained network plus its preprocessing, taking inputs in natural units.

Trials train on standardised inputs (``(x - mean) / std`` with the training split's
statistics). A deployed model must not depend on a user knowing those numbers, so
:class:`DeployableModel` carries them as buffers and takes what the data set naturally holds:

* torchvision sets (and ``uint8`` arrays of an ``.npz`` file): ``float32`` pixels in [0, 1]
  (``uint8 / 255``), ``N × C × H × W``;
* scikit-learn's digits: ``counts / 16``, in [0, 1], ``N × 1 × 8 × 8``;
* ``float`` arrays of an ``.npz`` file: the values as stored, in the loader's ``N × C × H × W``
  layout (vectors ``N × 1 × 1 × D``).

It returns logits. :class:`Preprocessing` describes the same contract as plain data (it is
``preprocessing.json`` in a bundle), :class:`DeployableRun` gives every family's training class
its one ``deployable()``, :func:`measure_latency` times a deployable module the way a trial
reports ``latency_ms`` and ``throughput_sps``, and :func:`neurobench_metrics` runs NeuroBench's
metrics for every family's exporter (each wraps its own model for it).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "DeployableModel",
    "DeployableRun",
    "LATENCY_BATCH",
    "Preprocessing",
    "Standardize",
    "THROUGHPUT_BATCH",
    "check_state_keys",
    "measure_latency",
    "natural_inputs",
    "neurobench_metrics",
]

#: Batch size of ``latency_ms`` (one request) and of ``throughput_sps`` (a server's batch).
LATENCY_BATCH = 1
THROUGHPUT_BATCH = 256


@dataclass(frozen=True)
class Preprocessing:
    """What a deployable model expects and returns, as plain data.

    Attributes:
        dataset: The data set name (``digits``, ``cifar10``, ``npz``, …).
        input_shape: ``(C, H, W)`` of one sample; inputs are ``N × C × H × W``.
        dtype: Input dtype (``float32``).
        natural_units: The input values in words (``pixels in [0, 1] (uint8 / 255)``).
        value_range: ``[low, high]`` of the training inputs in natural units.
        mean: Per-channel mean the model subtracts (zeros when the sweep did not normalise).
        std: Per-channel standard deviation the model divides by (ones likewise).
        class_names: Name of each logit's class.
        output: What the model returns (``logits``).
    """

    dataset: str
    input_shape: tuple[int, int, int]
    natural_units: str
    value_range: tuple[float, float]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    dtype: str = "float32"
    output: str = "logits"
    layout: str = "NCHW"

    @classmethod
    def from_splits(cls, splits: Any) -> Preprocessing:
        """The preprocessing of loaded :class:`~trainables.data.Splits` (training statistics)."""
        info = splits.info
        channels = info.input_shape[0]
        mean = splits.mean if splits.mean is not None else torch.zeros(channels)
        std = splits.std if splits.std is not None else torch.ones(channels)
        natural = splits.x_train * std[:, None, None] + mean[:, None, None]
        return cls(
            dataset=info.name,
            input_shape=tuple(int(s) for s in info.input_shape),  # type: ignore[arg-type]
            natural_units=info.natural_units,
            value_range=(float(natural.min()), float(natural.max())),
            mean=tuple(float(v) for v in mean.cpu()),
            std=tuple(float(v) for v in std.cpu()),
            class_names=tuple(info.class_names) or tuple(str(k) for k in range(info.num_classes)),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        data = json.loads(text)
        for key in ("input_shape", "value_range", "mean", "std", "class_names"):
            data[key] = tuple(data[key])
        return cls(**data)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def data_info(self) -> Any:
        """A :class:`~trainables.data.DataInfo` with the shapes a model is built from (no data needed)."""
        from trainables.data import DataInfo

        return DataInfo(
            name=self.dataset,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            n_train=0,
            n_val=0,
            n_test=0,
            class_names=self.class_names,
            natural_units=self.natural_units,
        )


class Standardize(nn.Module):
    """``(x - mean) / std`` per channel, the statistics as buffers (they travel with the state dict)."""

    def __init__(self, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.shape != std_t.shape:
            raise ValueError(f"mean has {mean_t.numel()} channels but std has {std_t.numel()}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1).clone())
        self.register_buffer("std", std_t.view(1, -1, 1, 1).clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class DeployableModel(nn.Module):
    """A trained network behind its input standardisation: natural units in, logits out.

    Attributes:
        preprocess: The :class:`Standardize` of the training split.
        model: The network trained on standardised inputs.
        preprocessing: The plain-data description (input shape, units, class names).
    """

    def __init__(self, model: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.preprocess = Standardize(preprocessing.mean, preprocessing.std)
        self.model = model
        self.preprocessing = preprocessing

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.preprocessing.class_names

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.preprocessing.input_shape

    def forward(self, x: Tensor) -> Tensor:
        expected = self.preprocessing.input_shape
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(expected):
            raise ValueError(
                f"expected inputs of shape N x {' x '.join(map(str, expected))} "
                f"({self.preprocessing.natural_units}), got {tuple(x.shape)}"
            )
        return self.model(self.preprocess(x))


class DeployableRun:
    """Mixin of a family's training class: its :meth:`deployable` model (the same for every family).

    The run holds ``splits`` (its loaded :class:`~trainables.data.Splits`) and ``device``, and
    says which module it trains in :meth:`network`. The preprocessing is computed from the
    training split once, on first use.
    """

    splits: Any
    device: Any
    _preprocessing: Preprocessing | None = None

    def network(self) -> nn.Module:
        """The trained network (on standardised inputs) that :meth:`deployable` wraps."""
        raise NotImplementedError

    def deployable(self) -> DeployableModel:
        """The network behind its input standardisation: natural units in, logits out."""
        if self._preprocessing is None:
            self._preprocessing = Preprocessing.from_splits(self.splits)
        return DeployableModel(self.network(), self._preprocessing).to(self.device)


def natural_inputs(splits: Any, which: str = "val") -> Tensor:
    """A split's inputs in natural units (undoing the loader's standardisation)."""
    x = getattr(splits, f"x_{which}")
    if splits.mean is None:
        return x
    return x * splits.std[:, None, None] + splits.mean[:, None, None]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_forward(module: nn.Module, x: Tensor, repeats: int, budget_s: float) -> list[float]:
    device = x.device
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        module(x)
        _sync(device)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget_s and len(times) >= 3:
            break
    return times


def measure_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    device: torch.device | str = "cpu",
    threads: int | None = 1,
    repeats: int = 50,
    warmup: int = 3,
    budget_s: float = 0.25,
) -> dict[str, Any]:
    """Time a deployable module: ``latency_ms`` at batch 1, ``throughput_sps`` at batch 256.

    Each is the median of up to ``repeats`` timed forward passes (no gradients, eval mode)
    after ``warmup`` untimed ones, within about ``budget_s`` seconds per batch size. On CPU
    the measurement runs with ``threads`` intra-op threads (1 by default: the figure of one
    core, comparable between trials that run side by side), restoring the setting after.
    The numbers are wall-clock times of *this* machine: on a shared or busy machine they are
    noisy, which is why the device is recorded with them.

    Returns:
        ``latency_ms``, ``throughput_sps`` (samples per second) and ``latency_device``
        (``cpu (N threads)`` or the CUDA device's name).
    """
    device = torch.device(device)
    was_training = module.training
    module.eval()
    old_threads = torch.get_num_threads()
    if device.type == "cpu" and threads:
        torch.set_num_threads(int(threads))
    try:
        with torch.inference_mode():
            results = {}
            for key, batch in (("latency", LATENCY_BATCH), ("throughput", THROUGHPUT_BATCH)):
                x = torch.rand((batch, *input_shape), device=device)
                for _ in range(warmup):
                    module(x)
                times = _time_forward(module, x, repeats, budget_s)
                results[key] = statistics.median(times)
    finally:
        if device.type == "cpu":
            torch.set_num_threads(old_threads)
        module.train(was_training)
    if device.type == "cuda":
        name = f"{torch.cuda.get_device_name(device)} ({device})"
    else:
        name = f"cpu ({threads or old_threads} thread{'s' if (threads or old_threads) != 1 else ''})"
    return {
        "latency_ms": 1000.0 * results["latency"],
        "throughput_sps": THROUGHPUT_BATCH / results["throughput"],
        "latency_device": name,
    }


def check_state_keys(state: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless ``state`` is a :class:`DeployableModel` state dict."""
    if "preprocess.mean" not in state or not any(k.startswith("model.") for k in state):
        raise ValueError(
            "model.pt is not a deployable state dict (no preprocess.mean / model.* keys): "
            "it was written by an older version; export the trial again with python -m analysis.select"
        )


def neurobench_metrics(
    wrapped: Any,
    x: Any,
    y: Any,
    batch_size: int,
    preprocessors: Sequence[Any] = (),
    postprocessors: Sequence[Any] = (),
    accumulates: bool = False,
) -> dict[str, float]:
    """NeuroBench's workload and static metrics of a model it has wrapped, on ``x``, ``y``.

    Runs ``ConnectionSparsity``, ``SynapticOperations``, ``ActivationSparsity`` and
    ``ClassificationAccuracy`` over batches of ``batch_size``. ``wrapped`` is NeuroBench's model
    (``TorchModel``, ``SNNTorchModel``); the caller checks ``neurobench`` is installed.
    ``postprocessors`` default to the argmax of the output.

    Returns:
        ``effective_acs`` (with ``accumulates``: spiking networks), ``effective_macs``,
        ``dense_ops``, ``activation_sparsity``, ``connection_sparsity``, ``accuracy`` (per sample).
    """
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)), batch_size=batch_size)
    bench = Benchmark(
        wrapped, loader, list(preprocessors), list(postprocessors) or [lambda p: p.argmax(-1)],
        [[ConnectionSparsity], [SynapticOperations, ActivationSparsity, ClassificationAccuracy]],
    )
    results = bench.run(quiet=True)
    ops = results["SynapticOperations"]
    figures = {"effective_acs": float(ops["Effective_ACs"])} if accumulates else {}
    return {
        **figures,
        "effective_macs": float(ops["Effective_MACs"]),
        "dense_ops": float(ops["Dense"]),
        "activation_sparsity": float(results["ActivationSparsity"]),
        "connection_sparsity": float(results["ConnectionSparsity"]),
        "accuracy": float(results["ClassificationAccuracy"]),
    }
