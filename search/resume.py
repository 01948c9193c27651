"""Resuming an interrupted sweep from what its run dir records, and nothing else.

A resumed sweep never unpickles anything of the run dir (Ray Tune's ``tuner.pkl`` and
experiment state are not read): it starts a fresh Tune run from three records —

* ``trials.parquet``: which trials finished (TERMINATED, stopped early, or ERROR after their
  retries: ``trainables.report.FINAL_STATES``). The results recorder writes a trial's final row *before* its outcome is told to the
  study, so this file is the one record of what finished.
* ``study.journal`` (``study.db`` in older run dirs): the Optuna study. Outcomes the record holds but the study lacks (a driver
  killed between the two writes) are told to it from the record.
* The trial dirs' checkpoints: every unfinished trial (running, or only suggested, at the
  interruption) is continued by a new Ray trial with the same Optuna trial and parameters, from
  its latest readable checkpoint (or from the start when it has none). Its epoch rows after
  that checkpoint are dropped, so the epochs continue and never repeat.

Finished trials are never run again: their rows, epoch rows, checkpoint and study values stay
as they were. A run dir is trusted input (resuming loads its checkpoints), so before anything is
read its ``sweep.json`` must name this sweep and, for a local run dir, its files must be the
user's own and not writable by others.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from search.rundir import (
    EPOCHS_FILE,
    PROGRESS_FILE,
    SPEC_FILE,
    SQLITE_STUDY_FILE,
    STUDY_FILE,
    SWEEP_FILE,
    TRIALS_FILE,
    RunDirError,
    RunLocation,
    study_storage,
    trial_dirname,
)
from trainables.report import COMPLETED_STATE, ERROR_STATE, FINAL_STATES, REFUSED_STATE

__all__ = ["ResumePlan", "check_trusted", "read_sweep_meta", "validate_records", "load_study", "plan_resume", "latest_checkpoint"]


@dataclass
class ResumePlan:
    """What a resumed sweep does.

    Attributes:
        finished: Trials of the record in a final state (never run again).
        continuations: Unfinished trials to continue (see :class:`~search.searcher.Continuation`).
        told: Outcomes told to the study from the record (it lagged behind).
        settled: Unfinished rows whose study trial had already ended (sweeps of earlier
            versions), mapped to the final state the record takes from the study, or to None for
            rows the study does not know (dropped).
    """

    finished: int = 0
    continuations: list[Any] = field(default_factory=list)
    told: int = 0
    settled: dict[str, str | None] = field(default_factory=dict)


def _fix_hint(name: str) -> str:
    return (
        f"restore {name} from a backup, or start a new sweep with --name (the run dir is left as it is)"
    )


def read_sweep_meta(location: RunLocation) -> dict[str, Any]:
    """``sweep.json`` of a run dir, checked (RunDirError naming it when unreadable)."""
    try:
        meta = json.loads(location.read_text(SWEEP_FILE))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{location.uri}/{SWEEP_FILE}: not readable sweep metadata ({str(exc).splitlines()[0]}); {_fix_hint(SWEEP_FILE)}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("study_name"), str) or not meta["study_name"]:
        raise RunDirError(f"{location.uri}/{SWEEP_FILE}: has no study_name; {_fix_hint(SWEEP_FILE)}")
    return meta


def check_trusted(location: RunLocation, trainable: str) -> dict[str, Any]:
    """Refuse a run dir that is not this sweep's or that others could have written.

    Returns ``sweep.json``'s content.

    Raises:
        RunDirError: ``sweep.json`` is unreadable or names another trainable; or (local run
            dirs) a file of the run dir belongs to another user or is writable by others.
    """
    meta = read_sweep_meta(location)
    if meta.get("trainable") not in (None, trainable):
        raise RunDirError(
            f"{location.uri}/{SWEEP_FILE}: this run dir holds a sweep of {meta.get('trainable')!r}, not {trainable!r}; "
            "resume it with its own spec, or start a new sweep with --name"
        )
    if location.is_local:
        root = location.uri
        for name in ("", SWEEP_FILE, SPEC_FILE, STUDY_FILE, SQLITE_STUDY_FILE, TRIALS_FILE, EPOCHS_FILE, PROGRESS_FILE):
            path = os.path.join(root, name) if name else root
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            what = name or "the run dir"
            if hasattr(os, "getuid") and info.st_uid != os.getuid():
                raise RunDirError(
                    f"{path}: {what} belongs to another user (uid {info.st_uid}); a run dir is trusted input "
                    "(resuming loads its checkpoints): resume as its owner, or copy the run dir and resume the copy"
                )
            if info.st_mode & stat.S_IWOTH and not (name == "" and info.st_mode & stat.S_ISVTX):
                raise RunDirError(
                    f"{path}: {what} is writable by every user; a run dir is trusted input (resuming loads its "
                    f"checkpoints): remove that permission (chmod o-w {path}) if its content is yours, then resume"
                )
    return meta


def validate_records(location: RunLocation) -> None:
    """Read the run dir's tables and progress file once, so a damaged one stops the resume first.

    Raises:
        RunDirError: naming the first unreadable file.
    """
    for name in (TRIALS_FILE, EPOCHS_FILE):
        try:
            table = location.read_table(name)
        except RunDirError as exc:
            raise RunDirError(f"{exc}; {_fix_hint(name)}") from None
        if table is not None and not {"trial_id", "state" if name == TRIALS_FILE else "epoch"} <= set(table.column_names):
            raise RunDirError(f"{location.uri}/{name}: not a table of this tool (columns {table.column_names[:5]}…); {_fix_hint(name)}")
    if location.exists(PROGRESS_FILE):
        try:
            json.loads(location.read_text(PROGRESS_FILE))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{location.uri}/{PROGRESS_FILE}: not readable ({exc}); delete it (it only holds the progress lines' reference)") from None


def load_study(study_name: str, path: str | os.PathLike[str], shown_as: str) -> Any:
    """The sweep's Optuna study from its file (RunDirError naming ``shown_as`` when it cannot be read).

    ``path``: a journal file (``study.journal``) or an SQLite file (``*.db``, sweeps made
    before the journal); an ``sqlite:///`` URL is taken too.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = os.fspath(path)
    if name.startswith("sqlite:///"):
        name = name[len("sqlite:///") :]
    study_file = os.path.basename(shown_as)
    if not name.endswith(".db"):
        with open(name, "rb") as journal:
            journal.seek(0, os.SEEK_END)
            size = journal.tell()
            journal.seek(max(0, size - 1))
            if size and journal.read(1) != b"\n":
                # The journal ends inside a record: cut short by a full disk or a bad copy.
                raise RunDirError(f"{shown_as}: not a readable Optuna study (its last record is cut short); {_fix_hint(study_file)}")
    try:
        study = optuna.load_study(study_name=study_name, storage=study_storage(name))
        study.get_trials(deepcopy=False)
    except KeyError:
        raise RunDirError(f"{shown_as}: holds no study named {study_name!r}; {_fix_hint(study_file)}") from None
    except Exception as exc:  # noqa: BLE001 - sqlite/sqlalchemy and the journal's decoder raise many types for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunDirError(f"{shown_as}: not a readable Optuna study ({first}); {_fix_hint(study_file)}") from None
    return study


