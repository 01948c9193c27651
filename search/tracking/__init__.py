"""Experiment trackers: the sweep's record, logged to MLflow and TensorBoard as it becomes final.

The run dir is the record (``trials.parquet``, ``epochs.parquet``); a tracker is a view of it in
another tool. The results recorder (:class:`search.recorder.ResultsRecorder`, in the driver)
hands the trackers what the run dir holds for good (:mod:`search.tracking.release`: epoch rows
up to each trial's latest checkpoint, all of a finished trial's, then its end), right after
writing it; ``python -m analysis track RUN_DIR`` hands them a finished run dir the same way.

- :class:`Tracker` (:mod:`search.tracking.tracker`): the small interface a tracker implements (epochs, a trial's end, refused
  candidates, close); :class:`Trackers`: a sweep's trackers, each guarded so that a failure (a
  server that is down or dies) costs one warning line and disables that tracker, never the sweep;
- :func:`make_trackers`: the trackers a spec's ``tracking`` section asks for;
  :func:`missing_extra`: the one-line error when their packages are not installed;
- :mod:`search.tracking.mlflow` and :mod:`search.tracking.tensorboard`: the two trackers.

Every tracker is idempotent: started again on the same run dir (after a signal and ``--resume``,
or a second ``analysis track``), it logs only what it does not hold yet.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from search.tracking.release import EpochRelease, Release, TrialRelease
from search.tracking.tracker import TrackedSweep, Tracker, Trackers, tracked_metric_keys

__all__ = [
    "EpochRelease",
    "Release",
    "TrackedSweep",
    "Tracker",
    "Trackers",
    "TrialRelease",
    "log_record",
    "make_trackers",
    "missing_extra",
    "progress_reference",
    "tracked_metric_keys",
]

#: The install extra of the trackers' packages (pyproject.toml).
INSTALL_HINT = 'pip install -e ".[track]"'


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def missing_extra(tracking: Any) -> str | None:
    """The one-line problem when a ``tracking`` section asks for a package that is not installed."""
    if tracking.mlflow.uri is not None and not _installed("mlflow"):
        return f"tracking.mlflow needs MLflow: {INSTALL_HINT}"
    if tracking.tensorboard and not (_installed("tensorboard") and _installed("tensorboardX")):
        return f"tracking.tensorboard needs TensorBoard: {INSTALL_HINT}"
    return None


def progress_reference(spec: Any, records: Any) -> Callable[[], Sequence[float] | None]:
    """The hypervolume reference the sweep's progress lines fixed (``progress.json``), read until found."""
    found: list[float] = []

    def reference() -> Sequence[float] | None:
        if not found:
            recorded = records.read_progress_reference() or {}
            try:
                found.extend(float(recorded[m]) for m in spec.metrics)
            except (KeyError, TypeError, ValueError):
                found.clear()
        return list(found) or None

    return reference


def make_trackers(
    spec: Any,
    records: Any,
    meta: Any = None,
    *,
    param_names: Sequence[str] | None = None,
    metric_keys: Sequence[str] | None = None,
    reference: Callable[[], Sequence[float] | None] | None = None,
    out: TextIO | None = None,
) -> Trackers:
    """The trackers ``spec.tracking`` asks for, opened on the run dir ``records``.

    One that cannot be opened (a server that is down) costs one warning line and is left out.

    Args:
        spec: The sweep's spec; its ``tracking`` section says which trackers.
        records: The run dir (:class:`~search.rundir.RunDir`).
        meta: Its ``sweep.json`` (:class:`~search.rundir.SweepMeta`; read when not given).
        param_names: The parameter columns (default: the spec's searched and fixed parameters).
        metric_keys: The report keys (default: the family's).
        reference: The hypervolume reference (default: the progress lines', ``progress.json``).
        out: Where warnings go (default: stderr).
    """
    group = Trackers(out=out)
    tracking = spec.tracking
    if not tracking.enabled:
        return group
    meta = meta if meta is not None else records.read_meta()
    sweep = TrackedSweep(
        name=records.location.name or spec.name,
        study_name=meta.study_name,
        run_dir=records.uri,
        records=records,
        spec=spec,
        param_names=tuple(param_names if param_names is not None else [*spec.space, *spec.fixed]),
        metric_keys=tracked_metric_keys(metric_keys if metric_keys is not None else spec.entry.report_keys),
        reference=reference or progress_reference(spec, records),
    )
    if tracking.mlflow.uri is not None:
        from search.tracking.mlflow import MlflowTracker, bounded_http

        uri, experiment = tracking.mlflow.uri, tracking.mlflow.experiment or spec.name
        try:
            with bounded_http():
                group.trackers.append(MlflowTracker(uri, experiment, sweep))
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop the sweep
            group.warn(f"MLflow at {uri}", exc, f"python -m analysis track {sweep.run_dir} --mlflow {uri}")
    if tracking.tensorboard:
        from search.tracking.tensorboard import TensorboardTracker

        folder = records.tensorboard_dir(meta)
        try:
            group.trackers.append(TensorboardTracker(folder, sweep, out=out))
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop the sweep
            group.warn(f"TensorBoard in {folder}", exc, f"python -m analysis track {sweep.run_dir} --tensorboard")
    return group


def log_record(spec: Any, records: Any, meta: Any = None, trials: Sequence[Any] | None = None, epochs: Sequence[Any] | None = None) -> None:
    """Log a run dir's whole record to the trackers ``spec.tracking`` asks for, then close them.

    For a ``--resume`` that has nothing left to train (every trial finished) but names trackers
    the sweep did not log to before: they are handed the record as a finished sweep's results
    recorder would have handed it (each holds every trial once; what it holds is not logged again).
    """
    if not spec.tracking.enabled:
        return
    if trials is None or epochs is None:
        trials, epochs = records.read_records()
        trials = trials.to_pylist() if trials is not None else []
        epochs = epochs.to_pylist() if epochs is not None else []
    rows = {str(row["trial_id"]): row for row in trials}
    by_epoch = {(str(row["trial_id"]), int(row["epoch"])): row for row in epochs}
    trackers = make_trackers(spec, records, meta)
    release = EpochRelease()
    release.seal_record(rows, by_epoch)
    trackers.release(release.take(rows, by_epoch))
    trackers.close(complete=True)
