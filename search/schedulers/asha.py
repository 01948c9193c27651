"""ASHA (asynchronous successive halving, Li et al., 2020) on one metric, with rungs that survive a resume.

A trial reaching a rung (an epoch milestone: ``grace_period · reduction_factor^k`` up to
``max_t``) continues only if its result is not below the ``1 − 1/reduction_factor`` quantile of
the results recorded at that rung before it; a trial reaching ``max_t`` stops there (its full
budget). This is Ray Tune's ``ASHAScheduler`` rule with one bracket, written on Tune's documented
scheduler base class so that this project owns the rungs:

- every trial is seen under its id in the run dir (kept by a continuation), so a continued trial
  is not judged again at rungs it already passed;
- :meth:`ResumableASHA.seed` refills the rungs from the epoch rows of the interrupted sweep, so
  trials after a resume are compared with those before it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from search.schedulers.fifo import LiveTrialQueue

__all__ = ["ResumableASHA", "asha_milestones"]


def asha_milestones(grace_period: int, max_t: int, reduction_factor: float) -> list[float]:
    """The rungs' epochs, lowest first (Ray Tune's ASHA with one bracket)."""
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in range(count)]


class ResumableASHA(LiveTrialQueue, FIFOScheduler):
    """ASHA on ``metric`` (``mode``), counted in ``time_attr`` up to ``max_t``.

    Args:
        time_attr: The report key that counts progress (``epoch``).
        metric: The metric ranked at each rung.
        mode: ``max`` or ``min``.
        max_t: The full budget: a trial stops when it reaches it.
        grace_period: The first rung.
        reduction_factor: Rung spacing and the share of trials promoted (``1/reduction_factor``).
        trial_key: Maps a Tune trial to its id in the run dir (default: its Tune id).
    """

    def __init__(
        self,
        time_attr: str = "epoch",
        metric: str = "val_accuracy",
        mode: str = "max",
        max_t: int = 100,
        grace_period: int = 1,
        reduction_factor: float = 4,
        trial_key: Callable[[Any], str] | None = None,
    ) -> None:
        if not 0 < grace_period <= max_t:
            raise ValueError(f"grace_period must be in [1, max_t={max_t}], got {grace_period}")
        if reduction_factor <= 1:
            raise ValueError(f"reduction_factor must be > 1, got {reduction_factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        super().__init__()
        self.time_attr = time_attr
        self._metric, self._mode = metric, mode
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self._sign = 1.0 if mode == "max" else -1.0
        self._trial_key = trial_key
        #: milestone -> {trial key: the metric's value, signed so that larger is better}; highest rung first.
        self.rungs: list[tuple[float, dict[str, float]]] = [(m, {}) for m in reversed(asha_milestones(grace_period, max_t, reduction_factor))]
        self.stopped = 0

    def _key(self, trial: Any) -> str:
        return self._trial_key(trial) if self._trial_key is not None else trial.trial_id

    def _cutoff(self, recorded: Mapping[str, float]) -> float | None:
        if not recorded:
            return None
        return float(np.nanpercentile(list(recorded.values()), (1 - 1 / self.reduction_factor) * 100))

    def _judge(self, key: str, t: float, value: float) -> str:
        """Record ``value`` at the highest rung ``t`` reaches that has none of ``key`` yet; STOP below the cutoff."""
        action = TrialScheduler.CONTINUE
        for milestone, recorded in self.rungs:
            if t < milestone or key in recorded:
                continue
            cutoff = self._cutoff(recorded)
            if cutoff is not None and value < cutoff:
                action = TrialScheduler.STOP
            recorded[key] = value
            break
        return action

    def seed(self, epoch_rows: Sequence[Mapping[str, Any]]) -> None:
        """Refill the rungs from a run dir's epoch rows (``trial_id``, ``epoch``, the metric)."""
        for row in epoch_rows:
            value = row.get(self._metric)
            for milestone, recorded in self.rungs:
                if int(row["epoch"]) == milestone and value is not None and math.isfinite(float(value)):
                    recorded[str(row["trial_id"])] = self._sign * float(value)

    # ---- Ray Tune's TrialScheduler interface ---------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # the metric comes from the spec

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        self.track(trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if self.time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        if result[self.time_attr] >= self.max_t:
            action = TrialScheduler.STOP
        else:
            action = self._judge(self._key(trial), result[self.time_attr], self._sign * result[self._metric])
        if action == TrialScheduler.STOP:
            self.stopped += 1
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        self.untrack(trial)
        if result and self.time_attr in result and self._metric in result:
            self._judge(self._key(trial), result[self.time_attr], self._sign * result[self._metric])

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.untrack(trial)

    def debug_string(self) -> str:
        rungs = ", ".join(f"epoch {m:g}: {len(r)}" for m, r in reversed(self.rungs))
        return f"ASHA on {self._metric} ({self._mode}, reduction factor {self.reduction_factor:g}): {self.stopped} stopped; rungs {rungs}"