def _inside(root: str, path: str | None) -> bool:
    if not path:
        return False
    norm = posixpath.normpath(path)
    return norm.startswith(root.rstrip("/") + "/")


def latest_checkpoint(
    location: RunLocation, trial_id: str, row: Mapping[str, Any] | None, max_epoch: int | None = None
) -> tuple[str | None, int]:
    """The newest readable checkpoint of an unfinished trial: (path or URI, its epoch).

    Looked for in the trial's own dir (:func:`~search.rundir.trial_dirname`) and, for a trial
    already continued once, the dirs its row names (only inside the run dir). A checkpoint that
    does not load (e.g. cut short by the interruption) is skipped for the one before it, and so
    is one past ``max_epoch`` (the last epoch ``epochs.parquet`` holds: continuing from a later
    one would leave epochs without rows). ``(None, 0)`` when there is none.
    """
    import torch

    fs, root = location.filesystem
    dirs = [posixpath.join(root, trial_dirname(trial_id))]
    for key in ("trial_dir", "checkpoint"):
        value = (row or {}).get(key)
        if isinstance(value, str) and _inside(root, value):
            dirs.append(value if key == "trial_dir" else posixpath.dirname(posixpath.normpath(value)))
    best: tuple[str | None, int] = (None, 0)
    for directory in dict.fromkeys(dirs):
        try:
            entries = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
        except OSError:
            continue
        names = sorted((e.path for e in entries if e.type == pafs.FileType.Directory and e.base_name.startswith("checkpoint_")), reverse=True)
        for path in names:
            try:
                with fs.open_input_stream(posixpath.join(path, "state.pt")) as stream:
                    state = torch.load(io.BytesIO(stream.readall()), map_location="cpu", weights_only=True)
                epoch = int(state["epoch"])
            except Exception:  # noqa: BLE001 - a damaged checkpoint: try the one before it
                continue
            if max_epoch is not None and epoch > max_epoch:
                continue
            if epoch > best[1]:
                best = (path if location.is_local else f"{location.storage.split('://', 1)[0]}://{path}", epoch)
            break
    return best


