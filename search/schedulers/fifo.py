"""FIFO choice of the next trial at a cost that does not grow with the sweep (``scheduler: none``).

Ray Tune's schedulers pick the next trial by scanning every trial of the experiment, finished
ones included, at every step of the driver's loop: in a sweep of thousands of trials that scan
is a growing share of the driver's time. :class:`LiveTrialQueue` keeps the live trials (added,
not yet completed, errored or removed) in the order Tune added them and scans only those, so it
returns the trial Ray's FIFO rule would (the first PENDING one, else the first PAUSED one).

Every scheduler of :mod:`search.schedulers` chooses trials this way.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

__all__ = ["LiveTrialQueue", "QueueFIFOScheduler"]


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
