"""The CUDA paths: block layers, the group-major chain, fused LIF neurons and a training epoch on a GPU.

Skipped without CUDA (CI has none); ``benchmarks/gpu_check.py`` runs this file on the device
machine, which has PyTorch but neither Ray nor Optuna: nothing here may import them.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("grouping", ["index", "mixer", "random"])
def test_block_net_on_cuda_equals_its_cpu_twin(grouping):
    from trainables.data import DataInfo
    from trainables.g2g.config import ModelConfig
    from trainables.g2g.model import G2GNet

    info = DataInfo("synthetic", (3, 8, 8), 10, 100, 10, 10)
    cfg = ModelConfig(width=256, depth=3, groups=8, grouping=grouping, granularity="block", block_fan_in=2)
    cpu = G2GNet(cfg, info, torch.Generator().manual_seed(0)).train()
    gpu = G2GNet(cfg, info, torch.Generator().manual_seed(0)).train()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    assert gpu.group_major()
    out_cpu, out_gpu = cpu(x), gpu(x.cuda())
    out_cpu.square().sum().backward()
    out_gpu.square().sum().backward()
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, atol=1e-3, rtol=1e-3)  # TF32 may be on
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, atol=1e-2, rtol=1e-2, msg=name)


def test_block_layer_under_bf16_autocast_on_cuda():
    from trainables.g2g.block import BlockSparseLinear, block_pattern
    from trainables.g2g.layers import group_labels

    gen = torch.Generator().manual_seed(0)
    labels = group_labels(512, 8)
    layer = BlockSparseLinear(labels, labels, block_pattern(8, 2, generator=gen), generator=gen).cuda()
    x = torch.randn(512, 64, device="cuda", requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = layer.forward_group_major(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32 and torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize("learnable", [False, True])
def test_fused_lif_on_cuda_gives_the_stepwise_spikes(learnable):
    from trainables.sne.spiking import lif_sequence, lif_spikes

    currents = torch.randn(4, 16, 8, 5, 5, device="cuda") * 1.5
    results = []
    for fused in (False, True):
        c = currents.clone().requires_grad_()
        beta = torch.tensor(0.8, device="cuda", requires_grad=True) if learnable else 0.8
        threshold = torch.tensor(0.7, device="cuda", requires_grad=True) if learnable else 0.7
        spikes = lif_spikes(c, beta, threshold) if fused else lif_sequence(c, beta, threshold)[0]
        spikes.sum().backward()
        results.append((spikes, c.grad))
    assert torch.equal(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-5, rtol=1e-5)


def test_a_g2g_training_epoch_on_cuda_is_finite_and_on_the_gpu():
    from trainables.data import DataInfo, Splits
    from trainables.g2g.trainable import G2GTraining

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 3, 8, 8, generator=gen)
    y = torch.randint(0, 10, (600,), generator=gen)
    info = DataInfo("synthetic", (3, 8, 8), 10, 512, 88, 0)
    splits = Splits(info, x[:512].cuda(), y[:512].cuda(), x[512:].cuda(), y[512:].cuda(), x[:0].cuda(), y[:0].cuda(), augment=False)
    config = {
        "model": {"kind": "g2g", "width": 256, "depth": 2, "groups": 8, "granularity": "block", "block_fan_in": 2},
        "optim": {"batch_size": 128, "lr": 1e-3},
        "budget": {"epochs": 2, "eval_test": False},
        "runtime": {"device": "cuda"},
        "seed": 0,
    }
    run = G2GTraining(config, splits)
    loss = run.train_epoch()
    assert next(run.model.parameters()).is_cuda
    assert loss == loss and loss > 0  # finite, not NaN
    metrics = run.metrics()
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
