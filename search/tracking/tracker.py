"""The tracker interface: :class:`Tracker` (what the driver tells an experiment tracker, in order)
and :class:`Trackers` (a sweep's trackers, each guarded: its first failure is one warning line,
then it is called no more, and the sweep goes on)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from search.tracking.release import Release
from trainables.report import INFO_KEYS

__all__ = ["TrackedSweep", "Tracker", "Trackers", "tracked_metric_keys"]

Row = Mapping[str, Any]


@dataclass(frozen=True)
class TrackedSweep:
    """What a tracker knows of the sweep it logs.

    Attributes:
        name: The sweep's name (the run dir's last component).
        study_name: Its Optuna study's name (``sweep.json``): unique to the sweep, so a tracker
            finds what it logged before by it.
        run_dir: The run dir (path or URI), for messages and the analysis commands.
        records: The run dir (:class:`~search.rundir.RunDir`).
        spec: The sweep's spec (:class:`~search.spec.Spec`).
        param_names: Dotted names of the searched and fixed parameters (``trials.parquet`` columns).
        metric_keys: The numeric report keys logged per epoch (``epoch`` last).
        reference: The hypervolume reference point (one value per objective), or None while the
            sweep has not fixed one.
    """

    name: str
    study_name: str
    run_dir: str
    records: Any
    spec: Any
    param_names: tuple[str, ...]
    metric_keys: tuple[str, ...]
    reference: Callable[[], Sequence[float] | None]


class Tracker:
    """One experiment tracker. Every hook runs in the driver, in this order for each trial:
    :meth:`log_epochs` (zero or more times, ascending epochs), then :meth:`end_trial` once.

    A hook may raise: :class:`Trackers` turns the first failure into one warning line and calls
    the tracker no more.
    """

    #: The tool's name and where it writes, for the warning line (``MLflow at sqlite:///x.db``).
    where: str = "tracker"
    #: Epoch rows this tracker wrote (those it held already are not counted).
    logged_epochs: int = 0

    def log_epochs(self, trial: Row, epochs: Sequence[Row]) -> None:
        """Log a trial's sealed epoch rows (``trial`` is its ``trials.parquet`` row)."""

    def end_trial(self, trial: Row) -> None:
        """Log a trial's end: its final state (``trial``'s ``state``) and final row."""

    def log_refused(self, rows: Sequence[Row]) -> None:
        """Log candidates refused before training (state ``REFUSED``, their known costs)."""

    def close(self, complete: bool, front: bool) -> None:
        """The sweep stops: ``complete`` when every trial ended (else it was stopped and may be
        resumed); ``front``: log the end-of-sweep summaries (front figure and table)."""

    def later(self) -> str:
        """The command that logs the run dir to this tracker after the fact."""
        return "python -m analysis track RUN_DIR"

    def calls(self) -> contextlib.AbstractContextManager[Any]:
        """The context every call to this tracker runs in (e.g. bounded network retries)."""
        return contextlib.nullcontext()


class Trackers:
    """A sweep's trackers, each guarded: its first failure is one warning line, then it is dropped.

    Args:
        trackers: The trackers (opened).
        out: Where the warning goes (default: stderr at the time it is printed).
    """

    def __init__(self, trackers: Sequence[Tracker] = (), out: TextIO | None = None) -> None:
        self.trackers = list(trackers)
        self.out = out

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def __len__(self) -> int:
        return len(self.trackers)

    def warn(self, where: str, exc: BaseException, later: str) -> None:
        """The one line a tracker's failure costs."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if len(text) > 300:
            text = text[:297] + "..."
        print(
            f"warning: {where} failed ({type(exc).__name__}: {text}); stopped logging to it, the run dir has everything: "
            f"log it later with {later}",
            file=self.out or sys.stderr,
            flush=True,
        )

    def each(self, call: Callable[[Tracker], None]) -> None:
        """Run ``call`` on every tracker; one that raises is warned about once and dropped."""
        for tracker in list(self.trackers):
            try:
                with tracker.calls():
                    call(tracker)
            except Exception as exc:  # noqa: BLE001 - a tracker must never fail the sweep
                self.trackers.remove(tracker)
                self.warn(tracker.where, exc, tracker.later())

    def release(self, release: Release) -> None:
        """Hand a release to every tracker: each trial's epochs, then its end; then refusals."""
        if not release or not self.trackers:
            return

        def hand_over(tracker: Tracker) -> None:
            for part in release.trials:
                if part.epochs:
                    tracker.log_epochs(part.trial, part.epochs)
                if part.ended:
                    tracker.end_trial(part.trial)
            if release.refused:
                tracker.log_refused(release.refused)

        self.each(hand_over)

    def close(self, complete: bool, front: bool | None = None) -> None:
        """Close every tracker (``front``: log the end-of-sweep summaries; default: ``complete``)."""
        self.each(lambda tracker: tracker.close(complete, complete if front is None else front))


def tracked_metric_keys(metric_keys: Sequence[str]) -> tuple[str, ...]:
    """The report keys trackers log as metrics: every key but the information ones, ``epoch`` last
    (a tracker that holds an epoch's ``epoch`` holds all of that epoch)."""
    keys = [k for k in dict.fromkeys(metric_keys) if k not in INFO_KEYS and k not in ("epoch", "timestamp", "trial_id")]
    return (*keys, "epoch")
