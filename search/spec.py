"""Sweep specs: YAML → a validated, typed :class:`Spec`, checked once at load.

Every error names the file, the dotted field path and what was expected, in one line, and is
raised as :class:`SpecError` before any trial starts or any directory is written.

A spec names a registered trainable family; the parameters in ``space`` and ``fixed`` are dotted
names into that family's config (``model.width``), so a typo is an error, not a silent no-op.
"""

from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainables.config import flatten, get_path, has_path, set_path
from trainables.data import resolve_data_config
from trainables.registry import get_trainable, trainable_names
from trainables.report import BASE_KEYS

__all__ = [
    "SpecError",
    "Spec",
    "Param",
    "Objective",
    "Constraint",
    "SAMPLERS",
    "load_spec",
    "parse_spec",
    "apply_overrides",
    "spec_to_yaml",
]

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "nsga3", "gp", "random", "qmc", "grid")
SCHEDULERS: tuple[str, ...] = ("none", "asha")
#: Config sections filled from the spec's own sections, never from ``space``/``fixed``.
_RUNTIME_SECTIONS = ("runtime",)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*(\S+)\s*$")


class SpecError(ValueError):
    """A user error in a spec: ``str(err)`` is one line naming file, field and expectation."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source, self.path, self.message = source, path, message
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")


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
    """``metric <= bound`` or ``metric >= bound``; feasible when :meth:`violation` ≤ 0."""

    text: str
    metric: str
    op: Literal["<=", ">="]
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
        match = _CONSTRAINT_RE.match(text)
        if not match:
            raise ValueError(f"expected 'metric <= number' or 'metric >= number', got {text!r}")
        metric, op, bound = match.groups()
        try:
            value = float(bound)
        except ValueError:
            raise ValueError(f"expected a number after {op!r}, got {bound!r}") from None
        return {"text": text.strip(), "metric": metric, "op": op, "bound": value}

    def violation(self, value: float) -> float:
        """Optuna's convention: ≤ 0 is feasible."""
        return value - self.bound if self.op == "<=" else self.bound - value


class DataSection(_Model):
    name: Literal["digits", "fashion_mnist", "cifar10", "cifar100", "npz"] = "digits"
    root: str | None = None
    path: str | None = None
    download: bool = True
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    split_seed: int = 0
    augment: bool = True
    normalize: bool = True
    train_subset: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _npz_needs_path(self) -> DataSection:
        if self.name == "npz" and not self.path:
            raise ValueError("data.name 'npz' needs data.path (a .npz with x_train, y_train, x_test, y_test)")
        return self


class BudgetSection(_Model):
    epochs: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=1, ge=1)
    eval_test: bool = True


class SamplerSection(_Model):
    name: Literal["tpe", "nsga2", "nsga3", "gp", "random", "qmc", "grid"] = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)


class SchedulerSection(_Model):
    name: Literal["none", "asha"] = "none"
    metric: str | None = None  # default: the first objective
    mode: Literal["max", "min"] | None = None
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1)


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
    device: str = "auto"
    reuse_actors: bool | None = None  # None: on for a local Ray, off when joining a cluster

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")
        return value


class Spec(_Model):
    """A validated sweep spec. Build with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    trainable: str
    description: str = ""
    data: DataSection = Field(default_factory=DataSection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
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
        if not _NAME_RE.match(value):
            raise ValueError(f"expected letters, digits, '_', '-', '.', got {value!r}")
        return value

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
        config["data"] = resolve_data_config(config["data"])
        return config


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
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, "", f"invalid YAML: {where}{problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(source, "", f"expected a mapping of spec sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides, source)
    return parse_spec(raw, source)


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key=value`` overrides (values parsed as YAML) to a raw spec mapping.

    A key naming a searched parameter pins it: it leaves ``space`` and joins ``fixed``. A key
    whose first part is a spec section (``run.num_samples``) sets that field. Any other key
    (``model.width``) is a fixed parameter.
    """
    spec = copy.deepcopy(dict(raw))
    sections = set(Spec.model_fields)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", item, "expected key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        space = spec.get("space") or {}
        if isinstance(space, dict) and key in space:
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


def parse_spec(raw: Mapping[str, Any], source: str = "<spec>") -> Spec:
    """Validate a raw mapping into a :class:`Spec`, including checks against the trainable."""
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        path = path.replace("int_", "int").replace("float_", "float").replace("log_", "log")
        raise SpecError(source, path, _describe(err)) from None
    _check_semantics(spec, source)
    return spec


def _describe(err: Mapping[str, Any]) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the spec reference in README.md)"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    if kind not in ("value_error",) and got is not None and not isinstance(got, (dict, list)):
        msg = f"{msg}, got {got!r}"
    return msg[0].lower() + msg[1:] if msg else msg


def _check_semantics(spec: Spec, source: str) -> None:
    """Cross-field checks that need the registry: names, references, metrics, sampler fit."""
    try:
        entry = get_trainable(spec.trainable)
    except KeyError:
        raise SpecError(source, "trainable", f"unknown trainable {spec.trainable!r} (choose from {', '.join(trainable_names())})") from None
    defaults = entry.defaults
    reportable = set(BASE_KEYS) | set(entry.extra_report_keys)
    known_params = sorted(k for k in flatten(defaults) if not k.startswith(_RUNTIME_SECTIONS))

    def check_name(section: str, name: str) -> None:
        if name.startswith(_RUNTIME_SECTIONS) or not has_path(defaults, name) or isinstance(get_path(defaults, name), Mapping):
            close = [k for k in known_params if k.split(".")[-1] == name.split(".")[-1] or k.startswith(name + ".")]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise SpecError(source, f"{section}.{name}", f"not a parameter of trainable {spec.trainable!r}{hint}")

    for name, value in spec.fixed.items():
        check_name("fixed", name)
    seen: list[str] = []
    for name, param in spec.space.items():
        check_name("space", name)
        if name in spec.fixed:
            raise SpecError(source, f"space.{name}", "is also in fixed; a parameter is either searched or fixed")
        for ref in param.references():
            if ref == name:
                raise SpecError(source, f"space.{name}", "cannot depend on itself")
            if ref in spec.space and ref not in seen:
                raise SpecError(source, f"space.{name}", f"depends on {ref!r}, which must be listed before it in space")
            if ref not in spec.space:
                check_name(f"space.{name}.when", ref)
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
    if spec.scheduler.name != "none":
        metric, _ = spec.scheduler_metric
        if metric not in reportable:
            raise SpecError(source, "scheduler.metric", f"unknown metric {metric!r}")

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

    # Sampler options are checked by building the sampler now, not when the sweep starts.
    from search.samplers import make_sampler

    try:
        make_sampler(spec)
    except TypeError as exc:
        raise SpecError(source, "sampler.options", str(exc)) from None
    except ValueError as exc:
        raise SpecError(source, "sampler", str(exc)) from None


def spec_to_yaml(spec: Spec) -> str:
    """The resolved spec as YAML (constraints back to their text form)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["constraints"] = [c.text for c in spec.constraints]
    return yaml.safe_dump(data, sort_keys=False)
