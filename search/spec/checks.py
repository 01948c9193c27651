"""Checks of a spec against its trainable family, and across its own fields.

What the models of :mod:`search.spec.model` cannot see field by field: that every parameter in
``space`` and ``fixed`` names a field of the family's config and takes its values
(:func:`check_spec` stores them as a trial gets them), that the fixed values fit together, that
references point back to earlier parameters, that objectives and constraints name metrics the
family reports, and that the sampler can take the space and its options. Each failure is one
:class:`~search.spec.SpecError`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from search.samplers import SAMPLERS
from search.spec.model import Param, Spec, SpecError
from trainables.config import CrossFieldError, ParamError, check_param_value, describe_validation_error, param_kind, unflatten
from trainables.registry import TrainableEntry, get_trainable, trainable_names

__all__ = ["check_spec"]


def check_spec(spec: Spec, source: str, check_sampler: bool = True) -> Spec:
    """The spec with its parameter values typed as the family's config takes them, once every check passes.

    ``check_sampler`` builds the sampler once to check its options (skipped when re-reading a
    run dir's saved spec: that needs no Optuna).

    Raises:
        SpecError: the first check that fails, in one line.
    """
    spec = _check_params(spec, source)
    _check_semantics(spec, source)
    if check_sampler:
        try:
            SAMPLERS[spec.sampler.name](dict(spec.sampler.options), spec.run.seed, spec.grid())
        except TypeError as exc:
            raise SpecError(source, "sampler.options", str(exc)) from None
        except ValueError as exc:
            raise SpecError(source, "sampler", str(exc)) from None
    return spec


def _entry(spec: Spec, source: str) -> TrainableEntry:
    try:
        return get_trainable(spec.trainable)
    except KeyError:
        raise SpecError(source, "trainable", f"unknown trainable {spec.trainable!r} (choose from {', '.join(trainable_names())})") from None


def _check_value(model: Any, where: str, name: str, value: Any, source: str) -> Any:
    try:
        return check_param_value(model, name, value)
    except ParamError as exc:
        raise SpecError(source, where, str(exc)) from None


def _check_param_name(model: Any, where: str, name: str, trainable: str, source: str) -> str:
    try:
        return param_kind(model, name)
    except ParamError as exc:
        raise SpecError(source, where, f"not a parameter of trainable {trainable!r}{str(exc).removeprefix('not a parameter')}") from None


def _range_problem(param: Param, kind: str, name: str) -> str | None:
    """What is wrong with a range (int/float/log) for a parameter of ``kind``, or None."""
    if kind in ("choice", "bool", "str", "other"):
        return f"{name} takes a fixed set of values, not a range: use choice: [...]"
    if kind == "int" and param.kind in ("float", "log"):
        return f"{name} is a whole number: use int: [low, high] (with log: true for a log scale)"
    return None


def _check_params(spec: Spec, source: str) -> Spec:
    """Check ``fixed`` and ``space`` against the family's config model; typed values back."""
    entry = _entry(spec, source)
    model = entry.config
    fixed: dict[str, Any] = {}
    for name, value in spec.fixed.items():
        _check_param_name(model, f"fixed.{name}", name, spec.trainable, source)
        fixed[name] = _check_value(model, f"fixed.{name}", name, value, source)
    space: dict[str, Param] = {}
    for name, param in spec.space.items():
        where = f"space.{name}"
        kind = _check_param_name(model, where, name, spec.trainable, source)
        update: dict[str, Any] = {}
        if param.kind == "choice":
            update["choice"] = [_check_value(model, f"{where}.choice.{i}", name, v, source) for i, v in enumerate(param.choice or [])]
        else:
            problem = _range_problem(param, kind, name)
            if problem:
                raise SpecError(source, f"{where}.{param.kind}", problem)
            for i, bound in enumerate(param.bounds):
                if not isinstance(bound, str):
                    _check_value(model, f"{where}.{param.kind}.{i}", name, bound, source)
        if param.when:
            when: dict[str, Any] = {}
            for ref, wanted in param.when.items():
                if ref in spec.space:
                    when[ref] = wanted  # checked as that parameter's own values
                    continue
                _check_param_name(model, f"{where}.when.{ref}", ref, spec.trainable, source)
                values = wanted if isinstance(wanted, list) else [wanted]
                checked = [_check_value(model, f"{where}.when.{ref}", ref, v, source) for v in values]
                when[ref] = checked if isinstance(wanted, list) else checked[0]
            update["when"] = when
        space[name] = param.model_copy(update=update) if update else param
    spec = spec.model_copy(update={"fixed": fixed, "space": space})
    _check_combination(spec, entry, source)
    return spec


def _check_combination(spec: Spec, entry: TrainableEntry, source: str) -> None:
    """Checks across fields (``model.groups <= model.width``) of the config every trial shares.

    A check that involves a searched parameter depends on the values sampled, so it is left to
    the trial (which fails with that message); one over fixed values and defaults only is an
    error now.
    """
    try:
        entry.config.model_validate(unflatten(spec.base_config()))
    except ValidationError as exc:
        for err in exc.errors():
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, CrossFieldError):
                if any(f in spec.space for f in cause.fields):
                    continue
                field = next((f for f in cause.fields if f in spec.fixed), cause.fields[0])
                raise SpecError(source, f"fixed.{field}" if field in spec.fixed else field, str(cause)) from None
            path = ".".join(str(p) for p in err["loc"])
            raise SpecError(source, f"fixed.{path}" if path in spec.fixed else path, describe_validation_error(err)) from None


