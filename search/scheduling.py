"""Choosing the next trial to run at a cost that does not grow with the sweep.

Ray Tune's schedulers pick the next trial by scanning every trial of the experiment, finished
ones included, at every step of the driver's loop: in a sweep of thousands of trials that scan
is a growing share of the driver's time. :class:`LiveTrialQueue` keeps the live trials (added,
not yet completed, errored or removed) in the order Tune added them and scans only those, so it
returns the trial Ray's FIFO rule would (the first PENDING one, else the first PAUSED one).

The schedulers here (:class:`QueueFIFOScheduler`, :class:`ResumableASHA`; MO-ASHA is
:mod:`search.mo_asha`'s) are built from a spec by the table of :mod:`search.schedulers`.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from search.recorder import record_id

__all__ = ["LiveTrialQueue", "QueueFIFOScheduler", "ResumableASHA"]


class LiveTrialQueue:
    """Mixin for a Tune scheduler: FIFO choice among the live trials only.

    A scheduler using it calls :meth:`track` from ``on_trial_add`` and :meth:`untrack` from
    ``on_trial_error``, ``on_trial_complete`` and ``on_trial_remove`` (a retried trial is
    added again, at the end of the queue, as Tune does).
    """

    def _queue(self) -> dict[Any, None]:
        queue = self.__dict__.get("_live_queue")
        if queue is None:
            queue = self.__dict__["_live_queue"] = {}
        return queue

    def track(self, trial: Any) -> None:
        queue = self._queue()
        queue.pop(trial, None)
        queue[trial] = None

    def untrack(self, trial: Any) -> None:
        self._queue().pop(trial, None)

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        queue = self._queue()
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in queue:
                if trial.status == status:
                    return trial
        for trial in [t for t in queue if t.status in (Trial.TERMINATED, Trial.ERROR)]:
            del queue[trial]  # ended without a scheduler callback: drop it
        return None


class QueueFIFOScheduler(LiveTrialQueue, FIFOScheduler):
    """Ray Tune's FIFO scheduler (``scheduler: none``), choosing among the live trials only."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.track(trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.untrack(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)


class _RecordAlias:
    """A trial as ASHA's rungs see it: under its id in the run dir (kept by a continuation)."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


class ResumableASHA(LiveTrialQueue, ASHAScheduler):
    """ASHA whose rungs survive a resume.

    Every trial is seen under its id in the run dir (kept by a continuation), so a continued
    trial is not judged again at rungs it already passed, and :meth:`seed` refills the rungs from
    the epoch rows of the interrupted sweep, so trials after a resume are compared with those
    before it. The decisions themselves are Ray Tune's.
    """

    def seed(self, epoch_rows: list[dict[str, Any]]) -> None:
        values = {(r["trial_id"], int(r["epoch"])): r.get(self._metric) for r in epoch_rows}
        for bracket in self._brackets:
            for milestone, recorded in bracket._rungs:
                for (trial_id, epoch), value in values.items():
                    if epoch == milestone and value is not None and math.isfinite(float(value)):
                        recorded[trial_id] = self._metric_op * float(value)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.track(trial)
        super().on_trial_add(tune_controller, _RecordAlias(record_id(trial)))

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)
        super().on_trial_error(tune_controller, _RecordAlias(record_id(trial)))

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return super().on_trial_result(tune_controller, _RecordAlias(record_id(trial)), result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.untrack(trial)
        super().on_trial_complete(tune_controller, _RecordAlias(record_id(trial)), result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)
        super().on_trial_remove(tune_controller, _RecordAlias(record_id(trial)))
