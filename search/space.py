"""A spec's ``space`` as an Optuna define-by-run function (conditionals and dependent ranges)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from pydantic import ValidationError

from search.costaware import draw_value
from search.spec import Param, Spec, provably_broken
from trainables.config import describe_validation_error, flatten, get_path

__all__ = [
    "CostPreview",
    "DefineByRun",
    "SpaceDraw",
    "SpecCosts",
    "CostModel",
    "cost_model",
    "cost_preview",
    "define_by_run",
    "describe_space",
    "is_active",
    "sample_configs",
    "trial_config",
]


def is_active(param: Param, values: Mapping[str, Any]) -> bool:
    """Whether a conditional parameter applies, given the values known so far."""
    for ref, wanted in (param.when or {}).items():
        if ref not in values:
            return False  # the parameter it depends on is itself inactive
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if values[ref] not in allowed:
            return False
    return True


def _suggest(trial: optuna.Trial, name: str, param: Param, values: Mapping[str, Any]) -> Any:
    if param.kind == "choice":
        return trial.suggest_categorical(name, param.choice)
    low, high = (values[b[1:]] if isinstance(b, str) else b for b in param.bounds)
    # A range bounded by another parameter can come out empty (e.g. [4, $depth] with
    # depth 3): it then collapses to its low bound rather than failing the sweep.
    high = max(low, high)
    if param.kind == "int":
        step = int(param.step or 1)
        return trial.suggest_int(name, int(low), int(high), step=step, log=param.is_log)
    if param.kind == "float":
        return trial.suggest_float(name, float(low), float(high), step=param.step)
    return trial.suggest_float(name, float(low), float(high), log=True)


class DefineByRun:
    """The define-by-run function of a spec: suggests every active parameter, in spec order.

    A conditional parameter is suggested only when its ``when`` holds, so inactive parameters
    never appear in an Optuna trial; they keep the family default in the trial config.
    ``when`` may refer to fixed parameters and defaults as well as earlier searched ones.
    A class, not a closure, so Ray can pickle the searcher's state for ``--resume``.
    """

    def __init__(self, spec: Spec) -> None:
        defaults = spec.entry.defaults
        self.params = dict(spec.space)
        self.known: dict[str, Any] = {}
        for param in spec.space.values():
            for ref in param.when or {}:
                if ref not in spec.space:
                    self.known[ref] = spec.fixed[ref] if ref in spec.fixed else get_path(defaults, ref)

    def __call__(self, trial: optuna.Trial) -> None:
        values = dict(self.known)
        for name, param in self.params.items():
            if is_active(param, values):
                values[name] = _suggest(trial, name, param, values)


class _DrawTrial:
    """Stands in for an Optuna trial in :class:`DefineByRun`: draws each value uniformly, at once.

    Records the distribution of every suggestion, as Optuna would, so a drawn candidate can be
    handed to a real trial later (see :class:`SpaceDraw`).
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _suggest(self, name: str, dist: Any) -> Any:
        value = draw_value(self._rng, dist)
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
        out = []
        for _ in range(n):
            trial = _DrawTrial(rng)
            self._fn(trial)  # type: ignore[arg-type]
            out.append((trial.params, trial.distributions))
        return out


class SpecCosts:
    """A spec's objectives as far as they are known before training, for the cost-aware sampler.

    ``costs(params)`` is one entry per objective: the family's static cost of that metric when
    it stands for what the trial will report (exact, or a tight bound), else ``None`` (learnt).
    ``costs.feasible(params)`` is False when a static cost proves a constraint broken (the
    searcher would refuse the candidate). Both compute the config's costs from the data's shape
    (:meth:`~trainables.registry.TrainableEntry.costs_before_training`), no model trained.
    """

    def __init__(self, spec: Spec, info: Any) -> None:
        self._spec, self._info = spec, info
        self._last: tuple[Any, dict[str, Any]] | None = None

    def _costs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = tuple(sorted(params.items()))
        if self._last is None or self._last[0] != key:  # the sampler asks both questions in a row
            self._last = (key, self._spec.entry.costs_before_training(trial_config(self._spec, params), self._info))
        return self._last[1]

    def __call__(self, params: Mapping[str, Any]) -> list[float | None]:
        costs = self._costs(params)
        return [costs[m].value if m in costs and costs[m].known else None for m in self._spec.metrics]

    def feasible(self, params: Mapping[str, Any]) -> bool:
        try:
            costs = self._costs(params)
        except ValueError:
            return False
        return not self._spec.broken_before_training(costs)


@dataclass(frozen=True)
class CostModel:
    """What the cost-aware sampler knows of a spec before training (see :func:`cost_model`)."""

    static: SpecCosts
    candidates: SpaceDraw
    is_feasible: Any


def cost_model(spec: Spec, info: Any) -> CostModel | None:
    """The spec's costs known before training, its candidate draw and feasibility; None if its family declares no static costs."""
    if info is None or spec.entry.static_costs is None:
        return None
    costs = SpecCosts(spec, info)
    return CostModel(static=costs, candidates=SpaceDraw(spec), is_feasible=costs.feasible)


def define_by_run(spec: Spec) -> DefineByRun:
    """The spec's space as an Optuna define-by-run callable (see :class:`DefineByRun`)."""
    return DefineByRun(spec)


def trial_config(spec: Spec, params: Mapping[str, Any]) -> dict[str, Any]:
    """The full resolved config of a trial: family defaults ← spec base config ← params."""
    # Dotted keys throughout: a sampled ``model.kind`` must not replace the fixed ``model.*`` values.
    return spec.entry.resolve({**flatten(spec.base_config()), **flatten(dict(params))}).model_dump()


def sample_configs(spec: Spec, n: int, sampler: optuna.samplers.BaseSampler | None = None) -> list[dict[str, Any]]:
    """Sample ``n`` parameter sets with the spec's seeded sampler (or ``sampler``), running nothing.

    Used by ``--dry-run``. No trial is evaluated, so model-based samplers draw from their
    start-up (independent) phase; the same spec and seed always give the same list.
    """
    from search.samplers import make_sampler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        directions = ["maximize" if m == "max" else "minimize" for m in spec.modes]
        study = optuna.create_study(directions=directions, sampler=sampler or make_sampler(spec))
        fn = define_by_run(spec)
        out = []
        for _ in range(n):
            trial = study.ask()
            fn(trial)
            out.append(dict(trial.params))
    return out


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
    """Static costs (:meth:`~trainables.registry.TrainableEntry.costs_before_training`) over ``n`` random configs.

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
            costs = entry.costs_before_training(trial_config(spec, params), info)
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
