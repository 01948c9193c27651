"""A spec's static costs as the cost-aware sampler sees them: each candidate's costs known before training.

:class:`StaticCostModel` gives :class:`~search.costaware.CostAwareSampler` what it needs of a
spec and its data: random candidates of the space (:class:`SpaceDraw`), each candidate's
objectives as far as the family's static costs fix them
(:data:`~search.costaware.StaticObjectives`), and whether those costs already break a
constraint. The costs are :meth:`~trainables.registry.TrainableEntry.static_costs_of` the
candidate's config (one :class:`~trainables.report.StaticCost` per metric), computed from the
data's shape alone, no model trained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna

from search.candidates import MISSING, near_or_drawn
from search.costaware import Affine, draw_value
from search.space import DefineByRun, trial_config
from search.spec import Spec

__all__ = ["SpaceDraw", "StaticCostModel", "static_cost_model"]


class _DrawTrial:
    """Stands in for an Optuna trial in :class:`DefineByRun`: draws each value uniformly, at once.

    Records the distribution of every suggestion, as Optuna would, so a drawn candidate can be
    handed to a real trial later (see :class:`SpaceDraw`).
    """

    def __init__(self, rng: np.random.Generator, parent: Mapping[str, Any] | None = None) -> None:
        self._rng = rng
        self._parent = parent
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _suggest(self, name: str, dist: Any) -> Any:
        if self._parent is None:
            value = draw_value(self._rng, dist)
        else:  # near a parent: its value, or one near it, where the parent has one the space allows here
            value = near_or_drawn(self._rng, dist, self._parent.get(name, MISSING))
        self.params[name], self.distributions[name] = value, dist
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._suggest(name, optuna.distributions.CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        return self._suggest(name, optuna.distributions.IntDistribution(low, high, step=step, log=log))

    def suggest_float(self, name: str, low: float, high: float, step: float | None = None, log: bool = False) -> float:
        return self._suggest(name, optuna.distributions.FloatDistribution(low, high, step=step, log=log))


class SpaceDraw:
    """Random candidates of a spec's space, conditionals and dependent ranges respected.

    The candidate draw of :class:`~search.costaware.CostAwareSampler`: ``draw(rng, n)`` gives
    ``n`` parameter sets with their distributions, in microseconds each (no Optuna study). A
    class, not a closure, so the sampler pickles.
    """

    def __init__(self, spec: Spec) -> None:
        self._fn = DefineByRun(spec)

    def __call__(self, rng: np.random.Generator, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [self._one(_DrawTrial(rng)) for _ in range(n)]

    def near(self, rng: np.random.Generator, parents: list[Mapping[str, Any]], n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``n`` candidates near ``parents`` (cycling through them): the space run again, each
        parameter the parent's value or, with probability :data:`search.candidates.NEAR_CHANGE`,
        one near it; a parameter the parent lacks (a condition changed) is drawn afresh."""
        return [self._one(_DrawTrial(rng, parents[i % len(parents)])) for i in range(n if parents else 0)]

    def _one(self, trial: _DrawTrial) -> tuple[dict[str, Any], dict[str, Any]]:
        self._fn(trial)  # type: ignore[arg-type]
        return trial.params, trial.distributions


class StaticCostModel:
    """What the cost-aware sampler knows of a spec's candidates before training.

    Attributes:
        candidates: Random candidates of the space (:class:`SpaceDraw`).

    ``objectives(params)`` is one entry per objective (a
    :data:`~search.costaware.StaticObjectives`): the static cost of that metric when it stands for
    what the trial will report (exact, or a tight bound), an :class:`~search.costaware.Affine` cost
    when it is a lower bound with a known span per unit of a learnt rate, else ``None`` (learnt).
    ``feasible(params)`` is False when a static cost proves a constraint broken (the searcher
    would refuse the candidate). Both compute the candidate's static costs once
    (:meth:`~trainables.registry.TrainableEntry.static_costs_of`); a class, not closures, so the
    sampler pickles.
    """

    def __init__(self, spec: Spec, info: Any) -> None:
        self._spec, self._info = spec, info
        self.candidates = SpaceDraw(spec)
        self._last: tuple[Any, dict[str, Any]] | None = None

    def _costs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = tuple(sorted(params.items()))
        if self._last is None or self._last[0] != key:  # the sampler asks both questions in a row
            self._last = (key, self._spec.entry.static_costs_of(trial_config(self._spec, params), self._info))
        return self._last[1]

    def objectives(self, params: Mapping[str, Any]) -> list[float | Affine | None]:
        """The candidate's objectives known before training: a value, an :class:`~search.costaware.Affine`
        cost (known up to a learnt rate, e.g. a spiking net's energy), or ``None`` for those learnt by training."""
        costs = self._costs(params)
        out: list[float | Affine | None] = []
        for m in self._spec.metrics:
            cost = costs.get(m)
            if cost is not None and cost.known:
                out.append(cost.value)
            elif cost is not None and cost.relation == "lower" and cost.span is not None:
                out.append(Affine(cost.value, cost.span))
            else:
                out.append(None)
        return out

    def broken(self, params: Mapping[str, Any]) -> list[Any] | None:
        """The constraints the candidate's static costs prove broken; ``None`` when it cannot be built."""
        try:
            costs = self._costs(params)
        except ValueError:
            return None
        return self._spec.broken_before_training(costs)

    def feasible(self, params: Mapping[str, Any]) -> bool:
        """False when the candidate's static costs prove a constraint broken (or it cannot be built)."""
        return self.broken(params) == []


def static_cost_model(spec: Spec, info: Any) -> StaticCostModel | None:
    """The spec's :class:`StaticCostModel` on its data (``info``); None without data or when its family declares no static costs."""
    if info is None or spec.entry.static_costs is None:
        return None
    return StaticCostModel(spec, info)