#: Metrics a trial reports only when ``cost.latency`` is on.
_LATENCY_METRICS = ("latency_ms", "throughput_sps")


def _latency_on(spec: Spec) -> bool:
    """Whether every trial of the spec times its model (``cost.latency`` fixed true, as typed)."""
    from trainables.config import CostConfig

    try:
        return "cost.latency" not in spec.space and CostConfig.model_validate({"latency": spec.fixed.get("cost.latency", False)}).latency
    except ValueError:
        return False  # the config check reports the bad value itself


def _check_semantics(spec: Spec, source: str) -> None:
    """Cross-field checks of the spec itself: references, metrics, sampler fit."""
    reportable = set(spec.entry.report_keys)
    seen: list[str] = []
    for name, param in spec.space.items():
        if name in spec.fixed:
            raise SpecError(source, f"space.{name}", "is also in fixed; a parameter is either searched or fixed")
        for ref in param.references():
            if ref == name:
                raise SpecError(source, f"space.{name}", "cannot depend on itself")
            if ref in spec.space and ref not in seen:
                raise SpecError(source, f"space.{name}", f"depends on {ref!r}, which must be listed before it in space")
        for bound in param.bounds:
            if isinstance(bound, str) and bound[1:] not in spec.space:
                raise SpecError(source, f"space.{name}", f"bound {bound!r} must name an earlier searched parameter")
        seen.append(name)

    for i, objective in enumerate(spec.objectives):
        if objective.metric == "test_accuracy":
            raise SpecError(source, f"objectives.{i}.metric", "test_accuracy is measured at full budget only and is never an objective; use val_accuracy")
        if objective.metric not in reportable:
            raise SpecError(source, f"objectives.{i}.metric", f"unknown metric {objective.metric!r} (reported: {', '.join(sorted(reportable))})")
    if len(set(spec.metrics)) != len(spec.metrics):
        raise SpecError(source, "objectives", "an objective metric is listed twice")
    for i, constraint in enumerate(spec.constraints):
        if constraint.metric not in reportable:
            raise SpecError(source, f"constraints.{i}", f"unknown metric {constraint.metric!r} (reported: {', '.join(sorted(reportable))})")
    if spec.scheduler.name == "asha":
        metric, _ = spec.scheduler_metric
        if metric not in reportable:
            raise SpecError(source, "scheduler.metric", f"unknown metric {metric!r}")
    timed = [m for m in (*spec.metrics, *(c.metric for c in spec.constraints)) if m in _LATENCY_METRICS]
    if timed and not _latency_on(spec):
        raise SpecError(
            source, "fixed", f"{timed[0]} is measured only with cost.latency: true; add 'cost.latency: true' to fixed "
            "(or --set cost.latency=true)"
        )

    if spec.sampler.name == "grid":
        for name, param in spec.space.items():
            if param.when or any(isinstance(b, str) for b in param.bounds):
                raise SpecError(source, f"space.{name}", "the grid sampler needs an unconditional space (no when, no $ bounds)")
            try:
                param.grid_values()
            except ValueError:
                raise SpecError(source, f"space.{name}", "the grid sampler needs choice, int or stepped float parameters") from None
        if spec.run.num_samples is not None and spec.run.num_samples > spec.grid_size():
            raise SpecError(source, "run.num_samples", f"the grid has {spec.grid_size()} points; num_samples must not exceed it")
    if not spec.space:
        raise SpecError(source, "space", "nothing to search: add at least one parameter")
