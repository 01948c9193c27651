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

__all__ = ["SAMPLERS", "SamplerFactory", "SweepGridSampler", "SweepTPESampler", "make_sampler"]

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


class _CurvesOfPrunedHidden:
    """A multi-objective study as TPE should see it: pruned trials without learning curves.

    The sweep stores each trial's learning curve (one objective per epoch) as intermediate
    values, for optuna-dashboard and pruners. Optuna's multi-objective TPE assumes there are
    none (``Trial.report`` refuses multi-objective studies) and, finding some on a pruned trial,
    asks the study for its single direction and fails. Through this view it ranks pruned trials
    exactly as it does without curves. Everything else is the real study's.
    """

    def __init__(self, study: Any) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(self, deepcopy: bool = True, states: Any = None, use_cache: bool = False) -> list[Any]:
        import copy

        from optuna.trial import TrialState

        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        out = []
        for trial in trials:
            if trial.state == TrialState.PRUNED and trial.intermediate_values:
                trial = copy.copy(trial)  # never change the storage's cached trial
                trial.intermediate_values = {}
            out.append(trial)
        return out


def _sweep_tpe_sampler_class() -> type:
    import optuna

    class SweepTPESampler(optuna.samplers.TPESampler):
        """Optuna's TPE, unaffected by the learning curves a multi-objective sweep stores.

        See :class:`_CurvesOfPrunedHidden`; single-objective studies use the curves as TPE does.
        """

        @staticmethod
        def _view(study):
            return _CurvesOfPrunedHidden(study) if len(study.directions) > 1 else study

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
}


def make_sampler(spec: Any, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Build a spec's sampler, seeded with ``run.seed`` (or ``seed``).

    Raises:
        TypeError: an option the sampler does not take.
        ValueError: an option value the sampler rejects.
    """
    seed = spec.run.seed if seed is None else seed
    return SAMPLERS[spec.sampler.name](dict(spec.sampler.options), seed, spec.grid())
