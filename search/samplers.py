"""Seeded Optuna samplers, as a table: sampler name → factory.

The spec's allowed ``sampler.name`` values are the keys of :data:`SAMPLERS`. Optuna is
imported when a sampler is built, not when this module is, so validating a spec stays cheap.

Constraints reach the samplers as each trial's ``constraints`` list (the form Optuna's
``constraints_func`` writes), which the searcher stores before telling a result, so every
constrained sampler (TPE, NSGA-II/III, GP) steers away from infeasible regions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["SAMPLERS", "TPE_MAX_HISTORY", "SamplerFactory", "SweepGridSampler", "SweepTPESampler", "make_sampler"]

#: ``factory(options, seed, grid)``: ``options`` are the spec's ``sampler.options`` (keyword
#: arguments of the Optuna constructor); ``grid`` maps each parameter to its values (grid only).
SamplerFactory = Callable[[Mapping[str, Any], int, "Mapping[str, list[Any]] | None"], "optuna.samplers.BaseSampler"]


def _optuna_sampler(class_name: str) -> SamplerFactory:
    def factory(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return getattr(optuna.samplers, class_name)(seed=seed, **options)

    factory.__name__ = f"make_{class_name}"
    return factory


def _grid_sampler(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    return __getattr__("SweepGridSampler")(dict(grid or {}), seed=seed, **options)


def _sweep_grid_sampler_class() -> type:
    import optuna

    class SweepGridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its ``study.stop()`` once the grid is exhausted.

        The stock sampler stops the study from ``after_trial``, which raises outside
        ``study.optimize`` (our trials are told through ask/tell) and would leave the last trial
        RUNNING. Here Ray Tune's ``num_samples`` (the grid size) ends the sweep instead.
        """

        def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
            return None

    SweepGridSampler.__module__ = __name__
    SweepGridSampler.__qualname__ = "SweepGridSampler"
    return SweepGridSampler


#: Finished trials TPE looks at, at most (``max_history`` of the ``tpe`` sampler).
TPE_MAX_HISTORY = 500


