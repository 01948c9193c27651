"""Wall time of whole training epochs: the 3×1024 G2G block network vs the dense one of the same width.

    python benchmarks/g2g_epoch.py [--frontend flatten|patch] [--samples 8192] [--epochs 2]
                                   [--width 1024] [--depth 3] [--groups 8] [--sparsity 0.75]
                                   [--threads N]

What a trial does per epoch, through the real trainer (``G2GTraining``: optimiser, lr schedule,
shuffled batches of 256, evaluation excluded), on synthetic CIFAR-shaped data (3×32×32, 10
classes, in memory). Four networks, all ``width`` wide and ``depth`` deep:

- ``dense``: ``model.kind: dense``;
- ``block``: G2G at block granularity, ``(1 - sparsity) × groups`` input groups per output group;
- ``block_dst``: the same with dynamic sparse training at block granularity (magnitude prune,
  gradient regrow of whole blocks every ``--dst-interval`` steps);
- ``edge``: G2G at edge granularity with the same density (masked dense compute, what DST
  libraries ship) for reference.

Each network trains one untimed warm-up epoch, then ``--epochs`` timed ones; the medians are
reported. The last line printed is JSON with ``dense_s``, ``block_s``, ``block_dst_s``,
``edge_s`` and the speed-ups over dense.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402


def synthetic_splits(samples: int, seed: int = 0):
    """CIFAR-shaped standardised inputs with learnable labels (a random linear teacher)."""
    import torch

    from trainables.data import DataInfo, Splits

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples + 512, 3, 32, 32, generator=gen)
    teacher = torch.randn(3 * 32 * 32, 10, generator=gen)
    y = (x.flatten(1) @ teacher).argmax(1)
    info = DataInfo("synthetic_cifar", (3, 32, 32), 10, samples, 512, 0)
    return Splits(info, x[:samples], y[:samples], x[samples:], y[samples:], x[:0], y[:0], augment=False)


def epoch_seconds(model: dict, splits, epochs: int, dst: dict | None = None) -> float:
    """Median seconds of ``epochs`` timed training epochs (after one warm-up) of a G2G config."""
    from trainables.g2g.trainable import G2GTraining

    config = {
        "model": model,
        "optim": {"batch_size": 256, "lr": 1e-3},
        "budget": {"epochs": epochs + 1, "eval_test": False},
        "dst": dst or {"enabled": False},
        "runtime": {"device": "cpu"},
        "seed": 0,
    }
    run = G2GTraining(config, splits)
    run.train_epoch()  # warm-up: allocator, kernels, caches
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        run.train_epoch()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--frontend", choices=("flatten", "patch"), default="flatten")
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per network (after one warm-up)")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--dst-interval", type=int, default=20, help="steps between block rewirings with DST")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all CPUs)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    fan_in = max(1, round((1 - args.sparsity) * args.groups))
    print(f"torch {torch.__version__} on {cpu_model()}, {torch.get_num_threads()} threads; "
          f"{args.depth}×{args.width}, {args.frontend} front end, {args.samples} samples of 3×32×32, batch 256", flush=True)
    splits = synthetic_splits(args.samples)
    base = {"width": args.width, "depth": args.depth, "frontend": args.frontend, "patch_channels": 64}
    g2g = {**base, "kind": "g2g", "groups": args.groups, "grouping": "index"}
    density = fan_in / args.groups
    configs = {
        "dense": ({**base, "kind": "dense"}, None),
        "block": ({**g2g, "granularity": "block", "block_fan_in": fan_in}, None),
        "block_dst": (
            {**g2g, "granularity": "block", "block_fan_in": fan_in},
            {"enabled": True, "interval": args.dst_interval, "fraction": 0.25, "prune": "magnitude", "grow": "gradient"},
        ),
        "edge": ({**g2g, "granularity": "edge", "p_intra": 1.0, "p_inter": (density * args.groups - 1) / (args.groups - 1)}, None),
    }
    result: dict = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "frontend": args.frontend, "width": args.width,
                    "depth": args.depth, "groups": args.groups, "sparsity": round(1 - density, 4), "samples": args.samples,
                    "steps_per_epoch": math.ceil(args.samples / 256)}
    for name, (model, dst) in configs.items():
        seconds = epoch_seconds(model, splits, args.epochs, dst)
        result[f"{name}_s"] = round(seconds, 3)
        print(f"  {name:<10} {seconds:8.3f} s per epoch", flush=True)
    for name in ("block", "block_dst", "edge"):
        result[f"speedup_{name}_vs_dense"] = round(result["dense_s"] / result[f"{name}_s"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
