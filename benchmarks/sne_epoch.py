"""Wall time of spiking distillation epochs: the fused LIF neuron vs the step-by-step autograd one.

    python benchmarks/sne_epoch.py [--samples 2048] [--epochs 2] [--channels 24] [--depth 4]
                                   [--students 4] [--timesteps 4] [--threads N] [--json PATH]

What an SNE trial does per spiking epoch, through the real distillation loop
(``trainables.sne.distill.distill_epoch``: student dropout, feature MSE + logit KD, fused
optimiser, batches of 64), on synthetic digits28-shaped data (1×28×28, 10 classes, in memory)
with an untrained CNN teacher's targets: four conv students of ``--depth`` stride-2 layers
(``--channels`` channels in the first, the accurate end of ``spaces/sne_digits28.yaml``), learnt
neurons, no batch norm (the front's settings), T = ``--timesteps``.

Three paths, the same network and data (each timed after one untimed warm-up epoch, taking
turns so a machine that gets busier slows all alike):

- ``stepwise``: every LIF layer steps through time in autograd, five elementwise nodes per
  step, on the default (NCHW) layout: the path before this benchmark;
- ``fused``: every LIF layer is one autograd node (``trainables.sne.spiking.LIFSequence``): an
  in-place forward and the backward recurrence written out; same layout;
- ``fused_nhwc``: the same on channels-last activations (what training runs now,
  ``SpikingStudent.channels_last_training``).

Before timing, the paths run one batch from the same weights: ``fused`` must give exactly the
spikes of ``stepwise`` and its gradients to 1e-4; ``fused_nhwc`` (other convolution kernels)
its outputs to 1e-4. The last line printed is JSON (seconds per epoch of each path and the
speed-ups over ``stepwise``).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402  (puts the project on sys.path)


def _setup(args):
    import torch

    from trainables.data import DataInfo, Splits
    from trainables.sne.config import SNETrialConfig
    from trainables.sne.distill import teacher_targets
    from trainables.sne.teacher import build_teacher
    from trainables.sne.trainable import build_ensemble

    gen = torch.Generator().manual_seed(0)
    n = args.samples
    x = torch.rand(n + 256, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (n + 256,), generator=gen)
    info = DataInfo("synthetic_digits28", (1, 28, 28), 10, n, 256, 0)
    splits = Splits(info, x[:n], y[:n], x[n:], y[n:], x[:0], y[:0], augment=False)
    cfg = SNETrialConfig.model_validate(
        {
            "teacher": {"arch": "cnn", "width": 32},
            "student": {"shape": "conv", "channels": args.channels, "depth": args.depth, "stem_stride": 2},
            "sne": {"students": args.students, "active": args.students, "timesteps": args.timesteps, "learn_neuron": True},
            "optim": {"batch_size": 64, "lr": 3e-3},
            "seed": 0,
        }
    )
    torch.manual_seed(0)
    teacher = build_teacher(cfg.teacher, info)
    with torch.no_grad():
        targets = teacher_targets(teacher, splits.x_train)
    ensemble = build_ensemble(cfg, info, teacher, targets)
    return cfg, splits, teacher, targets, ensemble


PATHS = {"stepwise": (False, False), "fused": (True, False), "fused_nhwc": (True, True)}


def _set_path(name: str) -> None:
    from trainables.sne.spiking import LIF
    from trainables.sne.students import SpikingStudent

    LIF.fused, SpikingStudent.channels_last_training = PATHS[name]


def check_paths_agree(ensemble, batch) -> None:
    """The same weights, one batch: ``fused`` gives the spikes (outputs) of ``stepwise`` exactly
    and its gradients to 1e-4; ``fused_nhwc`` its outputs to 1e-4."""
    import torch

    outs, grads = {}, {}
    for name in PATHS:
        _set_path(name)
        model = copy.deepcopy(ensemble).train()
        out = model(batch)
        out.square().mean().backward()
        outs[name] = out.detach()
        grads[name] = {key: p.grad.clone() for key, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(outs["fused"], outs["stepwise"], atol=0, rtol=0)
    for key, grad in grads["stepwise"].items():
        torch.testing.assert_close(grads["fused"][key], grad, atol=1e-4, rtol=1e-4, msg=key)
    torch.testing.assert_close(outs["fused_nhwc"], outs["stepwise"], atol=1e-4, rtol=1e-4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=2048, help="training samples per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per path (after one warm-up each)")
    parser.add_argument("--channels", type=int, default=24)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all CPUs)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON result here")
    args = parser.parse_args(argv)

    import torch

    from trainables.sne.distill import distill_epoch
    from trainables.training import make_lr_schedule, make_optimizer

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {cpu_model()}, {torch.get_num_threads()} threads; {args.students} conv students "
          f"({args.channels} channels, depth {args.depth}), T = {args.timesteps}, {args.samples} samples of 1×28×28, batch 64",
          flush=True)
    cfg, splits, teacher, targets, ensemble = _setup(args)
    check_paths_agree(ensemble, splits.x_train[:32])
    runs = {}
    for name in PATHS:
        model = copy.deepcopy(ensemble)
        optimizer = make_optimizer(model.parameters(), cfg.optim)
        runs[name] = (model, optimizer, make_lr_schedule(optimizer, "constant", 1), torch.Generator().manual_seed(1))

    def epoch(name: str) -> float:
        _set_path(name)
        model, optimizer, schedule, generator = runs[name]
        start = time.perf_counter()
        distill_epoch(model, teacher, splits, targets, optimizer, schedule, 64, generator, 1, cfg.sne.distill())
        return time.perf_counter() - start

    for name in runs:  # warm-up: allocator, kernels, caches
        epoch(name)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.epochs):
        for name in runs:
            times[name].append(epoch(name))
            print(f"  {name:<9} {times[name][-1]:8.3f} s", flush=True)
    _set_path("fused_nhwc")
    result = {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "students": args.students,
        "channels": args.channels,
        "depth": args.depth,
        "timesteps": args.timesteps,
        "samples": args.samples,
    }
    for name in PATHS:
        result[f"{name}_s"] = round(statistics.median(times[name]), 3)
    for name in ("fused", "fused_nhwc"):
        result[f"speedup_{name}_vs_stepwise"] = round(result["stepwise_s"] / result[f"{name}_s"], 3)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
