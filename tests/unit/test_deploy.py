"""Deployable bundles: natural-unit inputs, ``load_bundle``, idempotent export, ONNX for G2G.

The bundles come from really trained G2GNet trials (``tests/unit/test_analysis_select.py``'s run
dir); onnxruntime runs the exported graphs on scikit-learn's digits in natural units (counts
/ 16), and the card's snippets are run as pasted, in a fresh interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from analysis.results import analyze_run, load_run
from analysis.bundle import load_bundle
from analysis.export import export_bundle, natural_splits
from analysis.select import select_trials
from analysis.select.__main__ import main
from search.space import trial_config
from tests.unit.test_analysis_select import trained_run
from trainables.data import DataInfo, load_splits
from trainables.deploy import DeployableModel, Preprocessing, measure_latency, natural_inputs
from trainables.g2g.block import BlockSparseLinear
from trainables.g2g.export import inference_copy
from trainables.g2g.family import ENTRY as G2G
from trainables.costs import model_costs
from trainables.onnx_export import export_onnx, onnx_macs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory.mktemp("deploy"))


def _digits_natural(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # the documented units: counts / 16
    return (x, bunch.target) if n is None else (x[:n], bunch.target[:n])


# ---------------------------------------------------------------------------------------------
# The deployable model and its preprocessing
# ---------------------------------------------------------------------------------------------


def test_deployable_model_takes_natural_units_and_matches_the_trained_network():
    splits = load_splits({"name": "digits", "val_fraction": 0.2})
    prep = Preprocessing.from_splits(splits)
    assert prep.input_shape == (1, 8, 8) and prep.class_names == tuple("0123456789")
    assert prep.value_range == (0.0, 1.0) and "counts 0..16 divided by 16" in prep.natural_units
    # The statistics are the training split's: standardised training inputs have mean 0, std 1.
    assert prep.mean[0] == pytest.approx(float(natural_inputs(splits, "train").mean()), abs=1e-6)
    cfg = G2G.resolve({"model.width": 32, "model.groups": 4})
    net = G2G.build_model(cfg, splits.info).eval()
    model = DeployableModel(net, prep).eval()
    with torch.no_grad():
        on_natural = model(natural_inputs(splits, "val"))
        on_standardised = net(splits.x_val)
    assert torch.allclose(on_natural, on_standardised, atol=1e-5)
    # The raw digits counts (0..16), the mistake the units line warns about, give other logits.
    with torch.no_grad():
        assert not torch.allclose(model(natural_inputs(splits, "val") * 16), on_standardised, atol=1e-2)
    with pytest.raises(ValueError, match=r"N x 1 x 8 x 8"):
        model(torch.rand(2, 64))
    assert Preprocessing.from_json(prep.to_json()) == prep


def test_npz_class_names_are_read_and_checked(tmp_path):
    from trainables.data import DataError, check_available

    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.random((20, 4), dtype=np.float32), y_train=np.arange(20) % 3,
                  x_test=rng.random((6, 4), dtype=np.float32), y_test=np.arange(6) % 3)
    np.savez(tmp_path / "ok.npz", **arrays, class_names=np.array(["cat", "dog", "eel"]))
    info = check_available({"name": "npz", "path": str(tmp_path / "ok.npz")})
    assert info.class_names == ("cat", "dog", "eel") and "as stored" in info.natural_units
    np.savez(tmp_path / "bad.npz", **arrays, class_names=np.array(["cat", "dog"]))
    with pytest.raises(DataError, match="class_names must be 3 strings"):
        check_available({"name": "npz", "path": str(tmp_path / "bad.npz")})


def test_measure_latency_reports_medians_and_the_device():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    out = measure_latency(net, (1, 8, 8), "cpu", threads=1, repeats=5, budget_s=0.05)
    assert out["latency_ms"] > 0 and out["throughput_sps"] > 0
    assert out["latency_device"] == "cpu (1 thread)"
    assert torch.get_num_threads() >= 1 and net.training  # settings and mode restored


# ---------------------------------------------------------------------------------------------
# ONNX: graph structure and MACs counted from it
# ---------------------------------------------------------------------------------------------

_INFO = DataInfo("synthetic", (3, 16, 16), 10, 0, 0, 0)
_PREP = Preprocessing("synthetic", (3, 16, 16), "floats", (0.0, 1.0), (0.4, 0.5, 0.6), (0.2, 0.3, 0.25), tuple("abcdefghij"))


@pytest.mark.parametrize(
    "model",
    [
        {"model.granularity": "block", "model.grouping": "mixer"},
        {"model.granularity": "block", "model.grouping": "index", "model.frontend": "patch"},
        {"model.granularity": "edge", "model.grouping": "random"},
        {"model.kind": "er", "model.granularity": "edge"},
        {"model.kind": "dense"},
    ],
    ids=["block-mixer", "block-patch", "edge", "er", "dense"],
)
def test_onnx_export_matches_pytorch_and_counts_our_macs(model, tmp_path):
    cfg = G2G.resolve({"model.kind": "g2g", "model.groups": 4, "model.width": 64, "model.depth": 2, "seed": 3, **model})
    net = G2G.build_model(cfg, _INFO).eval()
    deployable = DeployableModel(net, _PREP).eval()
    info = export_onnx(inference_copy(deployable), tmp_path / "m.onnx", _PREP.input_shape)
    proto = onnx.load(tmp_path / "m.onnx")
    assert proto.opset_import[0].version >= 17
    x = torch.rand(33, *_PREP.input_shape)  # a batch size the export never saw
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(logits, deployable(x).numpy(), atol=1e-4)
    # MACs from the graph alone equal the sweep's count of active connections.
    assert info["macs"]["effective"] == onnx_macs(proto)["effective"] == model_costs(net, _PREP.input_shape).macs
    blocks = [m for m in net.hidden if isinstance(m, BlockSparseLinear)]
    dense_inits = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    if blocks:
        # Gather + batched MatMul of the blocks: the block weights as they are, no dense matrix.
        for layer in blocks:
            assert tuple(layer.weight.shape) in dense_inits.values()
            assert (layer.out_features, layer.in_features) not in dense_inits.values()
        assert info["ops"]["MatMul"] == len(blocks) and info["ops"]["Gather"] >= len(blocks)
    if cfg.model.granularity == "edge" and not cfg.model.is_dense:
        # Masked weights: only their non-zeros are stored.
        assert len(proto.graph.sparse_initializer) == cfg.model.depth
        for sparse in proto.graph.sparse_initializer:
            assert len(sparse.values.float_data) or sparse.values.raw_data
            assert onnx.numpy_helper.to_array(sparse.values).size < np.prod(sparse.dims)
    if cfg.model.is_dense:
        assert not proto.graph.sparse_initializer and info["macs"]["effective"] == info["macs"]["dense"]


# ---------------------------------------------------------------------------------------------
# Bundles
# ---------------------------------------------------------------------------------------------


def test_bundle_onnx_classifies_digits_in_natural_units_as_recorded(trained, tmp_path):
    front = analyze_run(trained)
    bundle = export_bundle(select_trials(front, knee=True), 0, tmp_path / "bundles")
    row = front.row(select_trials(front, knee=True).picks[0])
    run = load_run(trained)
    config = trial_config(run.spec, run.trial_params(row))
    splits = natural_splits(config["data"])
    session = onnxruntime.InferenceSession(str(bundle.path / "model.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": splits.x_val.numpy()})[0]
    with torch.no_grad():
        torch_logits = load_bundle(bundle.path)(splits.x_val).numpy()
    np.testing.assert_allclose(logits, torch_logits, atol=1e-4)
    accuracy = float((logits.argmax(1) == splits.y_val.numpy()).mean())
    assert accuracy == row["val_accuracy"]  # exactly: the same predictions
    assert bundle.portable["val_accuracy"] == accuracy
    # The graph carries its preprocessing contract for users without this package.
    meta = {p.key: p.value for p in onnx.load(bundle.path / "model.onnx").metadata_props}
    assert json.loads(meta["preprocessing"])["class_names"] == list("0123456789")
    card = (bundle.path / "card.md").read_text()
    assert f"| counted from the ONNX graph, non-zero weights | {int(row['macs'])} |" in card
    # The card describes block layers only where the graph has them.
    blocks = any(op in bundle.portable["ops"] for op in ("Gather", "MatMul"))
    assert ("Block layers are gathers and batched MatMuls" in card) == blocks
    if bundle.portable.get("neurobench"):
        figures = bundle.portable["neurobench"]
        assert figures["accuracy"] == pytest.approx(accuracy) and figures["effective_macs"] <= row["macs"]
        assert "NeuroBench's figures" in card
    # scikit-learn's own digits, as the card says to feed them, are classified as well as recorded
    # (they include the training split, so a little better is fine); raw counts are not.
    x, y = _digits_natural()
    predicted = session.run(None, {"input": x})[0].argmax(1)
    assert (predicted == y).mean() >= row["val_accuracy"] - 0.03
    raw = session.run(None, {"input": x * 16})[0].argmax(1)
    assert (raw == y).mean() < (predicted == y).mean() - 0.05


def test_load_bundle_needs_neither_the_sweep_nor_its_data(trained, tmp_path, monkeypatch):
    front = analyze_run(trained)
    bundle = export_bundle(select_trials(front, prefer="val_accuracy"), 0, tmp_path / "bundles", portable=False)
    moved = tmp_path / "elsewhere" / bundle.path.name
    moved.parent.mkdir()
    bundle.path.rename(moved)

    def no_data(*args, **kwargs):
        raise AssertionError("load_bundle must not load the data set")

    monkeypatch.setattr("trainables.data.load_splits", no_data)
    monkeypatch.setattr("trainables.data.check_available", no_data)
    model = load_bundle(moved)
    x, y = _digits_natural()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    assert accuracy >= bundle.recorded["val_accuracy"] - 0.03
    assert model.class_names == tuple("0123456789") and model.input_shape == (1, 8, 8)


@pytest.mark.e2e  # the select command and each snippet in a fresh Python process, as a user pastes them
def test_card_snippets_run_as_pasted(trained, tmp_path):
    front = analyze_run(trained)
    selection = select_trials(front, knee=True)
    # Exported with a relative path, as the README's command does, from the user's directory.
    cwd = tmp_path / "user"
    cwd.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "analysis.select", str(trained), "--knee", "--export", "bundles"],
        cwd=cwd, capture_output=True, text=True, env=_env(), timeout=300,
    )
    assert result.returncode == 0, result.stderr
    card = (cwd / "bundles" / f"trained-{front.row(selection.picks[0])['trial_id']}" / "card.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert len(snippets) == 2  # PyTorch, onnxruntime
    assert len(snippets[0].strip().splitlines()) == 5
    for snippet in snippets:
        run = subprocess.run([sys.executable, "-c", snippet], cwd=cwd, capture_output=True, text=True, env=_env(), timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip(), snippet


def _env() -> dict:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_readme_select_commands_run_one_after_the_other_and_reexport_is_idempotent(trained, tmp_path, capsys):
    out = tmp_path / "bundles"
    front = analyze_run(trained)
    knee = front.row(select_trials(front, knee=True).picks[0])["trial_id"]
    best = front.row(select_trials(front, ["energy_uj <= 2"], prefer="val_accuracy").picks[0])["trial_id"]
    assert main([str(trained), "--where", "energy_uj <= 2", "--prefer", "val_accuracy", "--export", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in (out / f"trained-{best}").iterdir() if p.suffix in (".json", ".md", ".yaml")}
    state = torch.load(out / f"trained-{best}" / "model.pt", weights_only=True)
    assert main([str(trained), "--knee", "--export", str(out)]) == 0
    assert main([str(trained), "--where", "energy_uj <= 2", "--prefer", "val_accuracy", "--export", str(out)]) == 0
    text = capsys.readouterr().out
    if knee == best:
        assert "replaced the earlier export of this trial" in text
    again = {p.name: p.read_bytes() for p in (out / f"trained-{best}").iterdir() if p.suffix in (".json", ".md", ".yaml")}
    assert again == first  # the same bundle, byte for byte
    reloaded = torch.load(out / f"trained-{best}" / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], reloaded[k]) for k in state)


def test_a_directory_holding_another_trials_bundle_needs_overwrite(trained, tmp_path, capsys):
    front = analyze_run(trained)
    selection = select_trials(front, top=2)
    first = export_bundle(selection, 0, tmp_path / "b", portable=False, evaluate=False)
    # Put the second pick's bundle where the first one is, as a user renaming folders might.
    other = export_bundle(selection, 1, tmp_path / "c", portable=False, evaluate=False)
    target = tmp_path / "b" / other.path.name
    first.path.rename(target)
    code = main([str(trained), "--top", "2", "--export", str(tmp_path / "b"), "--no-eval", "--no-portable"])
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and f"trial {first.trial_id}" in err
    assert json.loads((target / "metrics.json").read_text())["trial_id"] == first.trial_id  # untouched
    assert main([str(trained), "--top", "2", "--export", str(tmp_path / "b"), "--no-eval", "--no-portable", "--overwrite"]) == 0
    assert json.loads((target / "metrics.json").read_text())["trial_id"] == other.trial_id
    assert "replaced another trial's bundle" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# NeuroBench on a G2G net
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("granularity", ["block", "edge"])
def test_neurobench_sees_our_connectivity_and_dense_count(granularity, tmp_path):
    pytest.importorskip("neurobench", reason="pip install --no-deps neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    from trainables.g2g.export import neurobench_module

    cfg = G2G.resolve({"model.kind": "g2g", "model.granularity": granularity, "model.groups": 4, "model.width": 64, "model.depth": 2, "model.grouping": "mixer"})
    net = G2G.build_model(cfg, _INFO).eval()
    deployable = DeployableModel(net, _PREP).eval()
    sequential = neurobench_module(deployable)
    x = torch.rand(40, *_PREP.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(sequential(x), deployable(x), atol=1e-5, rtol=1e-5)
    bench = Benchmark(
        TorchModel(sequential), DataLoader(TensorDataset(x, torch.zeros(40, dtype=torch.long)), batch_size=16), [], [lambda p: p.argmax(-1)],
        [[ConnectionSparsity], [SynapticOperations, ActivationSparsity]],
    )
    result = bench.run(quiet=True)
    ops = result["SynapticOperations"]
    export = export_onnx(inference_copy(deployable), tmp_path / "m.onnx", _PREP.input_shape)
    total = sum(m.weight.numel() for m in sequential if isinstance(m, torch.nn.Linear))
    # NeuroBench's dense count is every weight of the dense-shaped layers: the ONNX graph's
    # dense count for masked layers; block layers' graph never holds the zeros at all.
    assert ops["Dense"] == total
    if granularity == "edge":
        assert ops["Dense"] == export["macs"]["dense"]
    else:
        assert export["macs"]["dense"] == export["macs"]["effective"] < total
    # Its connection sparsity is our connectivity's.
    active = sum(int(m.connection_mask().sum()) for m in net.hidden) + net.classifier.weight.numel()
    assert result["ConnectionSparsity"] == pytest.approx(round(1 - active / total, 4), abs=1e-4)
    # NeuroBench skips zero activations (post-ReLU zeros); we count every active connection.
    relu_outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: relu_outputs.append(o)) for m in sequential if isinstance(m, torch.nn.ReLU)]
    with torch.no_grad():
        sequential(x)
    for hook in hooks:
        hook.remove()
    zeros = sum(int((o == 0).sum()) for o in relu_outputs) / sum(o.numel() for o in relu_outputs)
    assert result["ActivationSparsity"] == pytest.approx(zeros, abs=1e-6)
    assert ops["Effective_MACs"] <= model_costs(net, _PREP.input_shape).macs
    assert ops["Effective_ACs"] == 0  # real-valued activations: no accumulate-only work


def test_a_re_export_keeps_the_seed_re_training_it_does_not_recompute(trained, tmp_path, capsys):
    """Issue 24: exporting the same trial again deleted ``seeds/`` and its card section."""
    from dataclasses import replace

    from analysis.bundle import SEEDS_DIR, SeedCheck
    from analysis.card import write_card

    front = analyze_run(trained)
    bundle = export_bundle(select_trials(front, knee=True), 0, tmp_path / "b", portable=False, evaluate=False)
    # What --verify-seeds 3 leaves: the re-training's run dir and the card's section.
    (bundle.path / SEEDS_DIR / "verify").mkdir(parents=True)
    (bundle.path / SEEDS_DIR / "verify" / "trials.parquet").write_bytes(b"rows")
    rows = tuple({"seed": s, "val_accuracy": 0.9 + s / 100} for s in (0, 1, 2))
    check = SeedCheck(seeds=(0, 1, 2), rows=rows, summary={"val_accuracy": {"mean": 0.91, "std": 0.008, "n": 3}}, run_dir=str(bundle.path / SEEDS_DIR / "verify"))
    write_card(replace(bundle, seeds=check))
    card_before = (bundle.path / "card.md").read_text()
    assert "0.91 ± 0.008" in card_before
    assert main([str(trained), "--knee", "--export", str(tmp_path / "b"), "--no-eval", "--no-portable"]) == 0
    assert "kept its 3-seed re-training in seeds/" in capsys.readouterr().out
    assert (bundle.path / SEEDS_DIR / "verify" / "trials.parquet").read_bytes() == b"rows"
    assert json.loads((bundle.path / "metrics.json").read_text())["seeds"]["seeds"] == [0, 1, 2]
    assert (bundle.path / "card.md").read_text() == card_before
