"""Options of SNE students: learnable leak and threshold, batch norm folded for inference, stride-2 stem, pooled readout.

Each option is checked at its mechanism (values, gradients, folding) and through a real trial:
a student trained with it reports every contract key, and its energy is the one counted from
its measured spikes.
"""

from __future__ import annotations

import math

import pytest
import torch

from tests.unit.test_sne_trainable import run_trial, tiny_config
from trainables.report import BASE_KEYS
from trainables.sne.adaptive import SubsetCurve
from trainables.sne.config import NeuronConfig, StudentConfig
from trainables.sne.family import SNE_REPORT_KEYS
from trainables.sne.spiking import LIF
from trainables.sne.students import SpikingStudent, student_cost_plan

E_MAC_UJ, E_AC_UJ = 4.6e-6, 0.9e-6  # fp32 at 45 nm, in µJ


def test_learnable_lif_starts_at_the_given_values_and_matches_the_fixed_neuron():
    torch.manual_seed(0)
    currents = torch.randn(5, 7, 3) * 1.5
    fixed, learnt = LIF(beta=0.8, threshold=0.7), LIF(beta=0.8, threshold=0.7, learnable=True)
    assert learnt.beta == pytest.approx(0.8, abs=1e-6) and learnt.threshold == pytest.approx(0.7, abs=1e-6)
    assert torch.equal(fixed(currents), learnt(currents))
    assert [name for name, _ in learnt.named_parameters()] == ["beta_logit", "threshold_raw"]
    assert list(fixed.parameters()) == []
    # A perfect integrator (beta = 1) is kept just inside the open interval of the sigmoid.
    assert 0.99 < LIF(beta=1.0, learnable=True).beta < 1.0


def test_learnable_lif_gets_gradient_for_leak_and_threshold_and_stays_in_range():
    torch.manual_seed(0)
    lif = LIF(beta=0.9, threshold=1.0, learnable=True)
    currents = torch.rand(4, 32, 16)
    lif(currents).mean().backward()
    assert lif.beta_logit.grad is not None and lif.beta_logit.grad != 0
    assert lif.threshold_raw.grad is not None and lif.threshold_raw.grad < 0, "a higher threshold must lower the spike rate"
    with torch.no_grad():  # far steps cannot leave the valid ranges
        lif.beta_logit.fill_(40.0)
        lif.threshold_raw.fill_(-40.0)
    assert 0 < lif.beta <= 1 and lif.threshold > 0


@pytest.mark.parametrize("shape", ["mlp", "conv"])
def test_batch_norm_folds_into_the_layer_exactly(shape):
    torch.manual_seed(0)
    cfg = StudentConfig(shape=shape, width=6, channels=3, depth=2, norm="batch")
    student = SpikingStudent(cfg, NeuronConfig(timesteps=3), (1, 6, 6), out_dim=4)
    student.train()
    for _ in range(3):  # move the running statistics away from (0, 1)
        student(torch.rand(16, 1, 6, 6) * 3)
    with torch.no_grad():
        for norm in student.norms:
            norm.weight.uniform_(0.5, 2.0)
            norm.bias.uniform_(-1.0, 1.0)
    student.eval()
    x = torch.rand(8, 1, 6, 6)
    h = x.flatten(1) if shape == "mlp" else x
    weight, bias = student.folded_layer(0)
    folded = torch.nn.functional.linear(h, weight, bias) if shape == "mlp" else torch.nn.functional.conv2d(h, weight, bias, padding=1)
    torch.testing.assert_close(folded, student.norms[0](student.layers[0](h)))
    # The folded layer has the layer's shape: batch norm adds no operation to the cost plan.
    plain = SpikingStudent(StudentConfig(shape=shape, width=6, channels=3, depth=2), NeuronConfig(timesteps=3), (1, 6, 6), out_dim=4)
    assert student_cost_plan(student, (1, 6, 6)).layer_macs == student_cost_plan(plain, (1, 6, 6)).layer_macs
    assert student.training is False, "counting costs keeps the module's mode"


@pytest.mark.parametrize(
    "options",
    [
        {"sne": {"learn_neuron": True}},
        {"student": {"shape": "conv", "channels": 4, "depth": 2, "norm": "batch"}},
        {"student": {"shape": "conv", "channels": 4, "depth": 2, "stem_stride": 2, "readout": "pool", "init": "scratch"}},
        {"student": {"shape": "mlp", "width": 16, "norm": "batch", "init": "ann_bridge", "bridge_epochs": 1}, "sne": {"learn_neuron": True, "kl_weight": 1.0}},
        {"student": {"shape": "conv", "channels": 4, "depth": 2, "init": "ann_bridge", "bridge_epochs": 1}, "sne": {"augment": "shift"}},
    ],
    ids=["learn_neuron", "conv+batch_norm", "conv+stem2+pool+scratch", "mlp+batch_norm+learn+bridge+kl", "conv+bridge+shift"],
)
def test_a_trial_with_the_option_reports_the_contract_and_energy_from_its_spikes(options, tmp_path):
    config = tiny_config(tmp_path / "cache", budget={"epochs": 2})
    for section, values in options.items():
        config[section] = {**config[section], **values}
    reports, _ = run_trial(config, tmp_path / "trial")
    assert [r["epoch"] for r in reports] == [1, 2]
    for r in reports:
        assert not [k for k in (*BASE_KEYS, *SNE_REPORT_KEYS) if k not in r]
        assert math.isfinite(r["val_loss"]) and 0 < r["spike_rate"] < 1 and r["synops"] > 0
        # Energy = real-valued MACs at E_MAC + measured synaptic operations at E_AC.
        assert r["energy_uj"] == pytest.approx(r["macs"] * E_MAC_UJ + r["synops"] * E_AC_UJ, rel=1e-6)
    assert reports[1]["distill_mse"] < reports[0]["distill_mse"], "the students learn their feature slices"
    curve = SubsetCurve.from_json(reports[-1]["curve"])
    assert curve.energy_uj == sorted(curve.energy_uj) and len(set(curve.energy_uj)) == 3, "each student adds energy"


