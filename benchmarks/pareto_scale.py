"""Pareto computations at sweep scale: front, ranks, hypervolume of 10,000+ trials.

    python benchmarks/pareto_scale.py [--points 10000] [--objectives 3] [--repeats 3] [--seed 0]

Times the functions of ``analysis.pareto`` on one random set of trials (``front_ms``:
``pareto_mask``; ``ranks_ms``: ``nondominated_ranks``; ``compute_front_ms``; ``hypervolume_ms``:
of the front points; ``progress_ms``: ``hypervolume_progress`` in trial order), and moocore's
raw ``is_nondominated(keep_weakly=True)`` on the same minimisation array, finite rows only
(``moocore_ms``: the difference is what ``pareto_mask`` adds on top: direction flips, the
screening of missing rows, copies). The last line printed is JSON; every ``*_ms`` is the median
over ``repeats`` calls, each after one untimed call.

The points are a mix in which a real fraction lies on the front, as a converging sweep's would:

- 1 % rows with a NaN in one objective (failed trials: never on the front);
- 1 % exact copies of the simplex points below (ties: every copy is on the front);
- of the other 98 %, 30 % exactly on the unit simplex ``sum(x) = 1`` (Dirichlet(1, ..., 1)),
  mutually non-dominated, so they make the front, and 70 % a simplex point plus
  ``|N(0, 0.05)|`` in every objective: just behind the front, nearly all dominated.

In minimisation form every objective is to be minimised; the first objective is then negated and
given as ``"max"``, so the direction handling is timed too. ``front_size`` comes out at 30-35 %
of ``points`` (some noisy points near the simplex's edges are not dominated).

Before timing, ``pareto_mask`` is checked against a brute-force O(n^2) front on a 500-point
subsample, and against moocore on all the finite rows; a disagreement exits with an error.
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
from typing import Any

import moocore
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

from analysis.pareto import (  # noqa: E402
    compute_front,
    hypervolume,
    hypervolume_progress,
    nondominated_ranks,
    pareto_front,
    pareto_mask,
    reference_point,
    to_minimization,
)

__all__ = ["main", "make_points", "time_median"]


def make_points(n: int, m: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``(points, directions)``: ``n`` trials of ``m`` objectives, distributed as the docstring says."""
    rng = np.random.default_rng(seed)
    z = rng.dirichlet(np.ones(m), size=n)
    order = rng.permutation(n)
    few = n // 100
    copies, missing, rest = order[:few], order[few : 2 * few], order[2 * few :]
    behind = rest[rng.random(len(rest)) < 0.7]
    z[behind] += np.abs(rng.normal(0.0, 0.05, size=(len(behind), m)))
    on_simplex = np.setdiff1d(rest, behind)
    z[copies] = z[rng.choice(on_simplex, size=len(copies))]
    z[missing, rng.integers(0, m, size=len(missing))] = np.nan
    directions = ["max"] + ["min"] * (m - 1)
    z[:, 0] *= -1.0  # the first objective is "max" in original units
    return z, directions


def brute_force_mask(z: np.ndarray) -> np.ndarray:
    """O(n^2) non-dominated mask of minimisation rows; NaN rows are never on it."""
    valid = np.isfinite(z).all(axis=1)
    finite = z[valid]
    mask = np.zeros(len(z), dtype=bool)
    for j in np.flatnonzero(valid):
        mask[j] = not ((finite <= z[j]).all(axis=1) & (finite < z[j]).any(axis=1)).any()
    return mask


def time_median(function: Callable[[], Any], repeats: int) -> float:
    """Median wall milliseconds of ``repeats`` calls, after one untimed call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--objectives", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per function")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.points < 1 or args.objectives < 2 or args.repeats < 1:
        raise SystemExit("need --points >= 1, --objectives >= 2 and --repeats >= 1")
    n, m = args.points, args.objectives
    cpu = cpu_model()
    print(
        f"numpy {np.__version__}, moocore {moocore.__version__} on {cpu}, {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    points, directions = make_points(n, m, args.seed)
    z = to_minimization(points, directions)
    finite = np.ascontiguousarray(z[np.isfinite(z).all(axis=1)])

    # Cheap sanity checks first: a wrong fast answer is worth nothing.
    mask = pareto_mask(points, directions)
    sample = np.random.default_rng(args.seed + 1).choice(n, size=min(n, 500), replace=False)
    if not np.array_equal(pareto_mask(points[sample], directions), brute_force_mask(z[sample])):
        raise SystemExit("pareto_mask disagrees with the brute-force front on a subsample")
    if not np.array_equal(mask[np.isfinite(z).all(axis=1)], moocore.is_nondominated(finite, keep_weakly=True)):
        raise SystemExit("pareto_mask disagrees with moocore.is_nondominated(keep_weakly=True)")
    reference = reference_point(points, directions)
    front = pareto_front(points, directions)
    print(f"{n} points, {m} objectives, front of {len(front)}; medians of {args.repeats} calls", flush=True)

    result = {
        "points": n,
        "objectives": m,
        "front_size": int(mask.sum()),
        "front_ms": time_median(lambda: pareto_mask(points, directions), args.repeats),
        "moocore_ms": time_median(lambda: moocore.is_nondominated(finite, keep_weakly=True), args.repeats),
        "ranks_ms": time_median(lambda: nondominated_ranks(points, directions), args.repeats),
        "compute_front_ms": time_median(
            lambda: compute_front(points, [f"f{j}" for j in range(m)], directions, reference), args.repeats
        ),
        "hypervolume_ms": time_median(lambda: hypervolume(points[front], directions, reference), args.repeats),
        "progress_ms": time_median(lambda: hypervolume_progress(points, directions, reference), args.repeats),
        "repeats": args.repeats,
        "seed": args.seed,
        "cpu": cpu,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
