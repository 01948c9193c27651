"""SNE energy accounting: toy networks whose energy is computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trainables.costs import model_costs, snn_energy_uj, snn_layer_ops
from trainables.data import DataInfo
from trainables.energy import energy_model
from trainables.sne.adaptive import dynamic_cost, run_students, subset_cost
from trainables.sne.config import NeuronConfig, StudentConfig, TeacherConfig
from trainables.sne.students import SpikingEnsemble, SpikingStudent, student_cost_plan
from trainables.sne.teacher import build_teacher

FP32 = energy_model("fp32_45nm")


def test_snn_layer_ops_split_real_and_spiking_layers():
    # Layer 0 real-valued: 12 MACs, computed once (its input is the same at every step);
    # layer 1: rate 0.5 x 3 steps x 6 MACs = 9 synops.
    assert snn_layer_ops([12, 6], [None, 0.5], 3) == pytest.approx((12.0, 9.0))
    with pytest.raises(ValueError):
        snn_layer_ops([12, 6], [None], 3)


def _toy_ensemble() -> SpikingEnsemble:
    """One MLP student (4 inputs -> 3 LIF -> 2 outputs), T = 2, head 2 -> 3 classes."""
    neuron = NeuronConfig(timesteps=2, beta=1.0, threshold=1.0)
    student = SpikingStudent(StudentConfig(shape="mlp", width=3, depth=1), neuron, (1, 1, 4), out_dim=2)
    with torch.no_grad():
        # Input x = 0.5 everywhere: currents 2.0 (fires at t1 and t2), -0.2 (never), 0.6 (fires at t2).
        # No zero weights: MACs count non-zero connections only.
        student.layers[0].weight.copy_(torch.tensor([[1.0] * 4, [-0.1] * 4, [0.3] * 4]))
        student.layers[0].bias.zero_()
    head = nn.Linear(2, 3)
    parts = [np.array([0, 1])]
    return SpikingEnsemble([student], head, parts, torch.zeros(2), torch.ones(2), active=1)


def test_energy_of_a_toy_spiking_network_equals_the_hand_computation():
    ensemble = _toy_ensemble()
    plan = student_cost_plan(ensemble.students[0], (1, 1, 4))
    assert plan.layer_macs == (12, 6)  # 4 x 3 hidden, 3 x 2 readout, per timestep
    assert plan.sources == (None, 0) and plan.neurons == (3,)
    x = torch.full((5, 1, 1, 4), 0.5)
    out = run_students(ensemble, x, torch.zeros(5, dtype=torch.long))
    assert out.spikes[0].tolist() == [[3.0] * 5]  # 2 + 0 + 1 spikes per sample
    cost = subset_cost(out, [plan], [0])
    # Real-valued MACs: first layer 12 (once), head 2 dims x 3 classes = 6   -> 18 x 4.6 pJ = 82.8 pJ
    # Synops: rate 3 / (2 steps x 3 neurons) = 0.5 -> 0.5 x 2 x 6 = 6          ->  6 x 0.9 pJ =  5.4 pJ
    assert cost.macs == pytest.approx(18.0)
    assert cost.synops == pytest.approx(6.0)
    assert cost.spike_rate == pytest.approx(0.5)
    assert cost.energy_uj(FP32) == pytest.approx(88.2e-6)
    assert cost.energy_uj(FP32) == pytest.approx(snn_energy_uj(18, 6, FP32))


def test_conv_student_counts_per_timestep_macs_of_each_layer():
    neuron = NeuronConfig(timesteps=3)
    student = SpikingStudent(StudentConfig(shape="conv", channels=2, depth=2), neuron, (1, 4, 4), out_dim=5)
    plan = student_cost_plan(student, (1, 4, 4))
    # conv 1->2 3x3 at 4x4: 2*9*16 = 288; conv 2->4 3x3 stride 2 at 2x2: 4*2*9*4 = 288;
    # readout 4 channels x 2x2 = 16 -> 5: 80.
    assert plan.layer_macs == (288, 288, 80)
    assert plan.neurons == (2 * 16, 4 * 4)
    assert plan.sources == (None, 0, 1)
    real, syn = plan.ops([0.0, 0.0])
    assert real == 288 and syn == 0.0  # no spikes: only the real-valued first layer costs
    real, syn = plan.ops([3 * 32 * 0.25, 3 * 16 * 0.5])  # rates 0.25 and 0.5
    assert syn == pytest.approx(0.25 * 3 * 288 + 0.5 * 3 * 80)


def test_dynamic_cost_weights_students_by_the_samples_that_ran_them():
    torch.manual_seed(0)
    neuron = NeuronConfig(timesteps=2)
    students = [SpikingStudent(StudentConfig(width=4), neuron, (1, 1, 3), out_dim=1) for _ in range(2)]
    ensemble = SpikingEnsemble(students, nn.Linear(2, 2), [np.array([0]), np.array([1])], torch.zeros(2), torch.ones(2), active=2)
    plans = [student_cost_plan(s, (1, 1, 3)) for s in students]
    out = run_students(ensemble, torch.randn(8, 1, 1, 3), torch.zeros(8, dtype=torch.long))
    everyone = torch.full((8,), 2)
    assert dynamic_cost(out, plans, [0, 1], everyone).macs == pytest.approx(subset_cost(out, plans, [0, 1]).macs)
    first_only = torch.ones(8, dtype=torch.long)
    assert dynamic_cost(out, plans, [0, 1], first_only).macs == pytest.approx(subset_cost(out, plans, [0]).macs)
    half = torch.tensor([1, 2] * 4)
    # Each student: first layer 3 x 4 MACs = 12 (once), head 1 dim x 2 classes = 2 -> 14; the
    # second runs on half of the samples.
    assert subset_cost(out, plans, [1]).macs == pytest.approx(14.0)
    expected = subset_cost(out, plans, [0]).macs + 0.5 * subset_cost(out, plans, [1]).macs
    assert dynamic_cost(out, plans, [0, 1], half).macs == pytest.approx(expected)


def test_teacher_cnn_macs_and_energy_by_hand():
    info = DataInfo("toy", (1, 4, 4), 3, 1, 1, 1)
    teacher = build_teacher(TeacherConfig(arch="cnn", width=1), info)
    # Stage 1 at 4x4: conv 1->1 (9*16) twice; stage 2 at 2x2: 1->2 (2*9*4), 2->2 (4*9*4);
    # stage 3 at 1x1: 2->4 (8*9), 4->4 (16*9); head 4 -> 3.
    expected = 144 + 144 + 72 + 144 + 72 + 144 + 12
    assert model_costs(teacher, info.input_shape).macs == expected
    assert model_costs(teacher, info.input_shape).energy_uj(FP32) == pytest.approx(expected * 4.6e-6)
