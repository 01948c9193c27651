"""Sweep progress on the terminal: one line per finished trial, a heartbeat while waiting."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ray.tune import Callback

from analysis.pareto import front_summary, pareto_mask, reference_point  # pure functions on arrays
from search.spec import feasible
from trainables.report import format_number, is_full_budget

__all__ = ["ProgressPrinter"]


class ProgressPrinter(Callback):
    """Print one line per finished trial and a status line every ``heartbeat_s`` seconds.

    Each line also shows the current Pareto front's size (full-budget, feasible trials) and,
    once ``REFERENCE_AFTER`` trials have finished, its hypervolume.

    Args:
        total: Number of trials the sweep will run.
        metrics: Objective metrics shown per trial.
        modes: Their directions (``max``/``min``), for the running best.
        epochs: Full budget, to show how far an early-stopped trial got.
        out: Stream to print to.
    """

    REFERENCE_AFTER = 8

    def __init__(
        self,
        total: int,
        metrics: Sequence[str],
        modes: Sequence[str],
        epochs: int,
        out: TextIO | None = None,
        heartbeat_s: float = 30.0,
        constraints: Sequence[Any] = (),
    ) -> None:
        self.total = total
        self.metrics = list(metrics)
        self.modes = list(modes)
        self.epochs = epochs
        self.out = out  # None: sys.stdout at print time (the callback is pickled with the sweep)
        self.heartbeat_s = heartbeat_s
        self.done = 0
        self.best: dict[str, float] = {}
        self.constraints = list(constraints)
        # Objective vectors of finished trials: all finite ones (for the reference point) and
        # the full-budget feasible ones (the front).
        self._finite: list[list[float]] = []
        self._front_points: list[list[float]] = []
        self._reference: list[float] | None = None
        self._started = time.monotonic()
        self._last_print = self._started

    def setup(self, **info: Any) -> None:
        # Also runs when a pickled sweep is restored (--resume): restart the clock there.
        self._started = self._last_print = time.monotonic()
        self._counted_restored = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not getattr(self, "_counted_restored", True):
            self.done = max(self.done, sum(t.status in ("TERMINATED", "ERROR") for t in trials))
            for t in trials:  # a restored sweep: its finished trials are part of the front
                if t.status == "TERMINATED" and t.last_result:
                    self._record(t.last_result, is_full_budget(t.last_result.get("budget_fraction")))
            self._counted_restored = True

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)
        self._last_print = time.monotonic()

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self._started)
        return f"{s // 60:d}:{s % 60:02d}"

    def _record(self, last: dict, full: bool) -> None:
        """Add a finished trial's objectives; fix the hypervolume reference at the first front."""
        try:
            point = [float(last[m]) for m in self.metrics]
        except (KeyError, TypeError, ValueError):
            return
        if not all(math.isfinite(v) for v in point):
            return
        self._finite.append(point)
        if full and feasible(last, self.constraints):
            self._front_points.append(point)
        # The reference is fixed once, from the first few finished trials (early-stopped ones
        # included), so successive lines are comparable; ``python -m analysis.pareto`` derives
        # its own from every trial and records it in the run dir.
        if self._front_points and len(self._finite) >= min(self.REFERENCE_AFTER, self.total):
            if self._reference is None:
                self._reference = [float(v) for v in reference_point(self._finite, self.modes)]
                ref = ", ".join(f"{m}={format_number(v)}" for m, v in zip(self.metrics, self._reference))
                self._print(f"hypervolume reference (fixed for this sweep's progress lines): {ref}")

    def _front_text(self) -> str:
        if not self._front_points:
            return ""
        if self._reference is None:
            return f"  | front {int(pareto_mask(self._front_points, self.modes).sum())}"
        size, hv = front_summary(self._front_points, self.modes, self._reference)
        return f"  | front {size}, hv {hv:.4g}"

    def _finish(self, trial: Any, status: str) -> None:
        self.done += 1
        last = trial.last_result or {}
        epoch = int(last.get("epoch", 0) or 0)
        full = is_full_budget(last.get("budget_fraction"))
        values = "  ".join(f"{m}={format_number(last.get(m))}" for m in self.metrics)
        note = "" if full or status != "done" else f"  (stopped early at epoch {epoch}/{self.epochs})"
        if status == "done":
            self._record(last, full)
        if status == "done" and full and feasible(last, self.constraints):
            for metric, mode in zip(self.metrics, self.modes):
                v = last.get(metric)
                if v is None or not math.isfinite(float(v)):
                    continue
                cur = self.best.get(metric)
                if cur is None or (v > cur if mode == "max" else v < cur):
                    self.best[metric] = float(v)
        width = len(str(self.total))
        head = f"[{self._elapsed()}] [{self.done:>{width}}/{self.total}] {trial.trial_id} {status:<5}"
        self._print(f"{head} {values if status == 'done' else ''}{note}{self._front_text()}".rstrip())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from search.recorder import one_line_error

        self._finish(trial, "error")
        self._print(f"    {trial.trial_id}: {one_line_error(trial)}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._print(f"[{self._elapsed()}] {trial.trial_id} failed; retrying from its last checkpoint")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_print < self.heartbeat_s:
            return
        running = sum(t.status == "RUNNING" for t in trials)
        best = "  ".join(f"best {m}={format_number(v)}" for m, v in self.best.items())
        self._print(f"[{self._elapsed()}] {self.done}/{self.total} finished, {running} running  {best}{self._front_text()}".rstrip())
