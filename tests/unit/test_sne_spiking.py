"""LIF neurons: traces match a hand computation; the surrogate gradient is non-zero and finite."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.sne.spiking import LIF, ArctanSpike, arctan_surrogate_grad, lif_sequence
from trainables.sne.config import NeuronConfig, StudentConfig
from trainables.sne.students import SpikingStudent


def test_lif_membrane_and_spikes_match_hand_computation():
    # beta 0.5, threshold 1, currents 0.6, 0.6, 0.6, 1.5, 0:
    # t1: v = 0.6                      -> no spike, v = 0.6
    # t2: v = 0.5*0.6 + 0.6 = 0.9      -> no spike, v = 0.9
    # t3: v = 0.45 + 0.6 = 1.05        -> spike, v = 1.05 - 1 = 0.05
    # t4: v = 0.025 + 1.5 = 1.525      -> spike, v = 0.525
    # t5: v = 0.2625                   -> no spike
    currents = torch.tensor([0.6, 0.6, 0.6, 1.5, 0.0]).reshape(5, 1)
    spikes, membranes = lif_sequence(currents, beta=0.5, threshold=1.0)
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert membranes.flatten().tolist() == pytest.approx([0.6, 0.9, 0.05, 0.525, 0.2625], abs=1e-6)


def test_spike_fires_at_exactly_the_threshold_and_reset_is_subtractive():
    # v = 2.5 with threshold 1: one spike per step at most; the residual 1.5 is kept, not zeroed.
    spikes, membranes = lif_sequence(torch.tensor([[2.5], [0.0], [0.0]]), beta=1.0, threshold=1.0)
    assert spikes.flatten().tolist() == [1.0, 1.0, 0.0]
    assert membranes.flatten().tolist() == pytest.approx([1.5, 0.5, 0.5])
    s, _ = lif_sequence(torch.tensor([[1.0]]), beta=0.9, threshold=1.0)
    assert s.item() == 1.0  # v >= threshold fires


def test_arctan_surrogate_formula():
    x = torch.tensor([0.0, 0.5, -2.0])
    alpha = 2.0
    expected = [alpha / 2 / (1 + (math.pi / 2 * alpha * v) ** 2) for v in x.tolist()]
    assert arctan_surrogate_grad(x, alpha).tolist() == pytest.approx(expected)
    assert arctan_surrogate_grad(torch.tensor(0.0), alpha).item() == pytest.approx(1.0)  # peak alpha / 2


def test_spike_function_backward_uses_the_surrogate():
    x = torch.tensor([-0.3, 0.0, 0.4], requires_grad=True)
    out = ArctanSpike.apply(x, 2.0)
    assert out.tolist() == [0.0, 1.0, 1.0]
    out.sum().backward()
    assert torch.allclose(x.grad, arctan_surrogate_grad(x.detach(), 2.0))


def test_surrogate_gradient_reaches_every_weight_non_zero_and_finite():
    torch.manual_seed(0)
    neuron = NeuronConfig(timesteps=4, beta=0.9, threshold=1.0)
    for cfg in (StudentConfig(shape="mlp", width=16, depth=2), StudentConfig(shape="conv", channels=4, depth=2)):
        student = SpikingStudent(cfg, neuron, (1, 8, 8), out_dim=5)
        out = student(torch.randn(6, 1, 8, 8))
        out.pow(2).sum().backward()
        for name, p in student.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, f"{name}: no gradient flows through the spikes"


def test_lif_records_per_sample_spike_counts_without_changing_output():
    lif = LIF(beta=1.0, threshold=1.0)
    currents = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]]).expand(2, 3, 2).clone()  # T=2, N=3, 2 neurons
    currents[:, 1] = 0.0  # sample 1 never spikes
    plain = lif(currents)
    lif.start_recording()
    recorded = lif(currents)
    counts = lif.stop_recording()
    assert torch.equal(plain, recorded)
    # Neuron 0 of samples 0 and 2 gets 2 then keeps 1 after the reset: spikes at t1 and t2.
    assert counts.tolist() == [2.0, 0.0, 2.0]
    assert lif.neurons == 2
    assert not lif.recording


def test_ann_twin_uses_the_same_weights_with_a_clipped_relu():
    torch.manual_seed(0)
    student = SpikingStudent(StudentConfig(shape="mlp", width=3, depth=1), NeuronConfig(timesteps=2, threshold=2.0), (1, 1, 2), out_dim=1)
    with torch.no_grad():
        student.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 10.0], [-1.0, 0.0]]))
        student.layers[0].bias.zero_()
        student.readout.weight.copy_(torch.tensor([[1.0, 1.0, 1.0]]))
        student.readout.bias.zero_()
    student.spiking = False
    x = torch.tensor([[[[1.0, 1.0]]]])
    # Activations clamp(W x / threshold, 0, 1) = [0.5, 1 (clipped from 5), 0].
    assert student(x).item() == pytest.approx(1.5)


def test_lif_rejects_invalid_parameters():
    with pytest.raises(ValueError, match="beta"):
        LIF(beta=1.5)
    with pytest.raises(ValueError, match="threshold"):
        LIF(threshold=0.0)
    with pytest.raises(ValueError, match="timesteps"):
        NeuronConfig(timesteps=0)


@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("layout", ["plain", "channels_last", "expanded"])
def test_fused_lif_gives_the_stepwise_spikes_exactly_and_its_gradients(learnable, steps, layout):
    """LIFSequence (one autograd node) against lif_sequence (autograd, step by step): spikes
    equal bit for bit; gradients of the currents, the leak and the threshold equal to rounding;
    channels-last and time-expanded currents (the first layer's) keep their layout."""
    from trainables.sne.spiking import lif_spikes

    gen = torch.Generator().manual_seed(steps)
    if layout == "expanded":
        currents = (torch.randn(5, 6, 3, 3, generator=gen) * 1.5).contiguous(memory_format=torch.channels_last)
        currents = currents.unsqueeze(0).expand(steps, -1, -1, -1, -1)
    else:
        currents = torch.randn(steps, 5, 6, 3, 3, generator=gen) * 1.5
        if layout == "channels_last":  # every step channels-last, as a conv student's currents
            currents = torch.empty(steps, 5, 3, 3, 6).permute(0, 1, 4, 2, 3).copy_(currents)
    upstream = torch.randn(steps, 5, 6, 3, 3, generator=gen)
    results = []
    for fused in (False, True):
        c = currents.detach().clone() if layout != "expanded" else currents.detach()
        c.requires_grad_()
        beta = torch.tensor(0.8, requires_grad=True) if learnable else 0.8
        threshold = torch.tensor(0.7, requires_grad=True) if learnable else 0.7
        spikes = lif_spikes(c, beta, threshold, 2.0) if fused else lif_sequence(c, beta, threshold, 2.0)[0]
        if fused and layout != "plain":
            assert spikes[0].is_contiguous(memory_format=torch.channels_last)
        spikes.backward(upstream)
        results.append((spikes.detach(), c.grad, *((beta.grad, threshold.grad) if learnable else ())))
    assert 0 < results[0][0].mean() < 1  # some neurons fire, some do not
    assert torch.equal(results[1][0], results[0][0])
    for fused, stepwise in zip(results[1][1:], results[0][1:]):
        torch.testing.assert_close(fused, stepwise, atol=1e-5, rtol=1e-5)


def test_lif_layer_paths_agree_and_a_conv_student_trains_channels_last():
    torch.manual_seed(0)
    neuron = NeuronConfig(timesteps=4, beta=0.9, threshold=1.0, learnable=True)
    student = SpikingStudent(StudentConfig(shape="conv", channels=6, depth=3, stem_stride=2), neuron, (1, 16, 16), out_dim=5)
    x = torch.rand(8, 1, 16, 16)
    seen = []
    handle = student.layers[1].register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].is_contiguous(memory_format=torch.channels_last)))
    outs, grads = [], []
    for fused, nhwc in ((False, False), (True, False), (True, True)):
        LIF.fused, SpikingStudent.channels_last_training = fused, nhwc
        try:
            student.zero_grad(set_to_none=True)
            out = student.train()(x)
            out.square().sum().backward()
        finally:
            LIF.fused, SpikingStudent.channels_last_training = True, True
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in student.parameters()])
    assert seen == [False, False, True]  # the second conv reads channels-last spikes in training
    assert torch.equal(outs[1], outs[0])  # fused: the same spikes, so the same readout
    torch.testing.assert_close(outs[2], outs[0], atol=1e-5, rtol=1e-5)
    for paths in (grads[1], grads[2]):
        for got, want in zip(paths, grads[0]):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    seen.clear()
    with torch.no_grad():
        student.eval()(x)
    handle.remove()
    assert seen == [False]  # evaluation keeps the default layout (what the NIR export reproduces exactly)
