"""Seeded Optuna samplers, as a table: sampler name → factory.

The spec's allowed ``sampler.name`` values are the keys of :data:`SAMPLERS`. Optuna is
imported when a sampler is built, not when this module is, so validating a spec stays cheap.

Constraints reach the samplers through ``trial.set_constraint`` (Optuna ≥ 5), which the
searcher calls before telling a result, so every constrained sampler (TPE, NSGA-II/III, GP)
steers away from infeasible regions without a ``constraints_func``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

__all__ = ["SAMPLERS", "SamplerFactory", "SweepGridSampler", "make_sampler"]

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


def __getattr__(name: str) -> Any:
    # The grid sampler class subclasses Optuna's, so it is defined on first use; as a module
    # attribute it pickles by reference (Tune snapshots the searcher).
    if name == "SweepGridSampler":
        cls = _sweep_grid_sampler_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Every sampler a spec may name.
SAMPLERS: dict[str, SamplerFactory] = {
    "tpe": _optuna_sampler("TPESampler"),
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
