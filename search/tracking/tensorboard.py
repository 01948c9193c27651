"""The TensorBoard tracker: a sweep as TensorBoard event files, one folder per trial.

``RUN_DIR/tensorboard/<trial_id>/`` holds, written with tensorboardX (a Ray Tune dependency):

* one scalar per numeric report key and epoch, tagged with the key (``val_accuracy``), step =
  epoch, wall time = the report's; as in every TensorBoard scalar, values are 32-bit floats. A
  NaN cell ("not measured at that epoch") has no point, as in MLflow;
* the HParams dashboard's data (``tensorboard.plugins.hparams``): the trial's searched and fixed
  parameters (session start, written with its first epochs) and how it ended (session end:
  success, or failure for an error). No experiment summary is written, so TensorBoard builds the
  HParams table from every trial's session, its metric columns from the scalars (their last
  value: the trial's final report).

``tensorboard --logdir RUN_DIR/tensorboard`` shows them. Event files only grow by appends and
cannot be read back cheaply, so the tracker does not append to what an earlier driver wrote:
when it starts (a sweep, a ``--resume``, ``python -m analysis track``), it deletes the folder and
writes every trial again from the run dir's records, which the recorder hands it at its first
flush. A run dir on an object store gets its event files in the sweep's local cache instead
(:meth:`search.rundir.RunDir.tensorboard_dir`; the tracker prints where).

Ray Tune's ``TBXLoggerCallback`` is not used: it logs every result as it arrives (a resumed trial
re-runs the epochs after its last checkpoint, which would be logged twice).
"""

from __future__ import annotations

import math
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from search.tracking.tracker import TrackedSweep, Tracker
from trainables.report import ERROR_STATE

__all__ = ["TensorboardTracker", "session_end", "session_start"]

_PLUGIN = "hparams"
_START_TAG = "_hparams_/session_start_info"
_END_TAG = "_hparams_/session_end_info"


def _summary(tag: str, data: Any) -> Any:
    """A summary holding HParams plugin data (as ``tensorboardX.summary.hparams`` builds it)."""
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    content = HParamsPluginData(version=0, **data).SerializeToString()
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=_PLUGIN, content=content))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def session_start(params: Mapping[str, Any], start_s: float | None = None) -> Any:
    """The HParams session start of a trial: its parameters (None values left out)."""
    from tensorboardX.proto.plugin_hparams_pb2 import SessionStartInfo

    info = SessionStartInfo(start_time_secs=start_s or 0.0)
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)
    return _summary(_START_TAG, {"session_start_info": info})


def session_end(failed: bool, end_s: float | None = None) -> Any:
    """The HParams session end of a trial: success, or failure for a trial that errored."""
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import SessionEndInfo

    status = Status.Value("STATUS_FAILURE" if failed else "STATUS_SUCCESS")
    return _summary(_END_TAG, {"session_end_info": SessionEndInfo(status=status, end_time_secs=end_s or 0.0)})


def _stamp(row: Mapping[str, Any]) -> float | None:
    value = row.get("timestamp")
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class TensorboardTracker(Tracker):
    """Write a sweep's event files under ``folder`` (see the module docstring).

    Args:
        folder: The sweep's TensorBoard folder (emptied now: every trial is written again).
        sweep: What the tracker knows of the sweep.
        out: Where the line naming the folder goes (default: stdout).
    """

    def __init__(self, folder: Path, sweep: TrackedSweep, out: TextIO | None = None) -> None:
        from tensorboardX import SummaryWriter  # at the start: a missing package fails here

        self.writer_class = SummaryWriter
        self.folder = Path(folder)
        self.sweep = sweep
        self.where = f"TensorBoard in {self.folder}"
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writers: dict[str, Any] = {}
        where = "" if sweep.records.location.is_local else " (the run dir is on an object store: they are kept on this machine)"
        print(f"tensorboard: event files in {self.folder}{where}; view them with: tensorboard --logdir {self.folder}", file=out or sys.stdout, flush=True)

    def later(self) -> str:
        return f"python -m analysis track {self.sweep.run_dir} --tensorboard"

    def _writer(self, trial: Mapping[str, Any], start_s: float | None) -> Any:
        trial_id = str(trial["trial_id"])
        writer = self.writers.get(trial_id)
        if writer is None:
            writer = self.writers[trial_id] = self.writer_class(logdir=str(self.folder / trial_id), flush_secs=3600)
            params = {name: trial.get(name) for name in self.sweep.param_names}
            writer.file_writer.add_summary(session_start(params, start_s))
        return writer

    def log_epochs(self, trial: Mapping[str, Any], epochs: Sequence[Mapping[str, Any]]) -> None:
        writer = self._writer(trial, _stamp(epochs[0]) if epochs else None)
        for row in epochs:
            epoch, stamp = int(row["epoch"]), _stamp(row)
            for key in self.sweep.metric_keys:
                value = row.get(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                    continue
                writer.add_scalar(key, float(value), global_step=epoch, walltime=stamp)
            self.logged_epochs += 1
        writer.flush()

    def end_trial(self, trial: Mapping[str, Any]) -> None:
        writer = self._writer(trial, None)
        writer.file_writer.add_summary(session_end(trial.get("state") == ERROR_STATE))
        writer.close()  # a finished trial's folder is complete: no open file (nor thread) per trial
        self.writers.pop(str(trial["trial_id"]), None)

    def close(self, complete: bool, front: bool) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()
