"""The sweep's Optuna study: what it records of each trial, written through Optuna's public API.

A trial's outcome reaches the study as Optuna's own readers (its samplers, ``study.best_trials``,
optuna-dashboard) expect it:

- a trial a scheduler stopped early is PRUNED (its values are partial-budget ones), a trial that
  failed or reported a non-finite objective is FAIL, a full-budget trial is COMPLETE with its
  objective values;
- the spec's constraint values are the trial's ``constraints`` system attribute, one list in the
  spec's order (named by the study's ``constraints`` user attribute), which Optuna's constrained
  samplers and the dashboard read;
- each epoch's value of the curve metric is an intermediate value (``Trial.report`` refuses
  multi-objective studies, so it is written to the storage);
- user attributes name the Ray trial (``ray_trial_id``), a candidate refused before training
  (``refused_before_training``) and asks an earlier driver left behind (``orphaned_by_driver_restart``).

:class:`StudyStore` is the study together with the storage object this tool created for it, so
per-trial writes go through :class:`optuna.storages.BaseStorage`'s documented methods and no
private attribute of an Optuna object is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import optuna
from optuna.trial import TrialState

from trainables.report import is_full_budget

__all__ = [
    "CONSTRAINTS_ATTR",
    "DUPLICATE_ATTR",
    "ORPHAN_ATTR",
    "RAY_TRIAL_ATTR",
    "REFUSED_ATTR",
    "StudyStore",
    "WARM_ATTR",
    "classify",
    "counts_as_trial",
    "is_feasible_trial",
    "is_own_trial",
    "refused_id",
    "tell_outcome",
]

#: User attribute of Optuna trials a killed driver left behind (asked for, never a Ray trial).
ORPHAN_ATTR = "orphaned_by_driver_restart"
#: Study user attribute: the spec's constraints, in the order of each trial's constraint values.
CONSTRAINTS_ATTR = "constraints"
#: User attribute naming the Ray trial (the run dir's ``trial_id``) of an Optuna trial.
RAY_TRIAL_ATTR = "ray_trial_id"
#: User attribute of a candidate refused before training: why (the constraints it breaks).
REFUSED_ATTR = "refused_before_training"
#: User attribute of a trial an earlier sweep trained, told by a warm start: ``RUN_DIR#trial_id``.
WARM_ATTR = "warm_start_from"
#: User attribute of a suggestion not run because an earlier sweep trained that config (its key).
DUPLICATE_ATTR = "trained_by_earlier_sweep"
#: The system attribute Optuna's samplers and the dashboard read constraint values from.
_CONSTRAINTS_KEY = "constraints"


def is_feasible_trial(trial: Any) -> bool:
    """Whether an Optuna trial is feasible: every constraint value it stores is ≤ 0.

    The one feasibility predicate for an Optuna trial, read from its public ``constraints``
    (the values :meth:`search.spec.Constraint.violation_of` gives, Optuna's sign: > 0 breaks the
    constraint). :func:`search.spec.feasible` is the same rule on a result row: a trial is
    feasible when every constraint is met, and a value that cannot be shown to meet it (NaN
    here; missing or non-finite there) does not. A trial with no constraint values is feasible.
    """
    return all(value <= 0 for value in trial.constraints.values())


def counts_as_trial(trial: Any) -> bool:
    """Whether an Optuna trial of the study is one of the sweep's ``num_samples`` trials.

    Not an orphan of a killed driver, a candidate refused before training, a trial an earlier
    sweep trained (told by a warm start), nor a suggestion of such a config.
    """
    attrs = trial.user_attrs
    return not (attrs.get(ORPHAN_ATTR) or attrs.get(REFUSED_ATTR) or attrs.get(WARM_ATTR) or attrs.get(DUPLICATE_ATTR))


def is_own_trial(trial: Any) -> bool:
    """Whether a study trial is the sweep's own, not one an earlier sweep trained (told by a warm start)."""
    return not trial.user_attrs.get(WARM_ATTR)


def refused_id(optuna_number: int) -> str:
    """The run dir's ``trial_id`` of a candidate refused before training."""
    return f"refused-{optuna_number}"