class _TPEView:
    """A study as our TPE sees it: pruned trials without curves, and a bounded history.

    * **Curves.** The sweep stores each trial's learning curve as intermediate values, for
      optuna-dashboard and pruners. Optuna's multi-objective TPE assumes there are none
      (``Trial.report`` refuses multi-objective studies) and, finding some on a pruned trial,
      asks the study for its single direction and fails. Through this view it ranks pruned
      trials of a multi-objective study exactly as it does without curves.
    * **History.** TPE's cost per suggestion grows with the number of finished trials (several
      passes over every trial per parameter), which would make a 10,000-trial sweep's driver
      slower with every trial. Past ``max_history`` finished trials it sees the best half of
      that many (by feasibility, then Pareto layer, or value for one objective: its "good"
      group stays exact while that group fits) and the most recent of the others.

    Everything else is the real study's.
    """

    def __init__(self, study: Any, hide_curves: bool, max_history: int | None, memo: dict[str, Any]) -> None:
        self._study = study
        self._hide_curves = hide_curves
        self._max_history = max_history
        self._memo = memo  # on the sampler: survives views, one per call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[Any]:
        import copy

        from optuna.trial import TrialState

        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        if self._max_history is not None:
            trials = self._bounded(trials)
        if not self._hide_curves:
            return trials
        out = []
        for trial in trials:
            if trial.state == TrialState.PRUNED and trial.intermediate_values:
                trial = copy.copy(trial)  # never change the storage's cached trial
                trial.intermediate_values = {}
            out.append(trial)
        return out

    def _bounded(self, trials: list[Any]) -> list[Any]:
        from optuna.trial import TrialState

        done = (TrialState.COMPLETE, TrialState.PRUNED)
        finished = [t for t in trials if t.state in done]
        if len(finished) <= self._max_history:
            return trials
        # The selection is redone once the finished trials have grown by a tenth; trials that
        # finished since count as recent, so it stays right in between at a flat cost.
        if len(finished) > self._memo.get("selected_at", 0) * 1.1:
            self._memo["selected_at"] = len(finished)
            self._memo["kept"] = self._select(finished)
            self._memo["newest"] = finished[-1].number
        kept, newest = self._memo["kept"], self._memo["newest"]
        return [t for t in trials if t.state not in done or t.number > newest or t.number in kept]

    def _select(self, finished: list[Any]) -> set[int]:
        import numpy as np
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        from analysis.pareto import nondominated_ranks

        keys: dict[int, tuple[bool, tuple[float, ...]]] = self._memo.setdefault("keys", {})
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        for t in complete:
            if t.number not in keys:  # a finished trial never changes: read it once
                keys[t.number] = (any(v > 0 for v in t.constraints.values()), tuple(t.values))
        numbers = np.array([t.number for t in complete])
        infeasible = np.array([keys[n][0] for n in numbers], dtype=bool)
        values = np.array([keys[n][1] for n in numbers], dtype=np.float64).reshape(len(numbers), -1)
        directions = ["max" if d == StudyDirection.MAXIMIZE else "min" for d in self._study.directions]
        ranks = nondominated_ranks(values, directions).astype(np.float64)
        ranks[ranks < 0] = np.inf
        # Feasible first, then by Pareto layer; ties to the earlier trial.
        order = np.lexsort((numbers, ranks, infeasible))
        best = set(numbers[order[: self._max_history // 2]].tolist())
        rest = [t.number for t in finished if t.number not in best]
        return best | set(rest[-(self._max_history - len(best)) :])


def _sweep_tpe_sampler_class() -> type:
    import optuna

    class SweepTPESampler(optuna.samplers.TPESampler):
        """Optuna's TPE, unaffected by stored learning curves, with a bounded history.

        Args:
            max_history: Finished trials TPE looks at, at most (default
                :data:`TPE_MAX_HISTORY`; ``None``: all of them). See :class:`_TPEView`.
            **options: Keyword arguments of ``optuna.samplers.TPESampler``.
        """

        def __init__(self, *args: Any, max_history: int | None = TPE_MAX_HISTORY, **options: Any) -> None:
            if max_history is not None and (isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 2):
                raise ValueError(f"max_history must be an integer >= 2 or null, got {max_history!r}")
            super().__init__(*args, **options)
            self._max_history = max_history
            self._memo: dict[str, Any] = {}

        def _view(self, study):
            multi = len(study.directions) > 1
            if not multi and self._max_history is None:
                return study
            return _TPEView(study, hide_curves=multi, max_history=self._max_history, memo=self._memo)

        def sample_relative(self, study, trial, search_space):  # noqa: D102
            return super().sample_relative(self._view(study), trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
            return super().sample_independent(self._view(study), trial, param_name, param_distribution)

    SweepTPESampler.__module__ = __name__
    SweepTPESampler.__qualname__ = "SweepTPESampler"
    return SweepTPESampler


def _tpe_sampler(options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return __getattr__("SweepTPESampler")(seed=seed, **options)


def _nothing_known(params: Mapping[str, Any]) -> None:
    return None


def _cost_aware_sampler(
    options: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]] | None = None, costs: Any = None
) -> optuna.samplers.BaseSampler:
    """:class:`~search.costaware.CostAwareSampler` on a spec's static costs (see :func:`make_sampler`).

    ``options`` are the sampler's keyword arguments, plus ``fallback_options``: those of the
    multivariate TPE (constant liar) it hands over to at scale.
    """
    import optuna

    from search.costaware import CostAwareSampler

    options = dict(options)
    fallback_options = {"multivariate": True, "group": True, "constant_liar": True, **dict(options.pop("fallback_options", None) or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        fallback = __getattr__("SweepTPESampler")(seed=seed, **fallback_options)
    if costs is not None:
        return CostAwareSampler(costs.static, candidates=costs.candidates, is_feasible=costs.is_feasible, fallback=fallback, seed=seed, **options)
    return CostAwareSampler(_nothing_known, fallback=fallback, seed=seed, **options)


_LAZY_CLASSES = {"SweepGridSampler": _sweep_grid_sampler_class, "SweepTPESampler": _sweep_tpe_sampler_class}


def __getattr__(name: str) -> Any:
    # The sampler classes subclass Optuna's, so they are defined on first use; as module
    # attributes they pickle by reference (Tune snapshots the searcher).
    if name in _LAZY_CLASSES:
        cls = _LAZY_CLASSES[name]()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Every sampler a spec may name.
SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _tpe_sampler,
    "nsga2": _optuna_sampler("NSGAIISampler"),
    "nsga3": _optuna_sampler("NSGAIIISampler"),
    "gp": _optuna_sampler("GPSampler"),
    "random": _optuna_sampler("RandomSampler"),
    "qmc": _optuna_sampler("QMCSampler"),
    "grid": _grid_sampler,
    "cost_aware": _cost_aware_sampler,
}


def make_sampler(spec: Any, seed: int | None = None, costs: Any = None) -> optuna.samplers.BaseSampler:
    """Build a spec's sampler, seeded with ``run.seed`` (or ``seed``).

    ``costs`` (:func:`search.space.cost_model` of the spec and its data) lets ``cost_aware``
    compute each candidate's costs before training; without it (or for a family that declares no
    static costs) that sampler leaves every choice to Optuna's GP, then to multivariate TPE.

    Raises:
        TypeError: an option the sampler does not take.
        ValueError: an option value the sampler rejects.
    """
    seed = spec.run.seed if seed is None else seed
    factory = SAMPLERS[spec.sampler.name]
    if factory is _cost_aware_sampler:
        return _cost_aware_sampler(dict(spec.sampler.options), seed, spec.grid(), costs=costs)
    return factory(dict(spec.sampler.options), seed, spec.grid())
