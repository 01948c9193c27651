"""A sweep's run dir: where it lives, which files it holds, and one typed owner for each.

- :mod:`search.rundir.location`: where a run dir is (local path or object store URI) and how
  bytes, text and Parquet tables are read and written there, atomically.
- :mod:`search.rundir.records`: :class:`RunDir`, the one reader and writer of every sweep-level
  file (``sweep.json`` as :class:`SweepMeta`, ``spec.yaml``, the Optuna study, the two Parquet
  tables, ``progress.json``, ``analysis.json``).
- :mod:`search.rundir.tables`: the rows of ``trials.parquet`` and ``epochs.parquet``, one
  builder each.

Every other module of the search and the analysis goes through these; none names the files.
"""

from search.rundir.location import CACHE_DIR, RunDirError, RunLocation, is_uri, local_cache_root, open_run_dir, run_location, trial_dirname
from search.rundir.records import RUN_DIR_CONTENTS, TENSORBOARD_DIR, RunDir, SweepMeta, load_study, study_address, study_storage
from search.rundir.tables import SealedRows, epoch_columns, epoch_row, missing_value, rows_table, trial_columns, trial_row

__all__ = [
    "RUN_DIR_CONTENTS",
    "CACHE_DIR",
    "RunDir",
    "RunDirError",
    "RunLocation",
    "SealedRows",
    "SweepMeta",
    "TENSORBOARD_DIR",
    "epoch_columns",
    "epoch_row",
    "is_uri",
    "load_study",
    "local_cache_root",
    "missing_value",
    "open_run_dir",
    "rows_table",
    "run_location",
    "study_address",
    "study_storage",
    "trial_columns",
    "trial_dirname",
    "trial_row",
]