def classify(metrics: Sequence[str], result: Mapping[str, Any] | None, error: bool) -> tuple[TrialState, list[float] | None]:
    """The Optuna state (and values) of a finished trial given its last result."""
    if error or not result:
        return TrialState.FAIL, None
    if not is_full_budget(result.get("budget_fraction", 1.0)):
        return TrialState.PRUNED, None
    values = [result.get(metric) for metric in metrics]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return TrialState.FAIL, None
    return TrialState.COMPLETE, [float(v) for v in values]


@dataclass(frozen=True)
class StudyStore:
    """An Optuna study and the storage it lives in, addressed by trial number.

    Attributes:
        study: The study (asks, tells, reads of trials: Optuna's public ``Study`` API).
        storage: The storage object the study was created or loaded with (its public
            :class:`~optuna.storages.BaseStorage` methods write what ``Study`` has no method for).
    """

    study: optuna.Study
    storage: Any
    _ids: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def open(cls, study_name: str, storage: Any, sampler: Any = None, directions: Sequence[str] | None = None) -> StudyStore:
        """Load the study (or, with ``directions``, create it when the storage has none)."""
        if directions is None:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
        else:
            study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, directions=list(directions), load_if_exists=True)
        return cls(study=study, storage=storage)

    @cached_property
    def study_id(self) -> int:
        return self.storage.get_study_id_from_name(self.study.study_name)

    def trial_id(self, number: int) -> int:
        """The storage's id of trial ``number`` (looked up once per trial)."""
        found = self._ids.get(number)
        if found is None:
            found = self._ids[number] = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        return found

    def state(self, number: int) -> TrialState:
        return self.storage.get_trial(self.trial_id(number)).state

    def set_user_attr(self, number: int, key: str, value: Any) -> None:
        self.storage.set_trial_user_attr(self.trial_id(number), key, value)

    def set_constraints(self, number: int, violations: Sequence[float]) -> None:
        """Store a trial's constraint values (Optuna's sign: > 0 is infeasible), in the spec's order.

        One list under ``constraints``, not ``Trial.set_constraint``'s per-name keys:
        optuna-dashboard 0.21 reads only the list, and Optuna 5 reads the list too (as constraints
        "0", "1", ...: feasibility, TPE/NSGA-II/GP, ``best_trials``). Writing both forms would
        make Optuna count every constraint twice.
        """
        self.storage.set_trial_system_attr(self.trial_id(number), _CONSTRAINTS_KEY, [float(v) for v in violations])

    def set_curve_point(self, number: int, step: int, value: float) -> None:
        """Store one epoch's value of the curve metric (ignored once the trial has ended)."""
        try:
            self.storage.set_trial_intermediate_value(self.trial_id(number), step, value)
        except RuntimeError:
            pass  # the trial is already finished in the study (told by an earlier driver)


def violations(constraints: Sequence[Any], values: Mapping[str, Any]) -> list[float]:
    """The constraint values of one result, in the spec's order, by the spec's one rule.

    Each is :meth:`~search.spec.Constraint.violation_of` the metric's value: Optuna's sign,
    and the largest finite violation for a value that is missing or not finite.
    """
    return [float(c.violation_of(values.get(c.metric))) for c in constraints]


def tell_outcome(
    store: StudyStore,
    number: int,
    metrics: Sequence[str],
    constraints: Sequence[Any],
    result: Mapping[str, Any] | None,
    error: bool,
) -> TrialState:
    """Tell the study how trial ``number`` ended: state, values, budget and constraint values.

    ``result`` is the trial's last report (or its row in ``trials.parquet``); ``constraints``
    are the spec's.
    """
    state, values = classify(metrics, result, error)
    if result:
        budget = result.get("budget_fraction")
        if budget is not None and math.isfinite(float(budget)):
            store.set_user_attr(number, "budget_fraction", float(budget))
        if state == TrialState.COMPLETE and constraints:
            store.set_constraints(number, violations(constraints, result))
    store.study.tell(number, values, state=state)
    return state
