"""Log a run dir to the experiment trackers after the fact (``python -m analysis track``).

The same trackers a sweep with a ``tracking`` section logs to while it runs
(:mod:`search.tracking`), handed the run dir's records the way the sweep's results recorder
hands them over (:class:`search.tracking.EpochRelease`): every finished trial whole, then its
end; an unfinished trial (a sweep stopped and not resumed yet) up to its latest readable
checkpoint, the epochs a resume keeps; the candidates refused before training. The trackers hold
each trial once and log only what they lack, so running this twice logs nothing twice, and a
sweep that logged part of itself is completed. Run dirs of earlier releases read the same way.

The hypervolume reference is the analysis' own (:func:`analysis.reference.fix_reference`: the
progress lines' for the spec's objectives, else derived once and recorded), so the tracker shows
what ``python -m analysis pareto`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from analysis.results import ResultsError, load_run
from search.rundir import RunDirError

__all__ = ["Tracked", "track_run_dir"]


@dataclass(frozen=True)
class Tracked:
    """What was handed to the trackers.

    Attributes:
        trackers: The trackers that took everything (a tracker that failed is left out).
        trials: Trained trials handed over (finished or not).
        finished: Those in a final state.
        epochs: Epoch rows handed over.
        logged: Per tracker, the epoch rows it wrote (what it held already is not written again).
        refused: Candidates refused before training.
        complete: Whether the sweep had ended (every trial finished).
    """

    trackers: tuple[str, ...]
    trials: int
    finished: int
    epochs: int
    refused: int
    complete: bool
    logged: Mapping[str, int] = field(default_factory=dict)


def _checkpoint_epoch(records: Any) -> Any:
    """The epoch a resume would continue an unfinished trial from: its latest readable checkpoint's."""
    from search.resume import latest_checkpoint

    def epoch(trial_id: str, row: Mapping[str, Any], last: int) -> int:
        return latest_checkpoint(records, trial_id, row, max_epoch=last)[1]

    return epoch


def track_run_dir(
    run_dir: str,
    mlflow: str | None = None,
    experiment: str | None = None,
    tensorboard: bool = False,
    out: TextIO | None = None,
) -> Tracked:
    """Log the run dir to MLflow (``mlflow``: a tracking URI) and/or TensorBoard.

    Raises:
        ResultsError: no tracker asked for, its package missing, or the run dir unreadable.
    """
    from search.spec import MlflowSection, TrackingSection
    from search.tracking import EpochRelease, make_trackers, missing_extra
    from trainables.report import FINAL_STATES, INFO_KEYS, REFUSED_STATE

    tracking = TrackingSection(mlflow=MlflowSection(uri=mlflow, experiment=experiment), tensorboard=tensorboard)
    if not tracking.enabled:
        raise ResultsError("nothing to log to: give --mlflow URI and/or --tensorboard")
    problem = missing_extra(tracking)
    if problem:
        raise ResultsError(problem)
    run = load_run(run_dir)
    try:
        meta = run.records.read_meta()
    except RunDirError as exc:
        raise ResultsError(str(exc)) from None
    spec = run.spec.model_copy(update={"tracking": tracking})
    trials = {str(row["trial_id"]): row for row in run.trials.to_pylist()}
    epochs = {(str(row["trial_id"]), int(row["epoch"])): row for row in (run.epochs.to_pylist() if run.epochs is not None else [])}

    def reference() -> list[float] | None:
        from analysis.reference import fix_reference

        try:
            return list(fix_reference(run, spec.objectives).values)
        except ResultsError:
            return None  # no finished trial with finite objectives yet

    keys = [k for k in spec.entry.report_keys if k not in INFO_KEYS]
    trackers = make_trackers(spec, run.records, meta, param_names=[*spec.space, *spec.fixed], metric_keys=keys, reference=reference, out=out)
    release = EpochRelease()
    release.seal_record(trials, epochs, unfinished=_checkpoint_epoch(run.records))
    handed = release.take(trials, epochs)
    trackers.release(handed)
    trained = [row for row in trials.values() if row.get("state") != REFUSED_STATE]
    finished = sum(row.get("state") in FINAL_STATES for row in trained)
    complete = finished == len(trained) and finished >= spec.num_samples
    trackers.close(complete=complete, front=True)
    return Tracked(
        trackers=tuple(t.where for t in trackers.trackers),
        trials=len(trained),
        finished=finished,
        epochs=sum(len(part.epochs) for part in handed.trials),
        refused=len(handed.refused),
        complete=complete,
        logged={t.where: t.logged_epochs for t in trackers.trackers},
    )
