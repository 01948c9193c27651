"""The typed sweep spec: what a spec file may say, as frozen pydantic models.

:class:`Spec` and its sections (:class:`Param`, :class:`Objective`, :class:`Constraint`, the
sampler, scheduler and run sections) check each field's shape and range on their own; checks
against the trainable family and across fields are :mod:`search.spec.checks`', reading YAML is
:mod:`search.spec.load`'s. The rules that decide feasibility live here, beside the constraint
they read: :meth:`Constraint.violation_of` (the value Optuna stores), :func:`feasible` (a result
row or a table) and :func:`provably_broken` (a static cost).

One job, what a spec may say: the models with each field's description (the class docstrings'
``Attributes:`` sections), from which the JSON Schema (:mod:`search.schema`) and the spec
reference are generated; that documentation is most of its length.
"""

from __future__ import annotations

import copy
import math
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from search.bounds import BoundSyntaxError, parse_bound, satisfies
from search.samplers import SAMPLERS
from search.schedulers import SCHEDULERS
from search.schedulers.tie_breaks import TIE_BREAKS
from trainables.config import BudgetConfig, DataConfig, Device, set_path
from trainables.registry import TrainableEntry, get_trainable

__all__ = [
    "CONSTRAINT_OPS",
    "TIE_BREAKS",
    "SpecError",
    "check_sweep_name",
    "feasible",
    "provably_broken",
    "Spec",
    "Param",
    "Objective",
    "Constraint",
    "SamplerSection",
    "SchedulerSection",
    "Resources",
    "RunSection",
    "MlflowSection",
    "TrackingSection",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: The operators a constraint may use (of :data:`search.bounds.OPERATORS`).
CONSTRAINT_OPS: tuple[str, ...] = ("<=", ">=")


class SpecError(ValueError):
    """A user error in a spec: ``str(err)`` is one line naming file, field and expectation."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source, self.path, self.message = source, path, message
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")


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

    Attributes:
        choice: The values to choose from (``[index, random, mixer]``); any YAML scalars.
        int_: ``int: [low, high]``: a whole number in the inclusive range (bounds may be ``$param``).
        float_: ``float: [low, high]``: a real number in the inclusive range (bounds may be ``$param``).
        log_: ``log: [low, high]``: a real number on a log scale (low > 0); ``log: true`` puts an
            ``int`` range on a log scale.
        step: Discretises an ``int`` or ``float`` range (every ``step`` from ``low``).
        when: ``{param: value}`` (or a list of values): sample this parameter only when every
            named parameter has that value; otherwise it keeps the family default.
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
            if self.step is not None and high > low:
                n = (high - low) / self.step
                if abs(n - round(n)) > 1e-9 * max(1.0, n):
                    top = low + math.floor(n + 1e-9) * self.step
                    raise ValueError(
                        f"step {self.step:g} does not divide [{low:g}, {high:g}]: the highest value it reaches is {top:g}; "
                        "make high - low a multiple of step"
                    )
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
    """One objective of the sweep: a reported metric to maximise or minimise.

    Attributes:
        metric: A report key of the trainable (``val_accuracy``, ``energy_uj``, ``macs`` …).
        mode: ``max`` or ``min``.
    """

    metric: str
    mode: Literal["max", "min"]


class Constraint(_Model):
    """``metric <= bound`` or ``metric >= bound``; feasible when :meth:`violation` ≤ 0.

    Written in the grammar of :mod:`search.bounds` (as ``analysis.select``'s conditions are),
    restricted to :data:`CONSTRAINT_OPS` and to undotted metric names. A spec writes one as
    text (``"macs <= 2e5"``).

    Attributes:
        text: The constraint as written.
        metric: The constrained report key.
        op: ``<=`` or ``>=``.
        bound: The number on the right-hand side.
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
        """How far a number lies beyond the bound, with Optuna's sign: ≤ 0 is feasible."""
        return value - self.bound if self.op == "<=" else self.bound - value

    def violation_of(self, value: Any) -> float:
        """The constraint value of a result's ``value``, the one rule for every reader and writer.

        Optuna's sign convention: > 0 is infeasible, ≤ 0 feasible. A number (or text that reads
        as one, ``"1E5"``) gives its :meth:`violation`. A value that cannot be shown to satisfy
        the bound (missing, ``None``, not a number, NaN, ±inf) gives the largest finite
        violation, ``sys.float_info.max``: infeasible, as :func:`feasible` says of it, and
        finite, because JSON readers of the study (optuna-dashboard among them) reject ``inf``.
        A violation too large for a float is capped there too.
        """
        try:
            number = float(value)
        except (TypeError, ValueError):
            return sys.float_info.max
        violation = self.violation(number) if math.isfinite(number) else math.inf
        return violation if math.isfinite(violation) else sys.float_info.max

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

    This reads result rows; :func:`search.samplers.is_feasible_trial` reads an Optuna trial's
    stored constraint values (:meth:`Constraint.violation_of` each) by the same rule: feasible
    when every constraint is met, and a value that cannot be shown to meet it does not.
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
    """The Optuna sampler: the keys of :data:`search.samplers.SAMPLERS`; ``options`` are its keyword arguments.

    Attributes:
        name: The sampler (``sampler: tpe`` is short for ``sampler: {name: tpe}``); the default,
            ``cost_aware``, computes the costs known before training and models only what must be learnt.
        options: Keyword arguments of the sampler (``n_startup_trials``, ``multivariate`` …).
    """

    name: Literal[tuple(SAMPLERS)] = "cost_aware"  # type: ignore[valid-type]
    options: dict[str, Any] = Field(default_factory=dict)


class SchedulerSection(_Model):
    """Early stopping: ``asha`` ranks one metric, ``mo_asha`` ranks all objectives (and constraints).

    The allowed names are the keys of :data:`search.schedulers.SCHEDULERS`.

    Attributes:
        name: ``none``, ``asha`` (one metric) or ``mo_asha`` (every objective and constraint);
            ``scheduler: asha`` is short for ``scheduler: {name: asha}``.
        metric: ``asha`` only: the metric it ranks (default: the first objective).
        mode: ``asha`` only: ``max`` or ``min`` (default: that objective's mode).
        grace_period: The first rung, in epochs; rungs at ``grace_period · reduction_factor^k``.
        reduction_factor: At each rung the top ``1/reduction_factor`` continue.
        tie_break: ``mo_asha``: the order within one Pareto layer, ``crowding`` or ``eps_net``.
        promote: ``mo_asha``: who decides at a rung. ``rank`` (default): the rank alone.
            ``ehvi``: besides, where the ``cost_aware`` sampler models the space (a known cost,
            past its start-up trials), a trial the rank would stop continues when its expected
            hypervolume improvement at the full budget, predicted from its learning curve so far,
            per remaining epoch is at least what the best new candidate promises per epoch.
    """

    name: Literal[tuple(SCHEDULERS)] = "none"  # type: ignore[valid-type]
    metric: str | None = None  # asha only (mo_asha ranks every objective); default: the first objective
    mode: Literal["max", "min"] | None = None
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1)
    tie_break: Literal[TIE_BREAKS] = "crowding"  # type: ignore[valid-type]  # mo_asha: order within a Pareto layer
    promote: Literal["rank", "ehvi"] = "rank"  # mo_asha: the rank only, or also the cost_aware model's verdict


class Resources(_Model):
    """What one trial holds while it runs.

    Attributes:
        cpu: CPUs per trial (also its PyTorch threads, rounded down).
        gpu: GPUs per trial; fractions share a GPU between trials.
    """

    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)


