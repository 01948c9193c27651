"""Candidate parameter sets for a model-based sampler: random draws, membership, and an encoding.

:func:`random_candidates` and :func:`draw_value` draw parameter sets uniformly (in log space where
a distribution is log); :func:`contains` says whether a distribution can take a value; and
:class:`Encoder` maps a parameter set onto the unit cube a surrogate model is fitted in. Used by
:class:`search.costaware.CostAwareSampler` and :class:`search.static_costs.SpaceDraw`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

__all__ = ["CandidateDraw", "Encoder", "contains", "draw_value", "near_value", "random_candidates"]

#: ``draw(rng, n)``: ``n`` candidate parameter sets, each with the distributions of its parameters.
CandidateDraw = Callable[[np.random.Generator, int], list[tuple[dict[str, Any], dict[str, BaseDistribution]]]]


def random_candidates(distributions: Mapping[str, BaseDistribution]) -> CandidateDraw:
    """A candidate draw sampling each of ``distributions`` independently and uniformly (log where log).

    Its ``near(rng, parents, n)`` draws ``n`` candidates near ``parents`` (each parameter moved with
    probability ``NEAR_CHANGE`` by :func:`near_value`, else kept), cycling through the parents.
    """
    dists = dict(distributions)

    def draw(rng: np.random.Generator, n: int) -> list[tuple[dict[str, Any], dict[str, BaseDistribution]]]:
        return [({name: draw_value(rng, d) for name, d in dists.items()}, dists) for _ in range(n)]

    def near(rng: np.random.Generator, parents: list[Mapping[str, Any]], n: int) -> list[tuple[dict[str, Any], dict[str, BaseDistribution]]]:
        out = []
        for i in range(n if parents else 0):
            parent = parents[i % len(parents)]
            out.append(({name: near_or_drawn(rng, d, parent.get(name, MISSING)) for name, d in dists.items()}, dists))
        return out

    draw.near = near  # type: ignore[attr-defined]
    return draw


#: The probability that a candidate drawn near a parent moves each of the parent's parameters.
NEAR_CHANGE = 0.3


def near_or_drawn(rng: np.random.Generator, dist: BaseDistribution, parent: Any) -> Any:
    """A parameter of a candidate drawn near a parent: the parent's value, or with probability
    :data:`NEAR_CHANGE` one near it (:func:`near_value`); drawn afresh where the parent has none
    that ``dist`` can take (an inactive parameter of a conditional space, a dependent range)."""
    if parent is MISSING or not contains(dist, parent):
        return draw_value(rng, dist)
    return near_value(rng, dist, parent) if rng.random() < NEAR_CHANGE else parent


def near_value(rng: np.random.Generator, dist: BaseDistribution, value: Any, scale: float = 0.15) -> Any:
    """A value of ``dist`` near ``value``: a categorical's other choice at random; a range's value
    moved by a Gaussian step of ``scale`` of the range (in log space for a log range), clipped to it
    and put on its step grid."""
    if isinstance(dist, CategoricalDistribution):
        others = [c for c in dist.choices if not (c == value and type(c) is type(value))]
        return others[int(rng.integers(len(others)))] if others else value
    assert isinstance(dist, (IntDistribution, FloatDistribution))
    low, high = float(dist.low), float(dist.high)
    to, back = (math.log, math.exp) if dist.log else ((lambda v: v), (lambda v: v))
    lo, hi = to(low), to(high)
    moved = min(high, max(low, back(to(float(value)) + rng.normal(0.0, scale * (hi - lo)))))  # clipped after exp's rounding
    if isinstance(dist, IntDistribution):
        step = dist.step
        return int(min(dist.high, max(dist.low, dist.low + step * round((moved - dist.low) / step))))
    if dist.step is not None:
        return float(min(high, max(low, low + dist.step * round((moved - low) / dist.step))))
    return float(moved)


def draw_value(rng: np.random.Generator, dist: BaseDistribution) -> Any:
    """One value of ``dist``, uniformly (in log space for a log distribution)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            return int(min(dist.high, math.floor(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high + 1))))))
        return dist.low + dist.step * int(rng.integers((dist.high - dist.low) // dist.step + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    if dist.step is not None:
        return float(dist.low + dist.step * int(rng.integers(round((dist.high - dist.low) / dist.step) + 1)))
    return float(rng.uniform(dist.low, dist.high))


def contains(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``dist`` can take ``value``: a choice of a categorical, or a point of a range on its step grid."""
    try:
        internal = dist.to_internal_repr(value)  # a categorical refuses a value not among its choices
    except (TypeError, ValueError):
        return False
    if isinstance(dist, CategoricalDistribution):
        return True
    if isinstance(dist, IntDistribution):
        return dist.low <= internal <= dist.high and (internal - dist.low) % dist.step == 0
    if isinstance(dist, FloatDistribution):
        if dist.step is None:
            return dist.low <= internal <= dist.high
        k = (internal - dist.low) / dist.step
        return dist.low <= internal <= dist.high and abs(k - round(k)) < 1.0e-8
    return False


class Encoder:
    """Parameters (and log-costs) as a point of the unit cube, for the surrogate."""

    def __init__(self) -> None:
        self.numeric: dict[str, tuple[float, float, bool]] = {}  # name -> (low, high, log)
        self.choices: dict[str, list[Any]] = {}

    def learn(self, distributions: Mapping[str, BaseDistribution]) -> None:
        for name, d in distributions.items():
            if isinstance(d, CategoricalDistribution):
                known = self.choices.setdefault(name, [])
                known.extend(c for c in d.choices if c not in known)
            else:
                low, high, log = float(d.low), float(d.high), bool(d.log)
                if name in self.numeric:  # dependent ranges differ per trial: keep the hull
                    old = self.numeric[name]
                    low, high = min(low, old[0]), max(high, old[1])
                self.numeric[name] = (low, high, log)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        out: list[float] = []
        for name, (low, high, log) in sorted(self.numeric.items()):
            if name not in params:
                out.append(0.5)  # inactive (a conditional parameter): the middle, like a neutral value
                continue
            v, lo, hi = float(params[name]), low, high
            if log:
                v, lo, hi = math.log(v), math.log(lo), math.log(hi)
            out.append((v - lo) / (hi - lo) if hi > lo else 0.5)
        for name, choices in sorted(self.choices.items()):
            value = params.get(name, MISSING)
            out.extend(1.0 if value == c and type(value) is type(c) else 0.0 for c in choices)
        return np.array(out, dtype=np.float64)


MISSING = object()