def plan_resume(location: RunLocation, study: Any, metrics: list[str], constraints: list[Any]) -> ResumePlan:
    """Reconcile the study with the record and list the trials to continue.

    Tells the study the outcomes the record holds and it lacks; marks suggestions that never
    became a Ray trial as failed orphans (not counted, so they are suggested anew).
    """
    from optuna.trial import TrialState

    from search.searcher import ORPHAN_ATTR, RAY_TRIAL_ATTR, Continuation, tell_outcome

    table = location.read_table(TRIALS_FILE)
    rows = {r["trial_id"]: r for r in (table.to_pylist() if table is not None else [])}
    epochs = location.read_table(EPOCHS_FILE, columns=["trial_id", "epoch"])
    last_epoch: dict[str, int] = {}
    for trial_id, epoch in zip(*(epochs.column(c).to_pylist() for c in ("trial_id", "epoch"))) if epochs is not None else ():
        last_epoch[trial_id] = max(last_epoch.get(trial_id, 0), int(epoch))
    plan = ResumePlan(finished=sum(r["state"] in FINAL_STATES for r in rows.values()))
    by_ray = {t.user_attrs.get(RAY_TRIAL_ATTR): t for t in study.get_trials(deepcopy=False)}
    open_states = (TrialState.RUNNING, TrialState.WAITING)
    for trial_id, row in rows.items():
        ot = by_ray.get(trial_id)
        if row["state"] == REFUSED_STATE:
            continue  # refused before training: never a trial, never run
        if row["state"] in FINAL_STATES:
            if ot is not None and ot.state in open_states:
                tell_outcome(study, ot._trial_id, metrics, constraints, row, error=row["state"] == ERROR_STATE)
                plan.told += 1
        elif ot is None:
            plan.settled[trial_id] = None  # a row the study never counted
        elif ot.state.is_finished():
            plan.settled[trial_id] = ERROR_STATE if ot.state == TrialState.FAIL else COMPLETED_STATE
            plan.finished += 1
    for ot in study.get_trials(deepcopy=False, states=open_states):
        trial_id = ot.user_attrs.get(RAY_TRIAL_ATTR)
        if ot.user_attrs.get(ORPHAN_ATTR) or not trial_id:
            # Asked for, never a Ray trial: not counted, suggested anew.
            study._storage.set_trial_user_attr(ot._trial_id, ORPHAN_ATTR, True)
            study.tell(ot.number, state=TrialState.FAIL)
            continue
        checkpoint, epoch = latest_checkpoint(location, trial_id, rows.get(trial_id), max_epoch=last_epoch.get(trial_id, 0))
        plan.continuations.append(Continuation(trial_id=trial_id, optuna_trial_id=ot._trial_id, checkpoint=checkpoint, epoch=epoch))
    return plan
