"""Sweep specs: YAML → a validated, typed :class:`Spec`, checked once at load.

Every error names the file, the dotted field path and what was expected, in one line, and is
raised as :class:`SpecError` before any trial starts or any directory is written.

A spec names a registered trainable family; the parameters in ``space`` and ``fixed`` are dotted
names into that family's config (``model.width``), so a typo is an error, not a silent no-op.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search.bounds import BoundSyntaxError, parse_bound, satisfies
from search.samplers import SAMPLERS
from search.schedulers import SCHEDULERS
from trainables.config import (
    BudgetConfig,
    CrossFieldError,
    DataConfig,
    Device,
    ParamError,
    check_param_value,
    describe_validation_error,
    param_kind,
    set_path,
    unflatten,
)
from trainables.registry import TrainableEntry, get_trainable, trainable_names

__all__ = [
    "SpecError",
    "load_yaml",
    "check_sweep_name",
    "feasible",
    "provably_broken",
    "Spec",
    "Param",
    "Objective",
    "Constraint",
    "SAMPLERS",
    "SCHEDULERS",
    "load_spec",
    "parse_spec",
    "apply_overrides",
    "spec_to_yaml",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The operators a constraint may use (of :data:`search.bounds.OPERATORS`).
CONSTRAINT_OPS: tuple[str, ...] = ("<=", ">=")


class SpecError(ValueError):
    """A user error in a spec: ``str(err)`` is one line naming file, field and expectation."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source, self.path, self.message = source, path, message
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: ``1e-3`` and ``1E5`` are floats.

    YAML 1.1 (PyYAML's default) needs a dot in a float (``1.0e-3``) and reads ``1e-3`` as the
    string ``"1e-3"``, which would silently turn a learning rate into text.
    """


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
        |[-+]?[0-9][0-9_]*\.[0-9_]*
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 numbers (``1e-3`` is a float, not a string)."""
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def check_sweep_name(name: str) -> str:
    """A sweep name is one plain path component (it names the run dir under the storage).

    Raises:
        ValueError: for anything else (``../x``, ``a/b``, an empty name).
    """
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"expected letters, digits, '_', '-', '.' (one plain name, no '/'), got {name!r}")
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Bound = float | int | str  # a number, or "$param" naming an earlier searched parameter


class Param(_Model):
    """One searched parameter: exactly one of ``choice``, ``int``, ``float``, ``log``.

    ``int``/``float``/``log`` take ``[low, high]`` (inclusive); ``log: [a, b]`` is a float on a
    log scale (``int`` takes ``log: true`` instead). ``step`` discretises int/float ranges. A
    bound may be ``"$name"``: the value sampled for the earlier parameter ``name`` (a range that
    depends on another parameter, e.g. ``sne.active: {int: [1, $sne.students]}``; a range that
    comes out empty collapses to its low bound). ``when`` makes
    the parameter conditional: it is sampled only when every named parameter has the given value
    (or one of a list of values), and left at the family default otherwise.
    """

    choice: list[Any] | None = None
    int_: tuple[Bound, Bound] | None = Field(default=None, alias="int")
    float_: tuple[Bound, Bound] | None = Field(default=None, alias="float")
    log_: tuple[Bound, Bound] | bool | None = Field(default=None, alias="log")
    step: float | None = Field(default=None, gt=0)
    when: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Param:
        kinds = [k for k, v in (("choice", self.choice), ("int", self.int_), ("float", self.float_)) if v is not None]
        if isinstance(self.log_, tuple):
            kinds.append("log")
        if len(kinds) != 1:
            raise ValueError(
                "expected exactly one of choice: [..], int: [low, high], float: [low, high], "
                f"log: [low, high]; got {', '.join(kinds) or 'none'}"
            )
        if self.choice is not None and not self.choice:
            raise ValueError("choice needs at least one value")
        if self.log_ is True and self.int_ is None:
            raise ValueError("log: true applies to int ranges; write log: [low, high] for floats")
        if self.kind == "choice" and self.step is not None:
            raise ValueError("step does not apply to choice")
        if self.kind == "log" and self.step is not None:
            raise ValueError("step cannot be combined with a log scale")
        if self.kind == "int" and self.step is not None and self.step != int(self.step):
            raise ValueError(f"step of an int range must be a whole number, got {self.step}")
        low, high = self.bounds
        for b in (low, high):
            if isinstance(b, str) and not (b.startswith("$") and len(b) > 1):
                raise ValueError(f"a bound must be a number or '$parameter', got {b!r}")
        if self.kind != "choice" and not isinstance(low, str) and not isinstance(high, str):
            if low > high:
                raise ValueError(f"low ({low}) must not exceed high ({high})")
            if self.is_log and low <= 0:
                raise ValueError(f"a log-scale range needs low > 0, got {low}")
            if self.kind == "int" and (low != int(low) or high != int(high)):
                raise ValueError(f"int bounds must be whole numbers, got [{low}, {high}]")
        return self

    @property
    def kind(self) -> Literal["choice", "int", "float", "log"]:
        if self.choice is not None:
            return "choice"
        if self.int_ is not None:
            return "int"
        if self.float_ is not None:
            return "float"
        return "log"

    @property
    def is_log(self) -> bool:
        return self.kind == "log" or (self.kind == "int" and self.log_ is True)

    @property
    def bounds(self) -> tuple[Bound, Bound]:
        rng = {"int": self.int_, "float": self.float_, "log": self.log_}.get(self.kind)
        return rng if isinstance(rng, tuple) else (None, None)  # type: ignore[return-value]

    def references(self) -> list[str]:
        """Names of other parameters this one depends on (``when`` and ``$`` bounds)."""
        refs = list(self.when or {})
        refs += [b[1:] for b in self.bounds if isinstance(b, str)]
        return refs

    def grid_values(self) -> list[Any]:
        """Every value of a finite parameter (for the grid sampler)."""
        if self.kind == "choice":
            return list(self.choice or [])
        if self.kind == "int":
            low, high = (int(b) for b in self.bounds)  # type: ignore[arg-type]
            return list(range(low, high + 1, int(self.step or 1)))
        if self.kind == "float" and self.step:
            low, high = self.bounds  # type: ignore[misc]
            n = int(math.floor((high - low) / self.step + 1e-9))
            return [low + i * self.step for i in range(n + 1)]
        raise ValueError("only choice, int and stepped float parameters are finite")


