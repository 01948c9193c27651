"""Portable files of a G2G bundle: ``model.onnx``.

Before export, edge-granular layers (:class:`~trainables.g2g.layers.MaskedLinear`) become plain
linear layers holding their masked weight ``W ⊙ M``, so the graph has one ``Gemm`` per layer
whose zeros :func:`~trainables.onnx_export.export_onnx` stores sparse; block-granular layers
export as they run (gather + batched matmul). The exported graph takes inputs in natural
units and returns logits, like the bundle's PyTorch model.

Also the G2G net in the form NeuroBench reads (:func:`neurobench_module`) and its figures
(:func:`neurobench_figures`, measured by :func:`trainables.deploy.neurobench_metrics`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from trainables.deploy import DeployableModel, neurobench_metrics
from trainables.g2g.layers import MaskedLinear
from trainables.onnx_export import export_onnx

__all__ = ["ONNX_FILE", "export_files", "inference_copy", "run_files"]

ONNX_FILE = "model.onnx"


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose masked layers are plain ``nn.Linear`` with the masked weights."""
    model = copy.deepcopy(model).eval().cpu()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, MaskedLinear) and child.mask is not None:
                linear = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
                linear.weight.data.copy_(child.effective_weight().detach())
                if child.bias is not None:
                    linear.bias.data.copy_(child.bias.detach())
                setattr(module, child_name, linear)
    return model


def export_files(model: DeployableModel, directory: str | Path, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``model.onnx`` into ``directory``; returns what the card shows (opset, ops, MACs)."""
    info = export_onnx(inference_copy(model), Path(directory) / ONNX_FILE, model.input_shape, metadata)
    return {"format": "onnx", "file": ONNX_FILE, **info}


def run_files(directory: str | Path, x: Any) -> Any:
    """Logits of ``model.onnx`` by onnxruntime (CPU) on ``x`` (``N × C × H × W`` natural units)."""
    import numpy as np

    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"running model.onnx needs onnxruntime: pip install -e '.[deploy]' ({exc})") from None
    session = onnxruntime.InferenceSession(str(Path(directory) / ONNX_FILE), providers=["CPUExecutionProvider"])
    batch = np.asarray(x, dtype=np.float32)
    return np.concatenate([session.run(None, {"input": batch[i : i + 1024]})[0] for i in range(0, len(batch), 1024)])


def neurobench_module(model: nn.Module) -> nn.Sequential:
    """The network as ``nn.Sequential`` of ``nn.Linear``/``nn.Conv2d`` and ``nn.ReLU`` modules.

    NeuroBench finds connection layers and activations by module type, so the G2G net (whose
    block layers are not ``nn.Linear`` and whose ReLU is functional) is given to it in this
    equivalent form: every hidden layer as a linear layer holding its effective weight (zeros
    outside the connectivity), each followed by an ``nn.ReLU``. The logits are the same.
    """
    from trainables.g2g.model import G2GNet

    net = model.model if isinstance(model, DeployableModel) else model
    if not isinstance(net, G2GNet):
        raise TypeError(f"expected a G2GNet, got {type(net).__name__}")
    layers: list[nn.Module] = []
    if isinstance(model, DeployableModel):
        layers.append(copy.deepcopy(model.preprocess))
    frontend = copy.deepcopy(net.frontend)
    layers += [frontend.conv, nn.Flatten(1)] if hasattr(frontend, "conv") else [nn.Flatten(1)]
    for layer in net.hidden:
        weight = layer.effective_weight().detach()
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=layer.bias is not None)
        linear.weight.data.copy_(weight)
        if layer.bias is not None:
            linear.bias.data.copy_(layer.bias.detach())
        layers += [linear, nn.ReLU()]
    layers.append(copy.deepcopy(net.classifier))
    return nn.Sequential(*layers).eval()


def neurobench_figures(directory: str | Path, model: DeployableModel, x: Any, y: Any, batch_size: int = 256) -> dict[str, float]:
    """NeuroBench's workload and static metrics of a bundle's deployable model on ``x``, ``y``.

    The model is given to NeuroBench's ``TorchModel`` as :func:`neurobench_module`.
    NeuroBench's ``Effective_MACs`` skip zero activations (ReLU outputs), where ``macs``
    counts every active connection; its connection sparsity is the zeros of the dense-shaped
    layers (the G2G connectivity).

    Returns:
        ``effective_macs``, ``dense_ops``, ``activation_sparsity``, ``connection_sparsity``,
        ``accuracy`` (per sample).
    """
    import importlib

    try:
        importlib.import_module("neurobench")
    except ImportError as exc:
        raise ImportError(f"NeuroBench's figures need: pip install --no-deps neurobench ({exc})") from None
    from neurobench.models import TorchModel

    return neurobench_metrics(TorchModel(neurobench_module(model)), x, y, batch_size)
