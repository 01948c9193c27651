"""Seeded Optuna samplers by name.

Constraints reach the samplers through ``trial.set_constraint`` (Optuna ≥ 5), which the
searcher calls before telling a result, so every constrained sampler (TPE, NSGA-II/III, GP)
steers away from infeasible regions without a ``constraints_func``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import optuna

if TYPE_CHECKING:
    from search.spec import Spec

__all__ = ["make_sampler", "SweepGridSampler"]


class SweepGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is exhausted.

    The stock sampler stops the study from ``after_trial``, which raises outside
    ``study.optimize`` (our trials are told through ask/tell) and would leave the last trial
    RUNNING. Here Ray Tune's ``num_samples`` (the grid size) ends the sweep instead.
    """

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_sampler(spec: Spec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Build the spec's sampler, seeded with ``run.seed`` (or ``seed``).

    ``sampler.options`` are passed to the Optuna constructor as keyword arguments.

    Raises:
        TypeError: an option the sampler does not take.
        ValueError: an option value the sampler rejects.
    """
    name = spec.sampler.name
    options = dict(spec.sampler.options)
    seed = spec.run.seed if seed is None else seed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, **options)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, **options)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed, **options)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, **options)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed, **options)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, **options)
        if name == "grid":
            grid = {name: p.grid_values() for name, p in spec.space.items()}
            return SweepGridSampler(grid, seed=seed, **options)
    raise ValueError(f"unknown sampler {name!r}")
