"""Which recorded rows the experiment trackers may log: only what the run dir holds for good.

A tracker's histories only append (an MLflow metric history, a TensorBoard event file), but a
run dir's epoch rows are not all final while a sweep runs: a resumed sweep, or Ray Tune retrying
a failed trial, continues a trial from its latest checkpoint and runs the epochs after it again,
replacing their rows. So an epoch row is *sealed*, and handed to the trackers, only once nothing
can replace it:

* every epoch up to the one of the trial's latest checkpoint (a trial never runs again from an
  earlier one);
* all of a trial's epochs once it is in a final state (:data:`trainables.report.FINAL_STATES`);
* on a resume, everything the record holds once the continued trials were rewound to their
  checkpoints (:meth:`EpochRelease.seal_record`).

A trial's end (its final row) is handed over once, after its last epoch; candidates refused
before training once each. :class:`EpochRelease` keeps, per trial, how far it is sealed and how
far it was handed over, so a release costs only the rows it hands over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainables.report import FINAL_STATES, REFUSED_STATE

__all__ = ["EpochRelease", "Release", "TrialRelease"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TrialRelease:
    """One trial's share of a release.

    Attributes:
        trial: Its ``trials.parquet`` row as it is now (parameters, state, final report).
        epochs: Its sealed epoch rows not handed over before, by epoch.
        ended: Whether its end is handed over now (after ``epochs``, which hold its last one).
    """

    trial: Row
    epochs: list[Row]
    ended: bool


@dataclass(frozen=True)
class Release:
    """What a flush hands to the trackers: trials in the order they were sealed or ended, and
    the candidates refused before training since the last release."""

    trials: list[TrialRelease] = field(default_factory=list)
    refused: list[Row] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.trials or self.refused)


class EpochRelease:
    """How far each trial's epoch rows are sealed and how far they were released."""

    def __init__(self) -> None:
        self._sealed: dict[str, float] = {}  # trial → last sealed epoch (inf once final)
        self._released: dict[str, int] = {}  # trial → last epoch handed over
        self._last: dict[str, int] = {}  # trial → last epoch the record holds
        self._ended: set[str] = set()
        self._due: dict[str, None] = {}  # trials with something to hand over, in order
        self._refused: dict[str, None] = {}
        self._refused_done: set[str] = set()

    def recorded(self, trial_id: str, epoch: int) -> None:
        """The record holds a row of ``trial_id`` at ``epoch`` (a report arrived)."""
        if epoch > self._last.get(trial_id, -1):
            self._last[trial_id] = epoch
        if epoch <= self._sealed.get(trial_id, -1) and epoch > self._released.get(trial_id, -1):
            self._due.setdefault(trial_id, None)

    def seal(self, trial_id: str, epoch: int) -> None:
        """``trial_id`` checkpointed at ``epoch``: its epochs up to there are final."""
        if epoch > self._sealed.get(trial_id, -1):
            self._sealed[trial_id] = epoch
            self._due.setdefault(trial_id, None)

    def finish(self, trial_id: str) -> None:
        """``trial_id`` reached a final state: all its epochs, then its end, are due."""
        self._sealed[trial_id] = math.inf
        self._due.pop(trial_id, None)
        self._due[trial_id] = None  # ends are handed over in the order trials finish

    def refuse(self, trial_id: str) -> None:
        """A candidate refused before training was recorded."""
        if trial_id not in self._refused_done:
            self._refused[trial_id] = None

    def forget(self, trial_id: str) -> None:
        """The record dropped ``trial_id`` (a resume found no study trial for it)."""
        for table in (self._sealed, self._released, self._last, self._due, self._refused):
            table.pop(trial_id, None)
        self._ended.discard(trial_id)

    def is_final(self, trial_id: str) -> bool:
        return self._sealed.get(trial_id) == math.inf

    def seal_record(
        self,
        trials: Mapping[str, Row],
        epochs: Mapping[tuple[str, int], Row],
        unfinished: Callable[[str, Row, int], int] | None = None,
    ) -> None:
        """Seal everything a record holds: finished trials whole (in the order their last
        epochs were reported), refused candidates, and unfinished trials up to their last
        epoch, or up to ``unfinished(trial_id, row, last_epoch)`` (e.g. their latest
        checkpoint's epoch, for a record a sweep may still continue)."""
        for trial_id, epoch in epochs:
            self.recorded(trial_id, epoch)

        def ended_at(trial_id: str) -> float:
            row = epochs.get((trial_id, self._last.get(trial_id, -1))) or {}
            stamp = row.get("timestamp")
            return float(stamp) if isinstance(stamp, (int, float)) and math.isfinite(stamp) else math.inf

        final = [t for t, row in trials.items() if row.get("state") in FINAL_STATES]
        for trial_id in sorted(final, key=ended_at):
            self.finish(trial_id)
        for trial_id, row in trials.items():
            if row.get("state") == REFUSED_STATE:
                self.refuse(trial_id)
            elif row.get("state") not in FINAL_STATES:
                last = self._last.get(trial_id, -1)
                self.seal(trial_id, last if unfinished is None else min(last, unfinished(trial_id, row, last)))

    def take(self, trials: Mapping[str, Row], epochs: Mapping[tuple[str, int], Row]) -> Release:
        """Hand over what is due: sealed epoch rows not handed over before, ends, refusals.

        ``trials`` and ``epochs`` are the record (rows by trial id, and by trial id and epoch),
        as just written to the run dir.
        """
        out = []
        for trial_id in self._due:
            row = trials.get(trial_id)
            if row is None:
                continue
            last = self._last.get(trial_id, -1)
            upper = int(min(self._sealed.get(trial_id, -1), last))
            start = self._released.get(trial_id, -1)
            rows = [epochs[(trial_id, e)] for e in range(start + 1, upper + 1) if (trial_id, e) in epochs]
            self._released[trial_id] = max(start, upper)
            ended = self.is_final(trial_id) and trial_id not in self._ended
            if ended:
                self._ended.add(trial_id)
            if rows or ended:
                out.append(TrialRelease(row, rows, ended))
        self._due.clear()
        refused = [trials[t] for t in self._refused if t in trials]
        self._refused_done.update(self._refused)
        self._refused.clear()
        return Release(out, refused)
