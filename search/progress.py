"""Sweep progress on the terminal: one line per finished trial, a heartbeat while waiting."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ray.tune import Callback

from analysis.pareto import hypervolume, pareto_mask, reference_point  # pure functions on arrays
from search.recorder import record_id
from search.spec import feasible
from trainables.report import TERMINATED_STATE, FINAL_STATES, format_number, is_competing, is_full_budget

__all__ = ["ProgressPrinter"]


class ProgressPrinter(Callback):
    """Print one line per finished trial and a status line every ``heartbeat_s`` seconds.

    Each line also shows the current Pareto front's size (full-budget, feasible trials) and,
    once ``REFERENCE_AFTER`` trials have finished, its hypervolume.

    The cost per finished trial does not grow with the number of trials: only the current
    non-dominated set is kept (each distinct point with its number of copies, since identical
    points are all on the front), its hypervolume is recomputed only when that set changes, the
    reference is derived from running per-objective bounds, and running trials are counted from
    the start/finish callbacks rather than by scanning every trial of the sweep.

    Args:
        total: Number of trials the sweep will run.
        metrics: Objective metrics shown per trial.
        modes: Their directions (``max``/``min``), for the running best.
        epochs: Full budget, to show how far an early-stopped trial got.
        out: Stream to print to.
        records: The run dir (:class:`~search.rundir.RunDir`): where the hypervolume reference
            is kept, so a resumed sweep's lines stay comparable with earlier ones.
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
        records: Any = None,
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
        # Finite objective vectors of finished trials: how many, and their per-objective lowest
        # and highest values, all that ``reference_point`` reads of them.
        self._finite_count = 0
        self._lows: list[float] = []
        self._highs: list[float] = []
        # The current Pareto front of the full-budget feasible trials (original units): each
        # distinct point once, with its copies.
        self._front: list[tuple[float, ...]] = []
        self._copies: list[int] = []
        self._front_size = 0  # sum of ``_copies``: ties count once per trial, as in pareto_mask
        self._front_hv: float | None = None  # cached; None until computed or after a change
        self._reference: list[float] | None = None
        # Trials started and not finished (nor waiting for a retry), by id.
        self._live: dict[str, Any] = {}
        self.records = records
        self.stopping: Any = None  # set by the driver: true once a signal stops the sweep
        self._announced: set[str] = set()
        self._started = time.monotonic()
        self._last_print = self._started

    def continue_from(self, rows: Sequence[dict[str, Any]], reference: dict[str, float] | None = None) -> None:
        """Count on from an interrupted sweep: its finished rows and its recorded reference."""
        if reference and all(m in reference for m in self.metrics):
            self._reference = [float(reference[m]) for m in self.metrics]
            self._front_hv = None
            ref = ", ".join(f"{m}={format_number(v)}" for m, v in zip(self.metrics, self._reference))
            self._print(f"hypervolume reference (kept from before the resume): {ref}")
        for row in rows:
            if row.get("state") not in FINAL_STATES:
                continue
            self.done += 1
            if row["state"] == TERMINATED_STATE:
                competing = is_competing(row["state"], row.get("budget_fraction"))
                self._record(row, competing)
                if competing and feasible(row, self.constraints):
                    self._update_best(row)

    def setup(self, **info: Any) -> None:
        self._started = self._last_print = time.monotonic()

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
        self._finite_count += 1
        if self._reference is None:  # only the reference needs the bounds
            self._lows = [min(p, v) for p, v in zip(self._lows, point)] if self._lows else list(point)
            self._highs = [max(p, v) for p, v in zip(self._highs, point)] if self._highs else list(point)
        if full and feasible(last, self.constraints):
            self._add_to_front(point)
        # The reference is fixed once, from the first few finished trials (early-stopped ones
        # included), so successive lines are comparable; ``python -m analysis.pareto`` derives
        # its own from every trial and records it in the run dir.
        if self._front_size and self._finite_count >= min(self.REFERENCE_AFTER, self.total):
            if self._reference is None:
                # The reference depends on each objective's best and worst finite value only,
                # so the two bound rows give exactly what all the rows would.
                bounds = [self._lows, self._highs]
                self._reference = [float(v) for v in reference_point(bounds, self.modes)]
                ref = ", ".join(f"{m}={format_number(v)}" for m, v in zip(self.metrics, self._reference))
                self._print(f"hypervolume reference (fixed for this sweep's progress lines): {ref}")
                self._save_reference()

    def _save_reference(self) -> None:
        if self.records is None:
            return
        try:
            self.records.write_progress_reference(dict(zip(self.metrics, self._reference or [])))
        except OSError:
            pass  # the progress lines' reference is a convenience: never fail the sweep for it

    def _add_to_front(self, point: Sequence[float]) -> None:
        """Update the current front with a full-budget feasible point; cost by front size only."""
        z = tuple(point)
        if z in self._front:  # a tie is on the front as well, and adds no volume
            self._copies[self._front.index(z)] += 1
            self._front_size += 1
            return
        on_front = pareto_mask([*self._front, z], self.modes)
        if not on_front[-1]:
            return  # dominated: neither on the front now nor ever again
        kept = [(q, c) for q, c, keep in zip(self._front, self._copies, on_front) if keep]
        self._front = [q for q, _ in kept] + [z]
        self._copies = [c for _, c in kept] + [1]
        self._front_size = sum(self._copies)
        self._front_hv = None

    def _front_text(self) -> str:
        if not self._front_size:
            return ""
        if self._reference is None:
            return f"  | front {self._front_size}"
        if self._front_hv is None:
            self._front_hv = hypervolume(self._front, self.modes, self._reference)
        return f"  | front {self._front_size}, hv {self._front_hv:.4g}"

    def _update_best(self, last: dict) -> None:
        for metric, mode in zip(self.metrics, self.modes):
            v = last.get(metric)
            if v is None or not math.isfinite(float(v)):
                continue
            cur = self.best.get(metric)
            if cur is None or (v > cur if mode == "max" else v < cur):
                self.best[metric] = float(v)

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
            self._update_best(last)
        width = len(str(self.total))
        head = f"[{self._elapsed()}] [{self.done:>{width}}/{self.total}] {record_id(trial)} {status:<5}"
        self._print(f"{head} {values if status == 'done' else ''}{note}{self._front_text()}".rstrip())

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._live.pop(trial.trial_id, None)  # also called for a pending trial when Tune stops all
        self._finish(trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from search.recorder import one_line_error

        self._live.pop(trial.trial_id, None)
        if getattr(self, "stopping", None) is not None and self.stopping():
            return  # the sweep is being stopped: not a trial failure
        self._finish(trial, "error")
        self._print(f"    {record_id(trial)}: {one_line_error(trial)}")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Called on every (re)start: a fresh trial, a continuation of an interrupted sweep's
        # trial, a retry after on_trial_recover, a paused trial resuming. Keyed by id, so a
        # restart is never counted twice.
        self._live[trial.trial_id] = trial
        runtime = (trial.config or {}).get("runtime") or {}
        if runtime.get("continues") and trial.trial_id not in self._announced:
            self._announced.add(trial.trial_id)
            where = "from its checkpoint" if runtime.get("continue_from") else "from the start (it had no checkpoint)"
            self._print(f"[{self._elapsed()}] {runtime['continues']} continues {where}")

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._live.pop(trial.trial_id, None)  # pending until Tune restarts it (on_trial_start)
        self._print(f"[{self._elapsed()}] {record_id(trial)} failed; retrying from its last checkpoint")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_print < self.heartbeat_s:
            return
        # Only the started trials are looked at, not the whole sweep; the status check leaves
        # out one a scheduler paused (Tune has no callback for that) until it starts again.
        running = sum(t.status == "RUNNING" for t in self._live.values())
        best = "  ".join(f"best {m}={format_number(v)}" for m, v in self.best.items())
        self._print(f"[{self._elapsed()}] {self.done}/{self.total} finished, {running} running  {best}{self._front_text()}".rstrip())