def test_learnt_neuron_parameters_move_and_travel_in_the_state_dict(tmp_path):
    from trainables.sne.trainable import SNETraining

    run = SNETraining(tiny_config(tmp_path / "cache", sne={"learn_neuron": True}, student={"depth": 2}))
    before = [(lif.beta, lif.threshold) for s in run.ensemble.students for lif in s.lifs]
    run.train_epoch()
    after = [(lif.beta, lif.threshold) for s in run.ensemble.students for lif in s.lifs]
    assert all(b != a for b, a in zip(before, after))
    state = run.ensemble.state_dict()
    assert "students.0.lifs.1.beta_logit" in state and "students.0.lifs.1.threshold_raw" in state


def test_stride_two_stem_and_pooled_readout_shapes_and_costs():
    neuron = NeuronConfig(timesteps=2)
    flat = SpikingStudent(StudentConfig(shape="conv", channels=4, depth=2), neuron, (1, 28, 28), out_dim=5)
    stem = SpikingStudent(StudentConfig(shape="conv", channels=4, depth=2, stem_stride=2), neuron, (1, 28, 28), out_dim=5)
    pooled = SpikingStudent(StudentConfig(shape="conv", channels=4, depth=2, stem_stride=2, readout="pool"), neuron, (1, 28, 28), out_dim=5)
    x = torch.rand(3, 1, 28, 28)
    assert flat(x).shape == stem(x).shape == pooled(x).shape == (3, 5)
    plans = [student_cost_plan(s, (1, 28, 28)) for s in (flat, stem, pooled)]
    # 28x28 -> 14x14 (-> 7x7): the stem's first layer has a quarter of the neurons and MACs.
    assert plans[0].neurons == (4 * 28 * 28, 8 * 14 * 14) and plans[1].neurons == (4 * 14 * 14, 8 * 7 * 7)
    assert plans[1].layer_macs[0] * 4 == plans[0].layer_macs[0]
    assert stem.readout.in_features == 8 * 7 * 7 and pooled.readout.in_features == 8
    # Pooled: the readout maps 8 channel rates (8 x 5 MACs), and pooling adds one accumulate per
    # spike of the last layer, charged at the measured rate like every spike-fed layer.
    assert plans[2].layer_macs == (*plans[1].layer_macs[:2], 8 * 5, 8 * 7 * 7)
    assert plans[2].sources == (None, 0, 1, 1)
    real, synops = plans[2].ops([0.5 * 2 * n for n in plans[2].neurons])  # rate 0.5 everywhere
    assert real == plans[2].layer_macs[0]
    assert synops == pytest.approx(0.5 * 2 * sum(plans[2].layer_macs[1:]))


def test_shift_moves_each_sample_within_two_pixels_without_mirroring():
    from trainables.data import shift_batch

    # A single bright pixel per sample: after the shift it sits within 2 pixels of where it was.
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    gen = torch.Generator().manual_seed(0)
    out = shift_batch(x, gen)
    assert torch.equal(out, shift_batch(x, torch.Generator().manual_seed(0))), "seeded: the same offsets"
    offsets = set()
    for sample in out:
        (r, c) = torch.nonzero(sample[0]).tolist()[0]
        assert abs(r - 4) <= 2 and abs(c - 4) <= 2 and sample.sum() == 1.0
        offsets.add((r - 4, c - 4))
    assert len(offsets) > 10, "samples get different offsets"
    # An asymmetric image is moved, never mirrored: its content stays in the same order.
    ramp = torch.arange(1.0, 10.0).expand(8, 1, 9, 9).clone()
    moved = shift_batch(ramp, gen)
    nonzero = moved[moved > 0].view(-1)
    for row in moved[:, 0]:
        for line in row:
            values = line[line > 0]
            assert torch.all(values[1:] > values[:-1])
    assert nonzero.numel() > 0
    # 1-D signals (H = 1) move along W only.
    signal = torch.zeros(32, 2, 1, 12)
    signal[:, :, 0, 6] = 1.0
    shifted = shift_batch(signal, gen)
    assert shifted.shape == signal.shape and torch.all(shifted.sum(dim=(2, 3)) == 1.0)
    with pytest.raises(ValueError, match="N x C x H x W"):
        shift_batch(x[0], gen)


def test_shift_distillation_runs_the_teacher_on_the_shifted_inputs(tmp_path):
    from trainables.sne.trainable import SNETraining

    run = SNETraining(tiny_config(tmp_path / "cache", sne={"augment": "shift"}, student={"init": "scratch"}))
    assert run.targets is None, "shifted inputs need the teacher's targets per batch, not the precomputed ones"
    seen: list[torch.Tensor] = []
    handle = run.teacher.model.body.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    run.train_epoch()
    handle.remove()
    samples = torch.cat(seen)
    assert len(samples) == len(run.splits.y_train)
    originals = run.splits.x_train
    unchanged = sum(bool((originals == s).flatten(1).all(dim=1).any()) for s in samples)
    assert unchanged < len(samples) / 2, "the teacher must label the shifted inputs"
    plain = SNETraining(tiny_config(tmp_path / "cache"))
    assert plain.targets is not None


def test_a_misspelt_augment_names_the_field(tmp_path):
    from trainables.sne.trainable import SNETraining

    with pytest.raises(ValueError, match="augment"):
        SNETraining(tiny_config(tmp_path / "cache", sne={"augment": "shfit"}))