class Objective(_Model):
    metric: str
    mode: Literal["max", "min"]


class Constraint(_Model):
    """``metric <= bound`` or ``metric >= bound``; feasible when :meth:`violation` ≤ 0.

    Written in the grammar of :mod:`search.bounds` (as ``analysis.select``'s conditions are),
    restricted to :data:`CONSTRAINT_OPS` and to undotted metric names.
    """

    text: str
    metric: str
    op: Literal[CONSTRAINT_OPS]  # type: ignore[valid-type]
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return cls._fields_from_text(value)
        return value

    @classmethod
    def parse(cls, text: str) -> Constraint:
        return cls(**cls._fields_from_text(text))

    @staticmethod
    def _fields_from_text(text: str) -> dict[str, Any]:
        try:
            parsed = parse_bound(text, CONSTRAINT_OPS, dotted=False)
        except BoundSyntaxError as exc:
            if exc.op is None:
                raise ValueError(f"expected 'metric <= number' or 'metric >= number', got {text!r}") from None
            raise ValueError(f"expected a number after {exc.op!r}, got {exc.number!r}") from None
        return {"text": text.strip(), "metric": parsed.name, "op": parsed.op, "bound": parsed.value}

    def violation(self, value: float) -> float:
        """Optuna's convention: ≤ 0 is feasible."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def satisfied(self, value: Any) -> Any:
        """Whether values meet the bound (:func:`search.bounds.satisfies`; missing never does)."""
        return satisfies(value, self.op, self.bound)


def provably_broken(constraint: Constraint, cost: Any) -> bool:
    """Whether a cost known before training (a :class:`~trainables.report.StaticCost`) proves
    that every report of the trained trial breaks ``constraint``.

    An ``exact`` value decides it; an ``upper`` bound (the report is at most the value) proves
    only a ``>=`` bound broken, a ``lower`` bound only a ``<=`` bound.
    """
    if cost.relation == "exact" or (cost.relation == "upper") == (constraint.op == ">="):
        return not bool(constraint.satisfied(cost.value))
    return False


def feasible(values: Mapping[str, Any], constraints: Sequence[Constraint | str]) -> Any:
    """Whether results satisfy every constraint: the one definition of "feasible".

    ``values`` maps metric names to scalars (one result: returns a bool) or to equally long
    arrays (a table's columns: returns a boolean array). A missing or non-finite constrained
    value cannot be shown to satisfy its constraint, so it is infeasible.
    """
    mask: Any = True
    for constraint in constraints:
        if isinstance(constraint, str):
            constraint = Constraint.parse(constraint)
        mask = mask & constraint.satisfied(values.get(constraint.metric))
    if isinstance(mask, np.ndarray) and mask.ndim == 0:
        return bool(mask)
    return mask if isinstance(mask, np.ndarray) else bool(mask)


class SamplerSection(_Model):
    """The Optuna sampler: the keys of :data:`search.samplers.SAMPLERS`; ``options`` are its keyword arguments."""

    name: Literal[tuple(SAMPLERS)] = "cost_aware"  # type: ignore[valid-type]
    options: dict[str, Any] = Field(default_factory=dict)


class SchedulerSection(_Model):
    """Early stopping: ``asha`` ranks one metric, ``mo_asha`` ranks all objectives (and constraints).

    The allowed names are the keys of :data:`search.schedulers.SCHEDULERS`.
    """

    name: Literal[tuple(SCHEDULERS)] = "none"  # type: ignore[valid-type]
    metric: str | None = None  # asha only (mo_asha ranks every objective); default: the first objective
    mode: Literal["max", "min"] | None = None
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1)
    tie_break: Literal["crowding", "eps_net"] = "crowding"  # mo_asha: order within a Pareto layer


class Resources(_Model):
    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)


class RunSection(_Model):
    num_samples: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    resources: Resources = Field(default_factory=Resources)
    storage: str = "runs"
    max_failures: int = Field(default=1, ge=0)
    seed: int = 0
    device: Device = "auto"
    reuse_actors: bool | None = None  # None: on for a local Ray, off when joining a cluster


class Spec(_Model):
    """A validated sweep spec. Build with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    trainable: str
    description: str = ""
    data: DataConfig = Field(default_factory=DataConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    objectives: Annotated[list[Objective], Field(min_length=1)]
    constraints: list[Constraint] = Field(default_factory=list)
    space: dict[str, Param] = Field(default_factory=dict)
    fixed: dict[str, Any] = Field(default_factory=dict)
    sampler: SamplerSection = Field(default_factory=SamplerSection)
    scheduler: SchedulerSection = Field(default_factory=SchedulerSection)
    run: RunSection = Field(default_factory=RunSection)

    @field_validator("sampler", "scheduler", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        """Allow ``sampler: tpe`` as shorthand for ``sampler: {name: tpe}``."""
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_sweep_name(value)

    # ---- derived views -------------------------------------------------------------------
    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]

    @property
    def scheduler_metric(self) -> tuple[str, str]:
        metric = self.scheduler.metric or self.objectives[0].metric
        mode = self.scheduler.mode
        if mode is None:
            mode = next((o.mode for o in self.objectives if o.metric == metric), "max")
        return metric, mode

    def scheduler_text(self) -> str:
        """The scheduler in words, for the sweep's first line and ``--dry-run``."""
        sched = self.scheduler
        if sched.name == "none":
            return "none"
        rungs = f"grace {sched.grace_period}, reduction {sched.reduction_factor:g}"
        if sched.grace_period >= self.budget.epochs:
            # The first rung would be the last epoch: the scheduler can never stop a trial.
            rungs += f" (warning: grace_period >= budget.epochs = {self.budget.epochs}: no trial can be stopped early)"
        if sched.name == "asha":
            metric, mode = self.scheduler_metric
            return f"asha on {metric} ({mode}), {rungs}"
        ranked = ", ".join(self.metrics) + (f" + {len(self.constraints)} constraint(s)" if self.constraints else "")
        unused = "; scheduler.metric/mode are not used" if sched.metric is not None or sched.mode is not None else ""
        return f"mo_asha on {ranked} (tie-break {sched.tie_break}), {rungs}{unused}"

    def grid(self) -> dict[str, list[Any]] | None:
        """Every value of every searched parameter, for the grid sampler (``None`` for other samplers)."""
        if self.sampler.name != "grid":
            return None
        return {name: p.grid_values() for name, p in self.space.items()}

    def grid_size(self) -> int:
        return math.prod(len(p.grid_values()) for p in self.space.values()) if self.space else 1

    @property
    def num_samples(self) -> int:
        if self.run.num_samples is not None:
            return self.run.num_samples
        return self.grid_size() if self.sampler.name == "grid" else 16

    def base_config(self) -> dict[str, Any]:
        """The trial config every trial shares: data, budget, runtime, seed and ``fixed``."""
        config: dict[str, Any] = {
            "data": self.data.model_dump(),
            "budget": self.budget.model_dump(),
            "runtime": {"device": self.run.device, "threads": max(1, math.floor(self.run.resources.cpu))},
            "seed": self.run.seed,
        }
        for key, value in self.fixed.items():
            set_path(config, key, copy.deepcopy(value))
        # Resolve data paths on the driver: trials run in other working dirs (and machines).
        config["data"] = DataConfig.model_validate(config["data"]).resolved().model_dump()
        return config

    @property
    def entry(self) -> TrainableEntry:
        """The registry entry of the spec's trainable family."""
        return get_trainable(self.trainable)

    def is_feasible(self, values: Mapping[str, Any]) -> Any:
        """:func:`feasible` under this spec's constraints."""
        return feasible(values, self.constraints)

    def broken_before_training(self, costs: Mapping[str, Any]) -> list[Constraint]:
        """The constraints that a candidate's costs known before training prove broken (:func:`provably_broken`)."""
        return [c for c in self.constraints if c.metric in costs and provably_broken(c, costs[c.metric])]


# ---- loading -------------------------------------------------------------------------------


def load_spec(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Spec:
    """Read, override (``--set key=value``) and validate a spec file.

    Raises:
        SpecError: one line naming the file, the dotted field and what was expected.
    """
    source = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SpecError(source, "", "spec file not found") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read spec file ({exc.strerror})") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, "", f"invalid YAML: {where}{problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(source, "", f"expected a mapping of spec sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides, source)
    try:
        return parse_spec(raw, source)
    except SpecError as exc:
        key = _override_behind(exc.path, overrides)
        if key is None:
            raise
        raise SpecError("--set", key, exc.message) from None


def _override_behind(path: str, overrides: Sequence[str]) -> str | None:
    """The ``--set`` key that put the value at a spec error's ``path`` there, if one did."""
    for item in reversed(overrides):  # the last override of a key wins
        key = item.partition("=")[0].strip()
        if path in (key, f"fixed.{key}", f"space.{key}") or path.startswith((f"{key}.", f"fixed.{key}.", f"space.{key}.")):
            return key
    return None


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key=value`` overrides (values parsed as YAML) to a raw spec mapping.

    A key naming a searched parameter pins it: it leaves ``space`` and joins ``fixed``. A key
    ``space.<parameter>`` searches that parameter over the range given (narrowing a searched
    range, or searching a fixed one: it leaves ``fixed``). A key whose first part is another spec
    section (``run.num_samples``) sets that field. Any other key (``model.width``) is a fixed
    parameter.
    """
    spec = copy.deepcopy(dict(raw))
    sections = set(Spec.model_fields)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", item, "expected key=value")
        try:
            value = load_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        space = spec.get("space") or {}
        if key.startswith("space.") and len(key) > len("space."):
            name = key.removeprefix("space.")
            spec["space"] = {**(space if isinstance(space, dict) else {}), name: value}
            spec["fixed"] = {k: v for k, v in (spec.get("fixed") or {}).items() if k != name}
        elif isinstance(space, dict) and key in space:
            space = dict(space)
            space.pop(key)
            spec["space"] = space
            spec["fixed"] = {**(spec.get("fixed") or {}), key: value}
        elif key.split(".")[0] in sections:
            parts = key.split(".")
            node = spec
            for part in parts[:-1]:
                child = node.get(part)
                if child is None or isinstance(child, str):  # e.g. sampler: tpe shorthand
                    child = {} if child is None else {"name": child}
                elif not isinstance(child, dict):
                    raise SpecError(source, key, f"--set cannot descend into {part!r}: it is not a section")
                node[part] = dict(child)
                node = node[part]
            node[parts[-1]] = value
        else:
            spec["fixed"] = {**(spec.get("fixed") or {}), key: value}
    return spec


def parse_spec(raw: Mapping[str, Any], source: str = "<spec>", check_sampler: bool = True) -> Spec:
    """Validate a raw mapping into a :class:`Spec`, including checks against the trainable.

    Every ``fixed`` value, choice option, range bound and ``when`` value is checked against the
    family's config model and stored as the trial will get it (``1`` for a float parameter
    becomes ``1.0``). ``check_sampler`` builds the sampler once to check its options (skipped
    when re-reading a run dir's saved spec: that needs no Optuna).
    """
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        path = path.replace("int_", "int").replace("float_", "float").replace("log_", "log")
        message = describe_validation_error(err)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _section_keys(err["loc"][:-1]), n=1)
            message = f"unknown key (did you mean {path.rpartition('.')[0] + '.' if '.' in path else ''}{close[0]}?)" if close else message
        raise SpecError(source, path, message) from None
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


def _section_keys(loc: Sequence[Any]) -> list[str]:
    """The keys the spec accepts at ``loc`` (a pydantic error location), for a did-you-mean."""
    model: Any = Spec
    for part in loc:
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


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


def spec_to_yaml(spec: Spec) -> str:
    """The resolved spec as YAML (constraints back to their text form)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["constraints"] = [c.text for c in spec.constraints]
    return yaml.safe_dump(data, sort_keys=False)
