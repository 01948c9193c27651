"""ONNX export of deployable feed-forward models, and MACs counted from the ONNX graph.

:func:`export_onnx` writes a :class:`~trainables.deploy.DeployableModel` (standardisation
included, so the graph takes inputs in natural units) with torch's ONNX exporter at opset
:data:`OPSET`, a dynamic batch axis, input ``input`` (``N × C × H × W`` float32) and output
``logits``. What G2G layers become:

* block-granular layers stay what they compute: a ``Gather`` of the input groups, a batched
  ``MatMul`` with the ``G × K × out_per_group`` block weights and an ``Add`` of the bias; no
  dense-shaped weight is ever built;
* edge-granular (masked) layers are a ``Gemm`` whose weight is stored as an ONNX *sparse
  initializer* (only the non-zero values and their indices) when at least
  :data:`SPARSE_MIN_ZEROS` of it is zero. That is as far as ONNX goes: the standard has no
  sparse matmul operator, so runtimes (onnxruntime included) densify a sparse initializer
  when they load the model; the file and the graph's MAC count stay sparse.

:func:`onnx_macs` counts multiply-accumulates per sample from the graph alone (shape
inference at batch 1): every ``MatMul``, ``Gemm`` and ``Conv``, dense and counting only
non-zero constant weights (``effective``), so a user can check ``macs`` in a card without
this package. Element-wise operations (the standardisation, ReLU, bias adds) are not MACs.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["OPSET", "SPARSE_MIN_ZEROS", "export_onnx", "onnx_macs", "require_onnx"]

#: The ONNX opset of exported models.
OPSET = 18
#: A 2-D constant weight with at least this fraction of zeros is stored sparse.
SPARSE_MIN_ZEROS = 0.25

_INSTALL_HINT = "ONNX export needs the deploy extra: pip install -e '.[deploy]' (onnx, onnxscript, onnxruntime)"


def require_onnx() -> Any:
    """Import ``onnx`` (and check ``onnxscript``, which torch's exporter needs), or raise one clear ``ImportError``."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter imports it)
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from None
    return onnx


def _constant_arrays(graph: Any) -> dict[str, tuple[tuple[int, ...], int]]:
    """name → (shape, non-zeros) of every dense and sparse initializer (and Constant node)."""
    from onnx import numpy_helper

    out: dict[str, tuple[tuple[int, ...], int]] = {}
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        out[init.name] = (tuple(arr.shape), int(np.count_nonzero(arr)))
    for sparse in graph.sparse_initializer:
        values = numpy_helper.to_array(sparse.values)
        out[sparse.values.name] = (tuple(sparse.dims), int(np.count_nonzero(values)))
    return out


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """Static shapes of every value at batch 1 (onnx shape inference)."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    # Densify sparse initializers for inference: shape inference wants dense initializers.
    for sparse in list(fixed.graph.sparse_initializer):
        from onnx import numpy_helper

        dense = np.zeros(tuple(sparse.dims), dtype=numpy_helper.to_array(sparse.values).dtype)
        dense.flat[numpy_helper.to_array(sparse.indices).reshape(-1)] = numpy_helper.to_array(sparse.values)
        fixed.graph.initializer.append(numpy_helper.from_array(dense, sparse.values.name))
    del fixed.graph.sparse_initializer[:]
    for value in fixed.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param or not dim.dim_value:
                dim.ClearField("dim_param")
                dim.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True)
    shapes: dict[str, tuple[int, ...]] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.dim_value > 0 for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    for init in inferred.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def onnx_macs(model: Any) -> dict[str, Any]:
    """MACs per sample of an ONNX model, from its graph (see the module docstring).

    Returns:
        ``dense`` (every weight counted), ``effective`` (non-zero constant weights only) and
        ``by_op`` (effective MACs per operator type).

    Raises:
        ValueError: If a ``MatMul``/``Gemm``/``Conv`` has a shape shape inference cannot fix.
    """
    from onnx import helper

    graph = model.graph
    shapes = _shapes(model)
    constants = _constant_arrays(graph)
    dense_total, effective_total = 0, 0
    by_op: dict[str, int] = {}
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        a_name, b_name = node.input[0], node.input[1]
        try:
            a_shape, b_shape, out_shape = shapes[a_name], shapes[b_name], shapes[node.output[0]]
        except KeyError as exc:
            raise ValueError(f"ONNX node {node.name or node.op_type}: no static shape for {exc.args[0]!r}") from None
        nnz = constants[b_name][1] if b_name in constants else None
        if node.op_type == "Conv":
            # W: Co x Ci/g x kh x kw; every output position reads one kernel (padding counted).
            positions = int(np.prod(out_shape)) // out_shape[1]
            dense = positions * int(np.prod(b_shape))
            effective = positions * (nnz if nnz is not None else int(np.prod(b_shape)))
        elif node.op_type == "Gemm":
            m = a_shape[1] if attrs.get("transA", 0) else a_shape[0]
            dense = m * int(np.prod(b_shape))
            effective = m * (nnz if nnz is not None else int(np.prod(b_shape)))
        else:  # MatMul, numpy broadcasting: A ... x M x K, B ... x K x N
            k = a_shape[-1]
            dense = int(np.prod(out_shape)) * k
            if nnz is None:
                effective = dense
            else:
                # Each row of A (over all batch dims) meets its batch's slice of B once.
                rows = int(np.prod(a_shape[:-1]))
                slices = int(np.prod(b_shape[:-2])) if len(b_shape) > 2 else 1
                effective = rows // slices * nnz
        dense_total += dense
        effective_total += effective
        by_op[node.op_type] = by_op.get(node.op_type, 0) + effective
    return {"dense": dense_total, "effective": effective_total, "by_op": by_op}


def _sparsify(model: Any, min_zeros: float) -> list[str]:
    """Move mostly-zero 2-D weights of ``Gemm``/``MatMul`` nodes into sparse initializers."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {n.input[1] for n in graph.node if n.op_type in ("Gemm", "MatMul") and len(n.input) > 1}
    moved = []
    for init in list(graph.initializer):
        if init.name not in weights:
            continue
        arr = numpy_helper.to_array(init)
        if arr.ndim != 2 or arr.size == 0 or float((arr == 0).mean()) < min_zeros:
            continue
        flat = np.flatnonzero(arr)
        values = numpy_helper.from_array(arr.reshape(-1)[flat].astype(arr.dtype), init.name)
        indices = numpy_helper.from_array(flat.astype(np.int64), f"{init.name}.indices")
        graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, list(arr.shape)))
        graph.initializer.remove(init)
        moved.append(init.name)
    return moved


