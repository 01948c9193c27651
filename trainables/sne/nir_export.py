"""NIR export of a spiking ensemble: the active students, the concatenation and the head as one graph.

The graph (``model.nir``, written by the ``nir`` package) runs one timestep per call; fed the
same input (natural units) at each of ``T`` steps, its outputs averaged over the steps are the
ensemble's logits. For each active student (the first ``sne.active`` of its greedy order)::

    input ─ [standardize] ─ (flatten) ─ Affine/Conv2d ─ LIF ─ … ─ (flatten) ─ readout Affine ─ scatter Linear ─┐
                                                                                                  head Affine ─ output

* The training split's standardisation is folded into the first layer: exactly into an MLP
  student's first ``Affine`` (``W / s``, ``b - W m / s``). A padded convolution cannot absorb
  the mean at the image border, so conv students share one 1×1 per-channel ``Conv2d`` node
  (``standardize``) in front of them instead (omitted when the sweep did not normalise).
* The 1x3 kernels of a conv student on one-row inputs (vectors, 1-D signals: ``H == 1``) are
  written as 3x3 kernels with zero outer rows and padding 1 on ``H``: the same outputs, since
  those rows only meet zero padding, but a graph that nir's own type check (``nir.read``)
  accepts; nir 1.0.x infers a ``Conv2d``'s output shape from the kernel's height alone.
* ``LIF`` nodes carry our discrete ``β`` the way snntorch's exporter maps ``snn.Leaky``
  (``dt = 1e-4``, ``τ = dt / (1 - β)``, ``r = τ / dt``, ``v_leak = v_reset = 0``), so its importer
  gives back ``β`` exactly; ``β = 1`` is written as ``1 - 1e-9`` (float32 rounds it to 1).
* The concatenation is each student's ``scatter`` ``Linear`` (its feature slice, times the
  feature standard deviation, into the ``D`` features); several edges into ``head`` are summed.
  The head's bias holds the feature means, so the inactive students' mean fill is in it.

Conventions of snntorch's importer, and what :func:`import_nir` changes to reproduce our
simulation exactly: it builds ``snn.Leaky`` with *reset to zero*, a spike at ``v > θ`` and (in
its default ``reset_delay``) a reset applied a step late, without the leak. Ours is
``v ← βv + I; s = [v ≥ θ]; v ← v − sθ`` (reset by subtraction, in the same step). The patch sets
``reset_mechanism="subtract"``, no delay and a ``≥`` spike on every imported neuron; with it, the
graph's logits equal :class:`~trainables.sne.students.SpikingEnsemble`'s to float rounding.
Without it, a NIR consumer following snntorch's reading would differ wherever a membrane
sits exactly on the threshold or is reset; :func:`import_nir` with ``exact=False`` shows by how much.

:func:`neurobench_figures` measures the written graph, imported by snntorch, with
:func:`trainables.deploy.neurobench_metrics`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainables.deploy import DeployableModel, neurobench_metrics

__all__ = ["NIR_FILE", "DT", "ensemble_graph", "export_files", "import_nir", "run_nir", "run_files", "neurobench_figures"]

NIR_FILE = "model.nir"
#: The time step snntorch's NIR exporter and importer assume (they hard-code it).
DT = 1e-4
_INSTALL_HINT = "NIR export needs the deploy extra: pip install -e '.[deploy]' (nir, nirtorch, snntorch)"


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from None


def _f32(t: Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy().astype(np.float32)


def _lif(nir: Any, beta: float, threshold: float, shape: Any) -> Any:
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    tau = np.full(shape, DT / max(1.0 - float(beta), 1e-9))
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(shape), v_threshold=np.full(shape, float(threshold)), v_reset=np.zeros(shape))


def _square_kernel(weight: Tensor, padding: tuple[int, int], hw: tuple[int, int]) -> tuple[Tensor, tuple[int, int]]:
    """A ``1 x k`` kernel on one-row inputs as the equivalent ``k x k`` one: zero outer rows, ``H`` padding ``(k - 1) / 2``.

    nir (1.0.x) infers a ``Conv2d``'s output shape from the kernel's height alone, so a graph
    with the 1-D students' 1x3 kernels fails its own type check when read back (``nir.read``).
    On a one-row input the added rows only ever meet zero padding: the outputs are the same,
    and NeuroBench's effective operations too (it counts non-zero weights on non-zero inputs).
    """
    kh, kw = weight.shape[-2:]
    if kh == kw or not (kh == 1 and hw[0] == 1 and padding[0] == 0 and kw % 2 == 1):
        return weight, padding
    square = weight.new_zeros((*weight.shape[:2], kw, kw))
    square[:, :, (kw - 1) // 2] = weight[:, :, 0]
    return square, ((kw - 1) // 2, padding[1])


def ensemble_graph(model: DeployableModel, k: int | None = None) -> Any:
    """The ``nir.NIRGraph`` of a deployable ensemble's first ``k`` students (default: its ``active``)."""
    nir = _require("nir")
    ens = model.model
    k = int(ens.active) if k is None else int(k)
    ids = [int(i) for i in ens.order[:k]]
    c, h, w = (int(s) for s in model.input_shape)
    mean = model.preprocess.mean.flatten().double()
    std = model.preprocess.std.flatten().double()
    head_w, head_b = ens.head.weight.detach().double(), ens.head.bias.detach().double()
    f_mean, f_std = ens.feature_mean.double(), ens.feature_std.double()
    n_classes, d = head_w.shape
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type=np.array([c, h, w])),
        # Dropped students' slices are their training mean: head(mean) + b in the head's bias.
        "head": nir.Affine(weight=_f32(head_w), bias=_f32(head_w @ f_mean + head_b)),
        "output": nir.Output(output_type=np.array([n_classes])),
    }
    edges: list[tuple[str, str]] = [("head", "output")]
    normalised = bool((mean != 0).any() or (std != 1).any())
    for kk in ids:
        student, part, pre = ens.students[kk], ens.part(kk), f"student{kk}"
        prev, hw, shape = "input", (h, w), None
        if student.shape == "mlp":
            nodes[f"{pre}.flatten_in"] = nir.Flatten(input_type={"input": np.array([c, h, w])}, start_dim=-3, end_dim=-1)
            edges.append((prev, f"{pre}.flatten_in"))
            prev = f"{pre}.flatten_in"
        elif normalised:
            if "standardize" not in nodes:
                nodes["standardize"] = nir.Conv2d(
                    input_shape=(h, w), weight=_f32(torch.diag(1 / std).view(c, c, 1, 1)), stride=1, padding=0,
                    dilation=1, groups=1, bias=_f32(-mean / std),
                )
                edges.append(("input", "standardize"))
            prev = "standardize"
        for i, (layer, lif) in enumerate(zip(student.layers, student.lifs)):
            name = f"{pre}.layers.{i}"
            weight, bias = (t.double() for t in student.folded_layer(i))  # batch norm, if any, folded in
            if isinstance(layer, nn.Conv2d):
                weight, padding = _square_kernel(weight, tuple(layer.padding), hw)
                nodes[name] = nir.Conv2d(
                    input_shape=hw, weight=_f32(weight), stride=tuple(layer.stride), padding=padding,
                    dilation=tuple(layer.dilation), groups=layer.groups, bias=_f32(bias),
                )
                shape = nodes[name].output_type["output"]
                hw = tuple(int(v) for v in shape[1:])
            else:
                if i == 0:  # fold the standardisation: W((x - m) / s) + b, per input feature
                    per_feature = h * w
                    m = mean.repeat_interleave(per_feature)
                    s = std.repeat_interleave(per_feature)
                    weight, bias = weight / s, bias - (weight / s) @ m
                nodes[name] = nir.Affine(weight=_f32(weight), bias=_f32(bias))
                shape = np.array([layer.out_features])
            nodes[f"{pre}.lif{i}"] = _lif(nir, lif.beta, lif.threshold, shape)
            edges += [(prev, name), (name, f"{pre}.lif{i}")]
            prev = f"{pre}.lif{i}"
        if len(shape) > 1:
            nodes[f"{pre}.flatten_out"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=-3, end_dim=-1)
            edges.append((prev, f"{pre}.flatten_out"))
            prev = f"{pre}.flatten_out"
        readout = student.readout.weight.detach().double()
        if student.pool:  # pooling then readout = one affine map over every position, W / (H W)
            positions = int(np.prod(shape[1:]))
            readout = readout.repeat_interleave(positions, dim=1) / positions
        nodes[f"{pre}.readout"] = nir.Affine(weight=_f32(readout), bias=_f32(student.readout.bias))
        scatter = torch.zeros(d, len(part), dtype=torch.float64)
        scatter[part, torch.arange(len(part))] = f_std[part]
        nodes[f"{pre}.scatter"] = nir.Linear(weight=_f32(scatter))
        edges += [(prev, f"{pre}.readout"), (f"{pre}.readout", f"{pre}.scatter"), (f"{pre}.scatter", "head")]
    metadata = {"timesteps": int(ens.students[0].timesteps), "students": ",".join(map(str, ids)), "readout": "mean over timesteps"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_files(model: DeployableModel, directory: str | Path, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``model.nir`` into ``directory``; returns what the card shows."""
    nir = _require("nir")
    graph = ensemble_graph(model)
    nir.write(str(Path(directory) / NIR_FILE), graph)
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[type(node).__name__] = kinds.get(type(node).__name__, 0) + 1
    timesteps = int(graph.metadata["timesteps"])
    students = graph.metadata["students"]
    summary = (
        f"One NIR graph of the {len(students.split(','))} active student(s) ({students}), their concatenation and the head; "
        f"nodes: {', '.join(f'{k} × {n}' for k, n in kinds.items())}. Run it for T = {timesteps} steps with the same input "
        "(natural units) at each step; the mean of its outputs is the logits. The standardisation is folded into the first layers; "
        "LIF nodes use snntorch's mapping of the discrete β (dt = 1e-4)."
    )
    return {"format": "nir", "file": NIR_FILE, "timesteps": timesteps, "students": students, "nodes": kinds, "summary": summary}


def import_nir(path: str | Path | Any, exact: bool = True) -> nn.Module:
    """Import a ``model.nir`` with snntorch (``snntorch.import_nir.import_from_nir``).

    Args:
        path: The ``.nir`` file, or a graph already read with ``nir.read``.
        exact: Patch each imported ``snn.Leaky`` to our neuron (reset by subtraction in the
            same step, spike at ``v ≥ θ``); for inference only (no surrogate gradient).

    Returns:
        The imported graph module: one call is one timestep, ``module(x) -> (output, state)``.
    """
    nir = _require("nir")
    snn = _require("snntorch")
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints its graph rewrites
        net = import_from_nir(path if isinstance(path, nir.NIRGraph) else nir.read(str(path)))
    if exact:
        for module in net.modules():
            if isinstance(module, snn.Leaky):
                module.reset_mechanism = "subtract"
                module.state_function = module._base_sub  # bound once in __init__: rebind
                module.reset_delay = False
                module.mem_reset = lambda mem: torch.zeros_like(mem)
                module.spike_grad = lambda x: (x >= 0).to(x.dtype)
    return net.eval()


def _reset(net: nn.Module) -> None:
    snn = _require("snntorch")
    for module in net.modules():
        if isinstance(module, snn.Leaky):
            module.mem = torch.zeros(0)


@torch.no_grad()
def run_nir(path: str | Path, x: Tensor, timesteps: int | None = None, exact: bool = True, per_step: bool = False) -> Tensor:
    """Logits of a ``model.nir`` run by snntorch on ``x`` (natural units): the mean over ``T`` steps.

    Args:
        path: The ``.nir`` file (or an already imported module, with ``timesteps``).
        x: ``N × C × H × W`` inputs.
        timesteps: ``T``; default: the graph's own (its ``timesteps`` metadata).
        exact: See :func:`import_nir`.
        per_step: Return the ``T × N × classes`` outputs instead of their mean.
    """
    if isinstance(path, nn.Module):
        net = path
    else:
        nir = _require("nir")
        graph = nir.read(str(path))
        timesteps = int(graph.metadata["timesteps"]) if timesteps is None else timesteps
        net = import_nir(graph, exact=exact)
    if timesteps is None:
        raise ValueError("timesteps is required with an already imported module")
    outputs = []
    for start in range(0, len(x), 512):
        batch = torch.as_tensor(x[start : start + 512], dtype=torch.float32)
        _reset(net)
        outputs.append(torch.stack([net(batch)[0] for _ in range(timesteps)]))
    steps = torch.cat(outputs, dim=1)
    return steps if per_step else steps.mean(0)


def run_files(directory: str | Path, x: Any) -> Any:
    """Logits of ``model.nir`` by snntorch on ``x`` (natural units), for the bundle's check."""
    return run_nir(Path(directory) / NIR_FILE, torch.as_tensor(np.asarray(x))).numpy()


def neurobench_figures(directory: str | Path, model: Any, x: Tensor, y: Tensor, batch_size: int = 64) -> dict[str, float]:
    """NeuroBench's workload and static metrics of ``directory/model.nir`` imported by snntorch.

    ``model`` (the bundle's deployable model) is not used: NeuroBench measures the NIR graph.

    Runs ``neurobench``'s ``SynapticOperations``, ``ActivationSparsity``,
    ``ConnectionSparsity`` and ``ClassificationAccuracy`` through its ``SNNTorchModel``, with
    direct encoding (the same input at every step) and the mean output over steps as the
    prediction. NeuroBench counts per step what it sees: the first layer's MACs ``T`` times
    (this package counts them once, the input being constant), and the concatenation and head
    as MACs on real values at every step (this package counts the head once, on the
    time-averaged readout).

    Returns:
        ``effective_acs``, ``effective_macs``, ``dense_ops``, ``activation_sparsity``,
        ``connection_sparsity``, ``accuracy`` (per sample).
    """
    nir = _require("nir")
    try:
        importlib.import_module("neurobench")
    except ImportError as exc:  # not in the deploy extra: its declared torchaudio would replace torch
        raise ImportError(f"NeuroBench's figures need: pip install --no-deps neurobench ({exc})") from None
    from neurobench.models import SNNTorchModel

    graph = nir.read(str(Path(directory) / NIR_FILE))
    timesteps = int(graph.metadata["timesteps"])
    net = import_nir(graph)

    def direct(data: Any) -> Any:
        return data[0].unsqueeze(1).expand(-1, timesteps, *data[0].shape[1:]), data[1]

    def decode(outputs: Tensor) -> Tensor:
        return outputs.mean(1).argmax(-1)

    return neurobench_metrics(SNNTorchModel(net), x, y, batch_size, [direct], [decode], accumulates=True)
