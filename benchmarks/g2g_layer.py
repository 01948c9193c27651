"""Forward+backward time of one G2G layer: dense vs masked dense vs block-sparse (gather + bmm).

    python benchmarks/g2g_layer.py [--width 1024] [--batch 256] [--sparsity 0.75] [--groups 8]
                                   [--repeats 50] [--threads N]

All three layers have the same width; the masked and block layers have the same connectivity
(``groups`` groups, ``(1 - sparsity) × groups`` input groups per output group). A step is what
a hidden layer costs in training: forward, then backward to the weights, the bias and the
input. The last line printed is JSON.

The block layer is timed as it runs inside a G2G network in training (``block``): on the
chain's feature-major, group-major activations (``width × batch`` in and out, see
``trainables/g2g/block.py``), so the step is one gather, one bias-fused ``baddbmm`` and its
backward. ``block_batch_major`` is the same layer called on its own with batch-major
``batch × width`` tensors (evaluation, export, a layer outside a chain), which adds a
transpose in and out.

Two timings, both medians over ``repeats`` steps per layer, in one run:

- warm (``*_ms``, the headline): the layers take turns in rounds; within a round a layer runs
  one untimed step, then ``repeats / rounds`` timed steps back to back, as a timing loop
  (``torch.utils.benchmark``) would. Rounds spread each layer over the whole run, so a
  machine that gets busier mid-run slows all three alike.
- cold (``*_ms_interleaved``): every step alternates between the three layers, so each starts
  with the caches holding another layer's data. The small block matmuls lose more to this
  than the large dense one does.

The ideal speed-up of the block layer over dense is ``1 / (1 - sparsity)`` (4 at 75 %); the
gather, the scatter-add of the input gradient and the extra copies take some of it back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_model  # noqa: E402
from trainables.g2g.block import BlockSparseLinear, block_pattern  # noqa: E402
from trainables.g2g.layers import MaskedLinear, group_labels  # noqa: E402

__all__ = ["main", "time_layers"]


def _step(call: Callable[[torch.Tensor], torch.Tensor], params: list, x: torch.Tensor, upstream: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        xg = x.detach().requires_grad_()
        call(xg).backward(upstream)

    return run


def time_layers(
    width: int, batch: int, sparsity: float, groups: int, repeats: int, rounds: int = 10, warmup: int = 5
) -> dict[str, float]:
    """Median forward+backward milliseconds of the dense, masked and block layers (warm and cold)."""
    fan_in = round((1.0 - sparsity) * groups)
    if not 1 <= fan_in <= groups:
        raise SystemExit(f"sparsity {sparsity} with {groups} groups leaves {fan_in} input groups per output group")
    gen = torch.Generator().manual_seed(0)
    labels = group_labels(width, groups)
    block = BlockSparseLinear(labels, labels, block_pattern(groups, fan_in, generator=gen), generator=gen)
    masked = MaskedLinear(width, width, block.connection_mask(), generator=gen)
    dense = torch.nn.Linear(width, width)
    x = torch.randn(batch, width, generator=gen)
    upstream = torch.randn(batch, width, generator=gen)
    with torch.no_grad():  # the same function, so the comparison is of compute only
        masked.weight.copy_(block.effective_weight())
        masked.bias.copy_(block.bias)
        torch.testing.assert_close(block(x), masked(x), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(block.forward_group_major(x.t().contiguous()).t(), masked(x), atol=1e-4, rtol=1e-4)
    x_chain, upstream_chain = x.t().contiguous(), upstream.t().contiguous()  # the chain's layout
    runs = {
        "dense": _step(dense, list(dense.parameters()), x, upstream),
        "masked": _step(masked, list(masked.parameters()), x, upstream),
        "block": _step(block.forward_group_major, list(block.parameters()), x_chain, upstream_chain),
        "block_batch_major": _step(block, list(block.parameters()), x, upstream),
    }
    for _ in range(warmup):
        for run in runs.values():
            run()
    warm: dict[str, list[float]] = {name: [] for name in runs}
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        for name, run in runs.items():
            run()  # untimed: bring this layer's data back into the caches
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                warm[name].append(time.perf_counter() - start)
    cold: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            cold[name].append(time.perf_counter() - start)
    result = {f"{name}_ms": round(statistics.median(t) * 1e3, 3) for name, t in warm.items()}
    result.update({f"{name}_ms_interleaved": round(statistics.median(t) * 1e3, 3) for name, t in cold.items()})
    result["density"] = block.density
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--sparsity", type=float, default=0.75)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=60, help="timed steps per layer and per timing")
    parser.add_argument("--rounds", type=int, default=10, help="turns the layers take in the warm timing")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads (default: all CPUs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__} on {cpu_model()}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(f"width {args.width}, batch {args.batch}, {args.groups} groups, sparsity {args.sparsity}: "
          f"forward+backward, medians of {args.repeats} steps (warm: {args.rounds} rounds; cold: interleaved)", flush=True)
    timing = time_layers(args.width, args.batch, args.sparsity, args.groups, args.repeats, args.rounds)
    result = {
        "cpu": cpu_model(),
        "width": args.width,
        "batch": args.batch,
        "sparsity": round(1.0 - timing["density"], 4),
        "groups": args.groups,
        "threads": torch.get_num_threads(),
        "dense_ms": timing["dense_ms"],
        "masked_ms": timing["masked_ms"],
        "block_ms": timing["block_ms"],
        "block_batch_major_ms": timing["block_batch_major_ms"],
        "speedup_block_vs_dense": round(timing["dense_ms"] / timing["block_ms"], 3),
        "speedup_block_vs_masked": round(timing["masked_ms"] / timing["block_ms"], 3),
        "speedup_block_batch_major_vs_dense": round(timing["dense_ms"] / timing["block_batch_major_ms"], 3),
        "dense_ms_interleaved": timing["dense_ms_interleaved"],
        "masked_ms_interleaved": timing["masked_ms_interleaved"],
        "block_ms_interleaved": timing["block_ms_interleaved"],
        "speedup_block_vs_dense_interleaved": round(timing["dense_ms_interleaved"] / timing["block_ms_interleaved"], 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