def _name_weights(model: Any) -> None:
    """Give the exporter's folded weights (``mul_10``) the name of their layer (``model.hidden.0.weight``)."""
    graph = model.graph
    names = {i.name for i in graph.initializer}
    renames = {}
    for node in graph.node:
        if node.op_type != "Gemm" or len(node.input) < 3:
            continue
        weight, bias = node.input[1], node.input[2]
        if weight in names and not weight.endswith(".weight") and bias.endswith(".bias"):
            new = bias[: -len(".bias")] + ".weight"
            if new not in names:
                renames[weight] = new
    for init in graph.initializer:
        if init.name in renames:
            init.name = renames[init.name]
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    input_shape: tuple[int, ...],
    metadata: Mapping[str, Any] | None = None,
    sparse_min_zeros: float = SPARSE_MIN_ZEROS,
) -> dict[str, Any]:
    """Write ``model`` (in eval mode, on CPU) as an ONNX file with a dynamic batch axis.

    Args:
        model: The module; a :class:`~trainables.deploy.DeployableModel` for a bundle.
        path: Where to write the ``.onnx`` file.
        input_shape: ``(C, H, W)`` of one sample.
        metadata: Key → JSON-ready value, stored as the model's ``metadata_props``
            (preprocessing, class names, the trial).
        sparse_min_zeros: Store 2-D weights with at least this fraction of zeros sparse.

    Returns:
        ``opset``, ``sparse_initializers`` (names), ``macs`` (:func:`onnx_macs`) and ``ops``
        (node count per operator type).

    Raises:
        ImportError: Without the deploy extra.
    """
    onnx = require_onnx()
    model = model.eval().cpu()
    example = torch.rand((2, *input_shape))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            None,
            dynamo=True,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    proto = program.model_proto
    _name_weights(proto)
    sparse = _sparsify(proto, sparse_min_zeros)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value)
    proto.producer_name = "g2g-sne-search"
    onnx.checker.check_model(proto)
    Path(path).write_bytes(proto.SerializeToString())
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"opset": OPSET, "sparse_initializers": sparse, "macs": onnx_macs(proto), "ops": ops}
