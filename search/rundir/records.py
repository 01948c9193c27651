"""Every sweep-level file of a run dir, each with one typed reader and writer: :class:`RunDir`.

A run dir (``STORAGE/NAME``) holds the files :data:`RUN_DIR_CONTENTS` lists (``spec.yaml``,
``sweep.json``, the study, ``trials.parquet``, ``epochs.parquet`` …; the documentation's run-dir
reference is generated from it).

The Optuna study is a file that grows by appends (Optuna's ``JournalFileBackend``): each study
write is one appended line, several times cheaper than an SQLite transaction
(``benchmarks/study_storage.py``). Object stores cannot host such a file, so for those run dirs
the study lives in a driver-local cache and a copy is uploaded to the run dir whenever the sweep
stops.

Nothing outside this package names these files or opens them: the search writes and the
analysis reads through :class:`RunDir`.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from search.rundir.location import RunDirError, RunLocation, open_run_dir, run_location

__all__ = ["RUN_DIR_CONTENTS", "RunDir", "SweepMeta", "study_address", "study_storage", "load_study"]

SPEC_FILE = "spec.yaml"
SWEEP_FILE = "sweep.json"
STUDY_FILE = "study.journal"
SQLITE_STUDY_FILE = "study.db"
TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
ANALYSIS_FILE = "analysis.json"
PROGRESS_FILE = "progress.json"
WARM_TRIALS_FILE = "warm_start.parquet"
WARM_EPOCHS_FILE = "warm_epochs.parquet"
#: TensorBoard's event files, one folder per trial (:meth:`RunDir.tensorboard_dir`).
TENSORBOARD_DIR = "tensorboard"

#: Everything a run dir may hold: (file or folder, what it is). The run-dir reference is generated from it.
RUN_DIR_CONTENTS: tuple[tuple[str, str], ...] = (
    (SPEC_FILE, "the resolved spec: what actually ran (a resume checks it against the spec it is given)"),
    (SWEEP_FILE, "the sweep's metadata (`SweepMeta`): the Optuna study's name and file, the trainable, when it was created, "
     "`--num-cpus` of a local sweep, and with `--warm-start` what each earlier run dir gave (`warm_start`)"),
    (STUDY_FILE, "the persisted Optuna study, an Optuna journal file (`JournalFileBackend`): `optuna-dashboard RUN_DIR/study.journal`; "
     "sweeps of earlier releases whose `sweep.json` names `study.db` (or no study file) keep an SQLite study under that name"),
    (TRIALS_FILE, "one row per trial, and one per candidate refused before training (state `REFUSED`); refreshed while the sweep runs "
     "(columns below)"),
    (EPOCHS_FILE, "one row per report: every epoch of every trial (columns below)"),
    (PROGRESS_FILE, "the hypervolume reference the progress lines fixed (kept across `--resume`)"),
    (ANALYSIS_FILE, "hypervolume reference points the analysis recorded"),
    (WARM_TRIALS_FILE, "with `--warm-start`: one row per earlier trial told to the study: `trial_id` (`RUN_DIR#trial_id`), `source`, "
     "`source_trial_id`, `told_as` (COMPLETE, PRUNED or FAIL), `epoch`, `budget_fraction`, `params_json`, the parameters, the metrics, "
     "`metrics_json`, `curve_json`"),
    (WARM_EPOCHS_FILE, "with `--warm-start`: the told trials' epoch rows (they fill ASHA's and MO-ASHA's rungs on every start)"),
    (TENSORBOARD_DIR + "/", "with `tracking.tensorboard`: TensorBoard event files, one folder per trial (in the driver's local cache "
     "for a run dir on an object store)"),
    ("cache/", "artefacts the trials of one sweep share, e.g. a trained SNE teacher"),
    ("trial_<id>/", "one trial's checkpoints (model, optimiser, masks, RNG; a finished trial keeps only its last) and error files"),
    ("other files", "Ray Tune's own experiment state, never read by this tool"),
)

#: What each record is called in messages and in :meth:`RunDir.shown`.
_FILES = {
    "spec": SPEC_FILE,
    "sweep": SWEEP_FILE,
    "trials": TRIALS_FILE,
    "epochs": EPOCHS_FILE,
    "analysis": ANALYSIS_FILE,
    "progress": PROGRESS_FILE,
    "warm_trials": WARM_TRIALS_FILE,
    "warm_epochs": WARM_EPOCHS_FILE,
}


def _fix_hint(name: str) -> str:
    return f"restore {name} from a backup, or start a new sweep with --name (the run dir is left as it is)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class SweepMeta:
    """``sweep.json``: what identifies a sweep's study and how it was started.

    Attributes:
        study_name: The Optuna study's name, unique to the sweep.
        trainable: The family it trains (a resume with another family's spec is refused).
        created: When it was started (ISO 8601).
        study_file: The study's file in the run dir: ``study.journal``, or ``study.db`` for
            SQLite studies.
        num_cpus: ``--num-cpus`` of a local sweep (a resume uses it again), or None.
        warm_start: With ``--warm-start``: per earlier run dir, what was taken from it
            (``run_dir``, ``study_name``, ``taken``, ``stopped_early``, ``shorter_budget``, ``failed``, ``not_taken``).
        other: Keys this release does not know, kept as they are when the file is rewritten.
    """

    study_name: str
    trainable: str | None = None
    created: str | None = None
    study_file: str = STUDY_FILE
    num_cpus: int | None = None
    warm_start: tuple[Mapping[str, Any], ...] = ()
    other: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, study_name: str, trainable: str) -> SweepMeta:
        return cls(study_name=study_name, trainable=trainable, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def to_json(self) -> str:
        data: dict[str, Any] = {"study_name": self.study_name, "trainable": self.trainable, "created": self.created, "study_storage": self.study_file}
        if self.num_cpus is not None:
            data["num_cpus"] = self.num_cpus
        if self.warm_start:
            data["warm_start"] = [dict(source) for source in self.warm_start]
        return json.dumps({**data, **self.other}, indent=2) + "\n"


class RunDir:
    """A run dir's records, typed: the one reader and writer of its sweep-level files.

    Args:
        location: The run dir (a :class:`RunLocation`, or one path or URI).
    """

    def __init__(self, location: RunLocation | str | os.PathLike[str]) -> None:
        self.location = location if isinstance(location, RunLocation) else open_run_dir(location)

    @classmethod
    def at(cls, storage: str, name: str) -> RunDir:
        """The run dir ``STORAGE/NAME`` (paths normalised, URIs kept)."""
        return cls(run_location(storage, name))

    @property
    def uri(self) -> str:
        return self.location.uri

    def shown(self, record: str) -> str:
        """A record's file as messages name it (``RUN_DIR/trials.parquet``); ``record`` as in ``_FILES``."""
        return f"{self.uri}/{_FILES[record]}"

    @staticmethod
    def file_name(record: str) -> str:
        """A record's file name (``trials`` → ``trials.parquet``), for messages and docs."""
        return _FILES[record]

    # ---- sweep.json --------------------------------------------------------------------------
    def has_sweep(self) -> bool:
        """Whether a sweep was started here (RunDirError when the run dir cannot be reached)."""
        try:
            return self.location.exists(SWEEP_FILE)
        except OSError as exc:
            raise RunDirError(f"cannot reach the run dir {self.uri}: {_first_line(exc)}") from None

    def read_meta(self) -> SweepMeta:
        """``sweep.json``, checked: RunDirError naming it when it is unreadable or names no study."""
        shown = self.shown("sweep")
        try:
            data = json.loads(self.location.read_text(SWEEP_FILE))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(f"{shown}: not readable sweep metadata ({str(exc).splitlines()[0]}); {_fix_hint(SWEEP_FILE)}") from None
        if not isinstance(data, dict) or not isinstance(data.get("study_name"), str) or not data["study_name"]:
            raise RunDirError(f"{shown}: has no study_name; {_fix_hint(SWEEP_FILE)}")
        study_file = data.get("study_storage", SQLITE_STUDY_FILE)  # the oldest sweeps name none: SQLite
        if study_file not in (STUDY_FILE, SQLITE_STUDY_FILE):
            raise RunDirError(
                f"{shown}: names the study file {study_file!r}, expected {STUDY_FILE} or {SQLITE_STUDY_FILE}; "
                "restore sweep.json from a backup, or start a new sweep with --name"
            )
        cpus = data.get("num_cpus")
        known = {"study_name", "trainable", "created", "study_storage", "num_cpus", "warm_start"}
        warm = data.get("warm_start")
        return SweepMeta(
            study_name=data["study_name"],
            trainable=data.get("trainable"),
            created=data.get("created"),
            study_file=study_file,
            num_cpus=cpus if isinstance(cpus, int) and not isinstance(cpus, bool) else None,
            warm_start=tuple(w for w in warm if isinstance(w, dict)) if isinstance(warm, list) else (),
            other={k: v for k, v in data.items() if k not in known},
        )

    def write_meta(self, meta: SweepMeta) -> None:
        self.location.write_text(SWEEP_FILE, meta.to_json())

    def record_num_cpus(self, num_cpus: int) -> None:
        """Keep ``--num-cpus`` in ``sweep.json``: ``--resume`` uses it again."""
        self.write_meta(replace(self.read_meta(), num_cpus=num_cpus))

    # ---- spec.yaml ---------------------------------------------------------------------------
    def has_spec(self) -> bool:
        return self.location.exists(SPEC_FILE)

    def read_spec_text(self) -> str:
        return self.location.read_text(SPEC_FILE)

    def write_spec_text(self, text: str) -> None:
        self.location.write_text(SPEC_FILE, text)

    # ---- trials.parquet, epochs.parquet ----------------------------------------------------------
    def read_trials(self, columns: list[str] | None = None) -> pa.Table | None:
        """``trials.parquet`` (None before the first write); RunDirError when unreadable."""
        return self.location.read_table(TRIALS_FILE, columns=columns)

    def read_epochs(self, columns: list[str] | None = None) -> pa.Table | None:
        """``epochs.parquet`` (None before the first write); RunDirError when unreadable."""
        return self.location.read_table(EPOCHS_FILE, columns=columns)

    def has_trials(self) -> bool:
        return self.location.exists(TRIALS_FILE)

    def write_trials(self, table: pa.Table) -> None:
        self.location.write_table(TRIALS_FILE, table)

    def write_epochs(self, table: pa.Table) -> None:
        self.location.write_table(EPOCHS_FILE, table)

    def read_records(self) -> tuple[pa.Table | None, pa.Table | None]:
        """Both tables, checked to be this tool's (RunDirError naming the first that is not)."""
        tables = []
        for name, key in ((TRIALS_FILE, "state"), (EPOCHS_FILE, "epoch")):
            try:
                table = self.location.read_table(name)
            except RunDirError as exc:
                raise RunDirError(f"{exc}; {_fix_hint(name)}") from None
            if table is not None and not {"trial_id", key} <= set(table.column_names):
                raise RunDirError(f"{self.uri}/{name}: not a table of this tool (columns {table.column_names[:5]}…); {_fix_hint(name)}")
            tables.append(table)
        return tables[0], tables[1]

    # ---- warm_start.parquet, warm_epochs.parquet -------------------------------------------------
    def write_warm_start(self, trials: pa.Table, epochs: pa.Table | None, sources: list[Mapping[str, Any]]) -> None:
        """Record a warm start: the told trials, their epoch rows, and per source run dir what it gave."""
        self.location.write_table(WARM_TRIALS_FILE, trials)
        if epochs is not None:
            self.location.write_table(WARM_EPOCHS_FILE, epochs)
        self.write_meta(replace(self.read_meta(), warm_start=tuple(dict(s) for s in sources)))

    def read_warm_start(self) -> tuple[pa.Table | None, pa.Table | None]:
        """The warm start's two tables ((None, None) for a sweep started cold); RunDirError when unreadable."""
        tables = []
        for name in (WARM_TRIALS_FILE, WARM_EPOCHS_FILE):
            try:
                tables.append(self.location.read_table(name))
            except RunDirError as exc:
                raise RunDirError(f"{exc}; {_fix_hint(name)}") from None
        return tables[0], tables[1]

    # ---- progress.json -------------------------------------------------------------------------
    def read_progress_reference(self, strict: bool = False) -> dict[str, Any] | None:
        """The hypervolume reference the progress lines fixed (metric → value), or None.

        With ``strict``, a damaged file raises RunDirError (a resume checks it first); without,
        it reads as None (the analysis then derives its own reference).
        """
        try:
            if not self.location.exists(PROGRESS_FILE):
                return None
            data = json.loads(self.location.read_text(PROGRESS_FILE))
            reference = data.get("hypervolume_reference")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            if strict:
                raise RunDirError(
                    f"{self.shown('progress')}: not readable ({exc}); delete it (it only holds the progress lines' reference)"
                ) from None
            return None
        return dict(reference) if isinstance(reference, Mapping) else None

    def write_progress_reference(self, reference: Mapping[str, float]) -> None:
        self.location.write_text(PROGRESS_FILE, json.dumps({"hypervolume_reference": dict(reference)}, indent=2) + "\n")

    # ---- analysis.json -----------------------------------------------------------------------
    def read_analysis(self) -> dict[str, Any]:
        """``analysis.json`` (``{"references": [...]}``; empty when absent); RunDirError when not JSON."""
        if not self.location.exists(ANALYSIS_FILE):
            return {"references": []}
        try:
            data = json.loads(self.location.read_bytes(ANALYSIS_FILE).decode())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RunDirError(f"{self.location.file(ANALYSIS_FILE)}: not valid JSON; delete it to derive the reference point again") from None
        data.setdefault("references", [])
        return data

    def write_analysis(self, data: Mapping[str, Any]) -> None:
        self.location.write_text(ANALYSIS_FILE, json.dumps(data, indent=2) + "\n")

    # ---- tensorboard/ --------------------------------------------------------------------------
    def tensorboard_dir(self, meta: SweepMeta) -> Path:
        """The folder of TensorBoard's event files: in the run dir, or (object-store run dirs) in
        the driver-local cache, since event files are written by appends."""
        return self.location.local_dir(meta.study_name) / TENSORBOARD_DIR

    # ---- the study -----------------------------------------------------------------------------
    def study_path(self, meta: SweepMeta) -> Path:
        """The driver-local study file: in the run dir, or in a local cache for object-store run dirs."""
        return self.location.local_dir(meta.study_name) / meta.study_file

    def shown_study(self, meta: SweepMeta) -> str:
        return f"{self.uri}/{meta.study_file}"

    def fetch_study(self, meta: SweepMeta) -> Path:
        """The local study file, copied from an object-store run dir when this machine has none."""
        path = self.study_path(meta)
        if not self.location.is_local and not path.exists() and self.location.exists(meta.study_file):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.location.read_bytes(meta.study_file))
        return path

    def upload_study(self, meta: SweepMeta) -> None:
        """Copy the local study to an object-store run dir (a no-op for local run dirs)."""
        path = self.study_path(meta)
        if not self.location.is_local and path.exists():
            self.location.write_bytes(meta.study_file, path.read_bytes())

    def check_study(self, meta: SweepMeta, path: Path | None = None) -> None:
        """The study must be there and readable once trials ran (RunDirError naming it)."""
        path = path or self.study_path(meta)
        if not path.exists() and not self.has_trials():
            return  # stopped before its first trial: the study is created when the sweep starts
        if not path.is_file() or path.stat().st_size == 0:
            raise RunDirError(f"{self.shown_study(meta)}: missing or empty although trials ran; restore it from a backup, or start a new sweep with --name")
        load_study(meta.study_name, path, self.shown_study(meta))

    # ---- trust ---------------------------------------------------------------------------------
    def check_owned(self) -> None:
        """Refuse a local run dir whose files belong to another user or are writable by others.

        A run dir is trusted input (resuming loads its checkpoints).
        """
        if not self.location.is_local:
            return
        root = self.uri
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


