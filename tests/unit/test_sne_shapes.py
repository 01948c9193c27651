"""SNE on inputs that are not images: vectors (``N x D``) and 1-D signals (``N x 1 x L``).

The ``.npz`` loader stores every sample as ``C x H x W``: a vector is ``1 x 1 x D`` and a 1-D
signal ``1 x 1 x L``, so ``H == 1`` marks both. There, the ``cnn`` teacher and the conv students
run 1-D (1x3 kernels over ``W``), the ``mlp`` teacher and students take any shape, and the
image-only teachers refuse with one line. Everything here runs on small synthetic ``.npz`` files
written to a temporary folder, through the loader a user's file goes through.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.costs import model_costs
from trainables.data import DataInfo
from trainables.deploy import natural_inputs
from trainables.report import BASE_KEYS
from trainables.sne.config import NeuronConfig, StudentConfig, TeacherConfig
from trainables.sne.family import ENTRY as SNE
from trainables.sne.family import SNE_REPORT_KEYS
from trainables.sne.students import SpikingStudent, student_cost_plan
from trainables.sne.teacher import build_teacher
from trainables.sne.trainable import SNETraining
from tests.unit.test_sne_trainable import run_trial

D, L, CLASSES = 12, 32, 3


def _vectors(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n x D`` Gaussian blobs around three fixed centres."""
    centres = np.random.default_rng(123).normal(size=(CLASSES, D)) * 1.5
    y = rng.integers(0, CLASSES, n)
    return (centres[y] + rng.normal(size=(n, D))).astype(np.float32), y


