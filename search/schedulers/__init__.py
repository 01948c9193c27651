"""Trial schedulers (early stopping), as a table: scheduler name → factory.

The spec's allowed ``scheduler.name`` values are the keys of :data:`SCHEDULERS`, and
:func:`make_scheduler` builds a sweep's scheduler from it, so a new scheduler is one entry here
(as :mod:`search.samplers` is for samplers). Every scheduler is written on Ray Tune's documented
scheduler classes:

- ``none``: :class:`~search.schedulers.fifo.QueueFIFOScheduler`, no early stopping;
- ``asha``: :class:`~search.schedulers.asha.ResumableASHA`, successive halving on one metric;
- ``mo_asha``: :class:`~search.schedulers.mo_asha.MultiObjectiveASHA`, successive halving on
  every objective and constraint.

A scheduler with rungs also has ``seed(epoch_rows)``: a resumed sweep refills its rungs from the
interrupted sweep's epoch rows. Ray Tune is imported when a scheduler is built, not when this
module is, so validating a spec stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SCHEDULERS", "SchedulerFactory", "make_scheduler"]

#: ``factory(spec)``: the Ray Tune scheduler of a validated :class:`~search.spec.Spec`.
SchedulerFactory = Callable[[Any], Any]


def _grace_period(spec: Any) -> int:
    return min(spec.scheduler.grace_period, spec.budget.epochs)


def _fifo(spec: Any) -> Any:
    from search.schedulers.fifo import QueueFIFOScheduler

    return QueueFIFOScheduler()


def _asha(spec: Any) -> Any:
    from search.recorder import record_id
    from search.schedulers.asha import ResumableASHA

    metric, mode = spec.scheduler_metric
    return ResumableASHA(
        time_attr="epoch",
        metric=metric,
        mode=mode,
        max_t=spec.budget.epochs,
        grace_period=_grace_period(spec),
        reduction_factor=spec.scheduler.reduction_factor,
        trial_key=record_id,
    )


def _mo_asha(spec: Any) -> Any:
    from search.schedulers.mo_asha import MultiObjectiveASHA
    from search.recorder import record_id

    return MultiObjectiveASHA(
        spec.metrics,
        spec.modes,
        constraints=spec.constraints,
        max_t=spec.budget.epochs,
        grace_period=_grace_period(spec),
        reduction_factor=spec.scheduler.reduction_factor,
        tie_break=spec.scheduler.tie_break,
        trial_key=record_id,
    )


#: Every scheduler a spec may name (``none``: no early stopping).
SCHEDULERS: dict[str, SchedulerFactory] = {
    "none": _fifo,
    "asha": _asha,
    "mo_asha": _mo_asha,
}


def make_scheduler(spec: Any) -> Any:
    """Build a spec's Ray Tune scheduler (``scheduler.name``, from :data:`SCHEDULERS`)."""
    return SCHEDULERS[spec.scheduler.name](spec)