def study_storage(path: str | os.PathLike[str]) -> Any:
    """The Optuna storage of a study file: SQLite for ``*.db``, else an Optuna journal file."""
    import optuna

    path = Path(path)
    if path.suffix == ".db":
        return optuna.storages.RDBStorage(f"sqlite:///{path}", skip_compatibility_check=False)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def study_address(path: str | os.PathLike[str]) -> str:
    """What optuna-dashboard (and ``optuna.load_study``'s tools) take for a study file."""
    path = Path(path)
    return f"sqlite:///{path}" if path.suffix == ".db" else str(path)


def load_study(study_name: str, path: str | os.PathLike[str], shown_as: str, sampler: Any = None, storage: Any = None) -> Any:
    """A sweep's Optuna study from its file (RunDirError naming ``shown_as`` when it cannot be read).

    ``path``: a journal file or an SQLite file (``*.db``); an ``sqlite:///`` URL is taken too.
    ``storage``: the storage object to load it through (default: :func:`study_storage` of ``path``).
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
        study = optuna.load_study(study_name=study_name, storage=storage if storage is not None else study_storage(name), sampler=sampler)
        study.get_trials(deepcopy=False)
    except KeyError:
        raise RunDirError(f"{shown_as}: holds no study named {study_name!r}; {_fix_hint(study_file)}") from None
    except Exception as exc:  # noqa: BLE001 - sqlite/sqlalchemy and the journal's decoder raise many types for a damaged file
        raise RunDirError(f"{shown_as}: not a readable Optuna study ({_first_line(exc)}); {_fix_hint(study_file)}") from None
    return study
