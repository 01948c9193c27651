"""The ``--dry-run`` preview of a spec: its space in words and what its configs cost before training.

:func:`describe_space` gives one line per searched parameter; :func:`cost_preview` computes the
static costs of a seeded random sample of the space (:class:`CostPreview`: ranges, and the share
of configs that can meet each constraint on a static metric), nothing trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from pydantic import ValidationError

from search.space import sample_configs, trial_config
from search.spec import Spec, provably_broken
from trainables.config import describe_validation_error

__all__ = ["CostPreview", "cost_preview", "describe_space"]


def describe_space(spec: Spec) -> list[str]:
    """Human-readable lines, one per searched parameter."""
    lines = []
    for name, p in spec.space.items():
        if p.kind == "choice":
            desc = f"choice {p.choice}"
        else:
            low, high = p.bounds
            desc = f"{p.kind} [{low}, {high}]" + (f" step {p.step:g}" if p.step else "") + (" (log)" if p.is_log and p.kind == "int" else "")
        if p.when:
            desc += "  when " + ", ".join(f"{k} = {v}" for k, v in p.when.items())
        lines.append(f"  {name:<22} {desc}")
    return lines


@dataclass(frozen=True)
class CostPreview:
    """What a space's configs cost before any training: plain data for ``--dry-run``.

    Attributes:
        sampled: Configs drawn uniformly at random from the space (seeded by ``run.seed``).
        built: Those whose static costs could be computed (the rest are not valid configs).
        invalid: The first reason a sampled config was not valid, or ``""``.
        ranges: Per static metric: ``(min, median, max)`` over the built configs.
        relations: Per static metric: how trained reports relate to it (``exact``, ``upper``,
            ``lower``; ``bound`` when configs differ, e.g. with and without DST).
        feasible: Per constraint on a static metric: the share of built configs that can meet it
            (that their costs do not prove broken: :func:`~search.spec.provably_broken`); where
            the metric's values are exact, the share that meets it. The rest are refused by the
            sweep before training.
        all_feasible: The share that can meet every such constraint (None without one).
        learnt: Constraints on metrics known only after training (not previewed).
    """

    sampled: int
    built: int
    invalid: str
    ranges: dict[str, tuple[float, float, float]]
    relations: dict[str, str]
    feasible: dict[str, float]
    all_feasible: float | None
    learnt: tuple[str, ...]


def cost_preview(spec: Spec, info: Any, n: int = 2000, seconds: float = 10.0) -> CostPreview | None:
    """Static costs (:meth:`~trainables.registry.TrainableEntry.static_costs_of`) over ``n`` random configs.

    Draws the configs with a seeded random sampler (a uniform picture of the space, not the
    sweep's own sampler's start-up), computes each one's costs from its config and the data's
    shape alone, and stops early after ``seconds``. Returns None when the family declares no
    static costs.
    """
    entry = spec.entry
    if entry.static_costs is None:
        return None
    deadline = time.monotonic() + seconds
    values: dict[str, list[float]] = {}
    relations: dict[str, str] = {}
    static = list(spec.constraints)
    possible: dict[str, list[bool]] = {c.text: [] for c in static}
    sampled, invalid = 0, ""
    for params in sample_configs(spec, n, sampler=optuna.samplers.RandomSampler(seed=spec.run.seed)):
        sampled += 1
        try:
            costs = entry.static_costs_of(trial_config(spec, params), info)
        except ValidationError as exc:  # a config the family refuses (e.g. more groups than units)
            invalid = invalid or describe_validation_error(exc.errors()[0])
            costs = None
        except ValueError as exc:  # ... or one its network cannot be built for
            invalid = invalid or " ".join(str(exc).split())
            costs = None
        for metric, cost in (costs or {}).items():
            values.setdefault(metric, []).append(cost.value)
            relations[metric] = cost.relation if relations.get(metric, cost.relation) == cost.relation else "bound"
        for c in static:
            if costs is not None and c.metric in costs:
                possible[c.text].append(not provably_broken(c, costs[c.metric]))
        if time.monotonic() > deadline:
            break
    built = len(next(iter(values.values()), []))
    arrays = {metric: np.asarray(v, dtype=np.float64) for metric, v in values.items()}
    static = [c for c in static if c.metric in arrays]
    feasible = {c.text: float(np.mean(possible[c.text])) if built else 0.0 for c in static}
    every = np.ones(built, dtype=bool)
    for c in static:
        every &= np.asarray(possible[c.text], dtype=bool)
    return CostPreview(
        sampled=sampled,
        built=built,
        invalid=invalid,
        ranges={m: (float(a.min()), float(np.median(a)), float(a.max())) for m, a in arrays.items() if len(a)},
        relations=relations,
        feasible=feasible,
        all_feasible=float(every.mean()) if static and built else (0.0 if static else None),
        learnt=tuple(c.text for c in spec.constraints if c.metric not in arrays),
    )