class RunSection(_Model):
    """How the sweep runs: its size, its resources, where its run dir goes, its seed.

    Attributes:
        num_samples: Trials to train (default 16; for ``grid``: the grid's size).
        max_concurrent: Trials at once (default: as many as the cluster's CPUs and GPUs hold).
        resources: CPUs and GPUs per trial.
        storage: Parent of the run dir (a path, shared by every node on a cluster, or an object
            store URI such as ``s3://bucket/runs``).
        max_failures: Retries of a failed trial, each from its last checkpoint.
        seed: Seeds the sampler and every trial (unless ``seed`` is searched).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        reuse_actors: Reuse Ray actors between trials (saves each trial's start-up); default: on
            for a local Ray, off when joining a cluster (``--address``).
    """

    num_samples: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    resources: Resources = Field(default_factory=Resources)
    storage: str = "runs"
    max_failures: int = Field(default=1, ge=0)
    seed: int = 0
    device: Device = "auto"
    reuse_actors: bool | None = None  # None: on for a local Ray, off when joining a cluster


class MlflowSection(_Model):
    """Where the sweep is logged in MLflow (:mod:`search.tracking.mlflow`)."""

    uri: str | None = Field(
        default=None,
        description="an MLflow tracking URI: sqlite:///path/mlflow.db, http://host:5000, or any other store MLflow takes; "
        "None: the sweep is not logged to MLflow",
    )
    experiment: str | None = Field(default=None, description="the MLflow experiment the sweep's runs go to (default: the spec's name)")


class TrackingSection(_Model):
    """Experiment trackers the driver logs the run dir's records to (:mod:`search.tracking`).

    Changing or adding it on ``--resume`` is allowed: a tracker logs what the run dir holds.
    """

    mlflow: MlflowSection = Field(default_factory=MlflowSection, description="log to MLflow: one run per sweep, one nested run per trial")
    tensorboard: bool = Field(default=False, description="write TensorBoard event files, one folder per trial under the run dir's tensorboard/")

    @property
    def enabled(self) -> bool:
        return self.mlflow.uri is not None or self.tensorboard


class Spec(_Model):
    """A validated sweep spec. Build with :func:`load_spec` or :func:`parse_spec`.

    Attributes:
        name: The sweep's name, which names its run dir (letters, digits, ``_``, ``-``, ``.``).
        trainable: The family it trains: ``g2g`` or ``sne``.
        description: Free text.
        data: The data set and its split.
        budget: Epochs per trial (the full budget), checkpoints, the test evaluation.
        objectives: The reported metrics the sweep maximises or minimises (at least one).
        constraints: Bounds such as ``"macs <= 2e5"``: Optuna's trial constraints; one on a cost
            known before training also refuses candidates that break it, untrained.
        space: Searched parameters by dotted name (``model.width``) into the family's config.
        fixed: Parameters set for every trial, by dotted name.
        sampler: The Optuna sampler.
        scheduler: Early stopping (ASHA or multi-objective ASHA), or none.
        run: Size, resources, storage, seed and device of the sweep.
        tracking: Experiment trackers (MLflow, TensorBoard) the sweep is logged to.
    """

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
    tracking: TrackingSection = Field(default_factory=TrackingSection, description="experiment trackers (MLflow, TensorBoard) the sweep is logged to")

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
        promote = ", promote ehvi" if sched.promote == "ehvi" else ""
        return f"mo_asha on {ranked} (tie-break {sched.tie_break}{promote}), {rungs}{unused}"

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
