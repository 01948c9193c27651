"""SNE bundles outside PyTorch: ``model.nir`` imported by snntorch, and NeuroBench's counts.

The ensembles are really distilled (a few epochs on digits, tiny teacher) so their students
spike the way trained ones do. snntorch's importer is the outside client: its graph, run for
``T`` steps on natural-unit inputs, must give our logits, and NeuroBench's synaptic
operations, measured on that graph, must equal ours on spike-fed linear layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.results import analyze_run
from analysis.export import export_bundle, natural_splits
from analysis.select import select_trials
from search.space import trial_config
from search.spec import parse_spec
from tests.unit.test_analysis_results import trial, write_run
from trainables.deploy import DeployableModel, Preprocessing, natural_inputs
from trainables.sne.family import ENTRY as SNE
from analysis.card import CARD_STYLE
from trainables.report import format_number
from trainables.sne.nir_export import ensemble_graph, import_nir, neurobench_figures, run_nir
from trainables.sne.trainable import SNETraining
from trainables.sne.students import SpikingEnsemble
from trainables.training import save_state

pytest.importorskip("snntorch")


#: case -> (student section, extra sne keys): plain mlp and conv students, and conv students with
#: every option the exported graph must carry (stride-2 stem, batch norm folded into the weights,
#: pooled readout written as one affine map,
#: learnt per-layer leak and threshold).
CASES = {
    "mlp": ({"shape": "mlp", "width": 32, "depth": 2}, {}),
    "conv": ({"shape": "conv", "channels": 4, "depth": 2}, {}),
    "conv_options": ({"shape": "conv", "channels": 4, "depth": 2, "stem_stride": 2, "norm": "batch", "readout": "pool"}, {"learn_neuron": True}),
}


def _config(case: str) -> dict:
    student, sne = CASES[case]
    return {
        "data": {"name": "digits", "val_fraction": 0.2},
        "teacher": {"arch": "cnn", "width": 8, "epochs": 4, "batch_size": 32, "lr": 1e-2},
        "sne": {"students": 3, "active": 2, "timesteps": 4, "partition": "correlation", **sne},
        "student": student,
        "optim": {"lr": 5e-3},
        "budget": {"epochs": 4},
        "seed": 1,
    }


@pytest.fixture(scope="module", params=list(CASES))
def distilled(request) -> SNETraining:
    run = SNETraining(SNE.resolve(_config(request.param)))
    run.case = request.param
    while run.epoch < run.epochs:
        run.train_epoch()
    # Trained well above chance (0.1); this also fixes the greedy order, as a trial's report does.
    # Four pooled channels are a weak readout on 8x8 digits (about 0.5): the case is about the export.
    assert run.metrics()["val_accuracy"] > (0.4 if request.param == "conv_options" else 0.6)
    return run


def test_nir_graph_imported_by_snntorch_reproduces_our_simulation_exactly(distilled, tmp_path):
    import nir

    model = distilled.deployable().eval()
    x = natural_inputs(distilled.splits, "val")
    ensemble: SpikingEnsemble = model.model
    for k in range(1, ensemble.num_students + 1):
        nir.write(str(tmp_path / "m.nir"), ensemble_graph(model, k))
        ours = model.model(distilled.splits.x_val, k)  # the trainable's own forward, standardised inputs
        theirs = run_nir(tmp_path / "m.nir", x)
        torch.testing.assert_close(theirs, ours.detach(), atol=1e-4, rtol=1e-4)
        assert torch.equal(theirs.argmax(1), ours.argmax(1))
    # Without the patch, snntorch's reading of NIR (reset to zero, fire at v > θ) is another network.
    unpatched = run_nir(tmp_path / "m.nir", x, exact=False)
    assert not torch.allclose(unpatched, theirs, atol=1e-3)


def test_nir_graph_folds_the_standardisation_and_spikes_as_ours(distilled, tmp_path):
    import nir

    model = distilled.deployable().eval()
    graph = ensemble_graph(model)
    assert int(graph.metadata["timesteps"]) == 4
    first_layers = [n for n in graph.nodes if n.endswith(".layers.0")]
    assert len(first_layers) == int(model.model.active)
    shape = model.model.students[0].shape
    assert ("standardize" in graph.nodes) == (shape == "conv")  # exact only outside a padded conv
    # Per-step outputs agree too, not only their mean: the spike trains are the same.
    nir.write(str(tmp_path / "m.nir"), graph)
    steps = run_nir(tmp_path / "m.nir", natural_inputs(distilled.splits, "val")[:64], per_step=True)
    assert steps.shape[0] == 4 and steps.std(dim=0).max() > 0  # outputs do change over time


def test_neurobench_counts_our_synaptic_operations_on_spike_fed_linear_layers(distilled, tmp_path):
    pytest.importorskip("neurobench", reason="pip install --no-deps neurobench")
    import nir

    model = distilled.deployable().eval()
    nir.write(str(tmp_path / "model.nir"), ensemble_graph(model))
    ours = distilled.metrics()
    figures = neurobench_figures(tmp_path, model, natural_inputs(distilled.splits, "val"), distilled.splits.y_val)
    assert figures["accuracy"] == pytest.approx(ours["val_accuracy"], abs=1e-6)
    if model.model.students[0].shape == "mlp":
        # Spike-fed linear layers (hidden layers after the first, readouts): the same count.
        assert figures["effective_acs"] == pytest.approx(ours["synops"], rel=1e-5)
        # NeuroBench sees the LIF layers' outputs: its sparsity is our spike rate's complement.
        assert figures["activation_sparsity"] == pytest.approx(1 - ours["spike_rate"], abs=1e-4)
    else:
        # Convolutions: we count padded MACs × rate (like fvcore), NeuroBench only in-bounds taps.
        assert 0.5 * ours["synops"] < figures["effective_acs"] <= ours["synops"] * 1.0001
    # Real-valued layers run at every step for NeuroBench (first layer, concatenation, head);
    # we count the first layer once (constant input) and the head once (averaged readout).
    assert figures["effective_macs"] > ours["macs"]


def test_sne_bundle_writes_a_nir_file_that_snntorch_runs_to_the_recorded_accuracy(distilled, tmp_path):
    raw = {
        "name": "sne_dist",
        "trainable": "sne",
        "data": _config("mlp")["data"],
        "budget": {"epochs": 3},
        "objectives": [{"metric": "val_accuracy", "mode": "max"}, {"metric": "energy_uj", "mode": "min"}],
        "space": {"seed": {"choice": [1]}},
        "fixed": {k: v for k, v in {
            **{f"teacher.{k}": v for k, v in _config("mlp")["teacher"].items()},
            **{f"sne.{k}": v for k, v in _config(distilled.case)["sne"].items()},
            "optim.lr": 5e-3,
            **{f"student.{k}": v for k, v in _config(distilled.case)["student"].items()},
        }.items()},
        "sampler": {"name": "random"},
        "run": {"num_samples": 1, "seed": 0},
    }
    spec = parse_spec(raw)
    assert trial_config(spec, {"seed": 1})["student"] == distilled.cfg.student.model_dump()
    checkpoint = tmp_path / "sne_dist" / "trial_t0" / "checkpoint_000000"
    save_state(checkpoint, {**distilled.state_dict(), "preprocessing": distilled.deployable().preprocessing.to_json()})
    write_run(tmp_path, [trial("t0", distilled.metrics(), params={"seed": 1}, checkpoint=str(checkpoint))], raw, name="sne_dist")
    bundle = export_bundle(select_trials(analyze_run(tmp_path / "sne_dist")), 0, tmp_path / "bundles")
    assert (bundle.path / "model.nir").is_file() and bundle.portable["format"] == "nir"
    splits = natural_splits(trial_config(spec, {"seed": 1})["data"])
    logits = run_nir(bundle.path / "model.nir", splits.x_val)
    accuracy = float((logits.argmax(1) == splits.y_val).float().mean())
    recorded = bundle.recorded["val_accuracy"]
    assert abs(accuracy - recorded) <= 0.01
    assert bundle.portable["val_accuracy"] == pytest.approx(accuracy)
    card = (bundle.path / "card.md").read_text()
    assert "run_nir(" in card and "model.nir" in card
    teacher = distilled.metrics()["teacher_accuracy"]  # what the ensemble was distilled from
    assert f"teacher validation accuracy (`teacher_accuracy`) | {format_number(teacher, **CARD_STYLE)}" in card
    try:
        import neurobench  # noqa: F401
    except ImportError:  # the hint names the package that is missing, not the deploy extra
        assert "pip install --no-deps neurobench" in card