def _signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n x 1 x L`` noisy sines whose frequency (1, 3 or 6 cycles) is the class."""
    y = rng.integers(0, CLASSES, n)
    t = np.arange(L) / L
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * np.array([1.0, 3.0, 6.0])[y][:, None] * t + phase) + 0.3 * rng.normal(size=(n, L))
    return x[:, None, :].astype(np.float32), y


def _write_npz(path: Path, make) -> Path:
    rng = np.random.default_rng(0)
    x_train, y_train = make(320, rng)
    x_test, y_test = make(80, rng)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


#: case -> (sample maker, teacher arch, student shape, sample shape as the loader yields it)
CASES = {
    "vectors": (_vectors, "mlp", "mlp", (1, 1, D)),
    "signals": (_signals, "cnn", "conv", (1, 1, L)),
}


def _config(npz: Path, case: str, cache_dir: Path | None = None, **sections) -> dict:
    _, teacher, student, _ = CASES[case]
    config = {
        "data": {"name": "npz", "path": str(npz), "val_fraction": 0.25},
        "teacher": {"arch": teacher, "width": 8, "epochs": 4, "batch_size": 32, "lr": 1e-2},
        "sne": {"students": 3, "active": 2, "timesteps": 4, "partition": "correlation"},
        "student": {"shape": student, "width": 32, "channels": 4, "depth": 2},
        "budget": {"epochs": 2},
        "optim": {"lr": 2e-2, "batch_size": 16},
        "cost": {"latency": True},
        "runtime": {"device": "cpu", "threads": 1, "cache_dir": str(cache_dir) if cache_dir else None},
        "seed": 0,
    }
    for key, value in sections.items():
        config[key] = {**config.get(key, {}), **value}
    return config


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread, as trials run (``runtime.threads``): these tiny nets only lose from more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp(f"sne_{request.param}")
    return request.param, _write_npz(tmp / f"{request.param}.npz", CASES[request.param][0])


@pytest.fixture(scope="module")
def distilled(case) -> SNETraining:
    name, npz = case
    run = SNETraining(_config(npz, name))
    while run.epoch < run.epochs:
        run.train_epoch()
    run.metrics()  # fixes the greedy order, as a trial's report does
    return run


# ---- shapes and counted costs ------------------------------------------------------------------


def test_the_loader_yields_vectors_and_signals_as_one_row_samples(distilled, case):
    name, _ = case
    assert distilled.info.input_shape == CASES[name][3]
    assert tuple(distilled.splits.x_val.shape[1:]) == CASES[name][3]


def test_the_cnn_teacher_runs_1d_on_one_row_inputs_and_counts_its_macs_by_hand():
    info = DataInfo("toy", (1, 1, 16), 3, 1, 1, 1)
    teacher = build_teacher(TeacherConfig(arch="cnn", width=2), info)
    convs = [m for m in teacher.body if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in teacher.body if isinstance(m, torch.nn.MaxPool2d)]
    assert {m.kernel_size for m in convs} == {(1, 3)} and {m.padding for m in convs} == {(0, 1)}
    assert [m.kernel_size for m in pools] == [(1, 2), (1, 2)]
    # Stage 1 at W = 16: 1->2 (2*3*16), 2->2 (4*3*16); stage 2 at 8: 2->4 (8*3*8), 4->4 (16*3*8);
    # stage 3 at 4: 4->8 (32*3*4), 8->8 (64*3*4); head 8 -> 3.
    expected = 96 + 192 + 192 + 384 + 384 + 768 + 24
    assert model_costs(teacher, info.input_shape).macs == expected
    x = torch.randn(5, *info.input_shape)
    assert teacher.eval()(x).shape == (5, 3)


@pytest.mark.parametrize("shape", [(1, 1, 12), (1, 1, 32), (1, 8, 8), (3, 4, 5)])
def test_the_mlp_teacher_takes_any_shape_and_counts_its_macs_by_hand(shape):
    info = DataInfo("toy", shape, 3, 1, 1, 1)
    teacher = build_teacher(TeacherConfig(arch="mlp", width=4), info)
    assert teacher.feature_dim == 16
    d_in = math.prod(shape)
    assert model_costs(teacher, shape).macs == d_in * 16 + 16 * 16 + 16 * 3
    batch_norms = [m for m in teacher.body if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(batch_norms) == 2
    teacher.train()
    # A last partial training batch of one sample (n_train % batch_size == 1) must not stop training.
    assert torch.isfinite(teacher(torch.randn(1, *shape))).all()
    assert teacher(torch.randn(4, *shape)).shape == (4, 3)


@pytest.mark.parametrize("arch", ["resnet18", "cornet_s"])
def test_image_only_teachers_refuse_one_row_inputs_in_one_line(arch, tmp_path):
    npz = _write_npz(tmp_path / "signals.npz", _signals)
    with pytest.raises(ValueError) as caught:
        SNETraining(_config(npz, "signals", teacher={"arch": arch}))
    message = str(caught.value)
    assert "\n" not in message
    assert repr(arch) in message and "1 x 1 x 32" in message
    assert "teacher.arch: cnn" in message and "mlp" in message


def test_a_1d_conv_student_uses_1x3_kernels_and_counts_them():
    student = SpikingStudent(StudentConfig(shape="conv", channels=2, depth=3), NeuronConfig(timesteps=3), (1, 1, 16), out_dim=5)
    assert [layer.kernel_size for layer in student.layers] == [(1, 3)] * 3
    assert [layer.stride for layer in student.layers] == [(1, 1), (1, 2), (1, 2)]
    assert [layer.padding for layer in student.layers] == [(0, 1)] * 3
    plan = student_cost_plan(student, (1, 1, 16))
    # conv 1->2 at W 16: 2*3*16 = 96; 2->4 stride 2 at W 8: 8*3*8 = 192; 4->8 at W 4: 32*3*4 = 384;
    # readout 8 channels x 1 x 4 = 32 -> 5: 160.
    assert plan.layer_macs == (96, 192, 384, 160)
    assert plan.neurons == (2 * 16, 4 * 8, 8 * 4)
    assert student.readout.in_features == 32


# ---- a trial ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_trial_on_vectors_or_signals_reports_every_key_finite(name, tmp_path):
    npz = _write_npz(tmp_path / f"{name}.npz", CASES[name][0])
    reports, saved = run_trial(_config(npz, name, tmp_path / "cache"), tmp_path / "trial")
    assert [r["epoch"] for r in reports] == [1, 2] and len(saved) == 2
    keys = [k for k in (*BASE_KEYS, *SNE_REPORT_KEYS) if k != "curve"]
    for report in reports:
        assert not [k for k in (*BASE_KEYS, *SNE_REPORT_KEYS) if k not in report]
        values = {k: report[k] for k in keys if not (k == "test_accuracy" and report["epoch"] < 2)}
        assert not {k: v for k, v in values.items() if not math.isfinite(float(v))}
    last = reports[-1]
    assert last["teacher_accuracy"] > 0.9, "the synthetic classes are easy"
    assert last["val_accuracy"] > 0.6 and last["test_accuracy"] > 0.6  # chance is 1/3
    assert 0 < last["spike_rate"] < 1 and last["synops"] > 0 and last["energy_uj"] > 0
    assert last["latency_ms"] > 0 and last["throughput_sps"] > 0


def _hand_cost(run: SNETraining, name: str) -> tuple[float, float]:
    """``(real-valued MACs, synops)`` per sample of the active students, from their spikes on validation."""
    model, steps = run.ensemble, run.sne.timesteps
    real = synops = 0.0
    for k in [int(i) for i in model.order[: run.sne.active]]:
        student = model.students[k]
        student.start_recording()
        with torch.no_grad():
            student(run.splits.x_val)
        counts = [c.float().mean().item() for c in student.stop_recording()]
        # MACs of one step by hand: 1x3 convs over W = 32 then 16 (conv), 12 -> 32 -> 32 (mlp).
        part = len(model.part(k))
        if name == "signals":
            layer_macs, neurons = [4 * 1 * 3 * 32, 8 * 4 * 3 * 16, 8 * 16 * part], [4 * 32, 8 * 16]
        else:
            layer_macs, neurons = [D * 32, 32 * 32, 32 * part], [32, 32]
        rates = [c / (steps * n) for c, n in zip(counts, neurons)]
        real += layer_macs[0] + part * CLASSES  # first layer once (constant input) and the head's columns
        synops += sum(rate * steps * macs for rate, macs in zip(rates, layer_macs[1:]))
    return real, synops


def test_the_energy_is_counted_from_the_measured_spikes(distilled, case):
    name, _ = case
    run, model, emodel = distilled, distilled.ensemble, distilled.energy
    metrics = run.metrics()
    real, synops = _hand_cost(run, name)
    assert synops > 0
    assert metrics["macs"] == pytest.approx(real)
    assert metrics["synops"] == pytest.approx(synops, rel=1e-6)
    assert metrics["energy_uj"] == pytest.approx((real * emodel.e_mac_pj + synops * emodel.e_ac_pj) * 1e-6, rel=1e-6)
    # Silence every neuron: the spike-fed layers cost nothing, the real-valued ones their MACs.
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            for student in model.students:
                for layer in student.layers:
                    layer.bias.fill_(-1e3)
        silent = run.metrics()
        silent_real, _ = _hand_cost(run, name)
    finally:
        model.load_state_dict(saved)
    assert silent["synops"] == 0 and silent["spike_rate"] == 0
    assert silent["macs"] == pytest.approx(silent_real)
    assert silent["energy_uj"] == pytest.approx(silent_real * emodel.e_mac_pj * 1e-6)
    assert silent["energy_uj"] < metrics["energy_uj"]


# ---- outside PyTorch ----------------------------------------------------------------------------


def test_the_nir_graph_imported_by_snntorch_reproduces_the_logits(distilled, case, tmp_path):
    pytest.importorskip("snntorch")
    import nir

    from trainables.sne.nir_export import NIR_FILE, ensemble_graph, export_files, run_nir

    name, _ = case
    model = distilled.deployable().eval()
    x = natural_inputs(distilled.splits, "val")
    assert tuple(x.shape[1:]) == CASES[name][3]
    for k in range(1, model.model.num_students + 1):
        nir.write(str(tmp_path / "m.nir"), ensemble_graph(model, k))
        ours = model.model(distilled.splits.x_val, k).detach()
        theirs = run_nir(tmp_path / "m.nir", x)
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
        assert torch.equal(theirs.argmax(1), ours.argmax(1))
    facts = export_files(model, tmp_path, {})
    assert facts["file"] == NIR_FILE and facts["students"].count(",") == int(model.model.active) - 1
    graph = nir.read(str(tmp_path / NIR_FILE))  # nir's own type check passes
    if name == "signals":
        # The 1x3 kernels travel as 3x3 ones whose outer rows are zero (nir infers a Conv2d's
        # output from the kernel height alone); the LIF layers have the convs' true shapes.
        convs = [v for k, v in graph.nodes.items() if isinstance(v, nir.Conv2d) and k != "standardize"]
        assert len(convs) == 2 * int(model.model.active)
        for conv in convs:
            assert conv.weight.shape[2:] == (3, 3) and tuple(conv.padding) == (1, 1)
            assert not conv.weight[:, :, [0, 2]].any() and conv.weight[:, :, 1].any()
        lifs = {tuple(v.tau.shape) for v in graph.nodes.values() if isinstance(v, nir.LIF)}
        assert sorted(lifs) == [(4, 1, 32), (8, 1, 16)]
    torch.testing.assert_close(run_nir(tmp_path / NIR_FILE, x), model(x).detach(), atol=1e-4, rtol=1e-4)


def test_a_bundle_of_vectors_or_signals_exports_reloads_and_runs_outside_pytorch(distilled, case, tmp_path):
    pytest.importorskip("snntorch")
    from analysis.results import analyze_run
    from analysis.bundle import load_bundle
    from analysis.export import export_bundle
    from analysis.select import select_trials
    from tests.unit.test_analysis_results import trial, write_run
    from trainables.sne.nir_export import run_nir
    from trainables.training import save_state

    name, npz = case
    config = _config(npz, name)
    raw = {
        "name": f"sne_{name}",
        "trainable": "sne",
        "data": config["data"],
        "budget": config["budget"],
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        "space": {"seed": {"choice": [0]}},
        "fixed": {
            **{f"{section}.{k}": v for section in ("teacher", "sne", "student") for k, v in config[section].items()},
            **{f"optim.{k}": v for k, v in config["optim"].items()},
        },
        "sampler": {"name": "random"},
        "run": {"num_samples": 1, "seed": 0},
    }
    checkpoint = tmp_path / raw["name"] / "trial_t0" / "checkpoint_000000"
    save_state(checkpoint, {**distilled.state_dict(), "preprocessing": distilled.deployable().preprocessing.to_json()})
    write_run(tmp_path, [trial("t0", distilled.metrics(), params={"seed": 0}, checkpoint=str(checkpoint))], raw, name=raw["name"])
    bundle = export_bundle(select_trials(analyze_run(tmp_path / raw["name"])), 0, tmp_path / "bundles")
    assert bundle.portable is not None and "error" not in bundle.portable, bundle.portable
    assert bundle.portable["format"] == "nir" and (bundle.path / "model.nir").is_file()
    assert bundle.reproduced["val_accuracy"] == pytest.approx(bundle.recorded["val_accuracy"], abs=1e-6)
    assert bundle.portable["val_accuracy"] == pytest.approx(bundle.recorded["val_accuracy"], abs=0.01)
    reloaded = load_bundle(bundle.path)
    assert tuple(reloaded.input_shape) == CASES[name][3]
    x = natural_inputs(distilled.splits, "val")
    torch.testing.assert_close(reloaded(x), distilled.deployable().eval()(x).detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(run_nir(bundle.path / "model.nir", x), reloaded(x), atol=1e-4, rtol=1e-4)
