"""A spec's ``space`` as an Optuna define-by-run function (conditionals and dependent ranges).

:func:`define_by_run` suggests a spec's active parameters into an Optuna trial,
:func:`trial_config` resolves a trial's parameters into the config it trains, and
:func:`sample_configs` draws parameter sets with the spec's seeded sampler without training.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import optuna

from search.spec import Param, Spec
from trainables.config import flatten, get_path

__all__ = ["DefineByRun", "define_by_run", "is_active", "sample_configs", "trial_config"]


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
