"""Where a run dir lives and how its bytes are read and written (local path or object store).

A run dir is ``STORAGE/NAME``: a local (or shared POSIX) path, ``file://…``, or an object store
URI (``s3://bucket/prefix``, ``gs://…``) reached through pyarrow filesystems, as Ray Tune's own
storage is, so every node and the analysis tools read the same files. Credentials and endpoints
come from the usual environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL`` …).

:class:`RunLocation` is the byte-level access (atomic writes, Parquet tables); which files a run
dir holds and what each contains is :mod:`search.rundir.records`'s business, and every other
module goes through those typed records.

Only pyarrow is needed here: reading a run dir loads neither torch, Ray nor Optuna.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from trainables.files import write_atomic

__all__ = [
    "CACHE_DIR",
    "trial_dirname",
    "RunDirError",
    "RunLocation",
    "run_location",
    "open_run_dir",
    "is_uri",
    "local_cache_root",
]

#: Artefacts the trials of one sweep share (e.g. a trained SNE teacher); local run dirs only.
CACHE_DIR = "cache"


def trial_dirname(trial_id: str) -> str:
    """The dir of one trial inside the run dir (its checkpoints, its error files)."""
    return f"trial_{trial_id}"


class RunDirError(RuntimeError):
    """A user-facing problem with a run dir (missing, unreachable, already used): one line."""


def is_uri(storage: str) -> bool:
    """Whether ``storage`` names an object store (``s3://…``); ``file://`` paths are local."""
    return "://" in storage and not storage.startswith("file://")


def local_cache_root() -> Path:
    """Driver-local state for remote run dirs (the Optuna study, shared artefacts)."""
    return Path(os.environ.get("BRAINSWEEP_CACHE", Path.home() / ".cache" / "brainsweep"))


@dataclass(frozen=True)
class RunLocation:
    """A run dir: ``storage`` (absolute path or URI) joined with ``name``.

    Attributes:
        storage: The parent, as given to Ray Tune (absolute path or URI).
        name: The sweep name (the run dir's last component).
    """

    storage: str
    name: str

    @property
    def is_local(self) -> bool:
        return not is_uri(self.storage)

    @property
    def uri(self) -> str:
        """The run dir as users and Ray see it."""
        return f"{self.storage.rstrip('/')}/{self.name}" if self.name else self.storage

    @property
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """(pyarrow filesystem, path of the run dir inside it)."""
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        try:
            fs, path = pafs.FileSystem.from_uri(self.uri)
        except (pa.ArrowInvalid, ValueError, OSError) as exc:
            raise RunDirError(f"{self.uri}: cannot open this run dir URI ({str(exc).splitlines()[0]})") from None
        return fs, path

    def file(self, name: str) -> str:
        """Path of a file of the run dir inside :attr:`filesystem`."""
        return posixpath.join(self.filesystem[1], name)

    def is_dir(self) -> bool:
        fs, root = self.filesystem
        return fs.get_file_info(root).type == pafs.FileType.Directory

    def exists(self, name: str) -> bool:
        fs, _ = self.filesystem
        return fs.get_file_info(self.file(name)).type == pafs.FileType.File

    def read_bytes(self, name: str) -> bytes:
        fs, _ = self.filesystem
        with fs.open_input_stream(self.file(name)) as stream:
            return stream.readall()

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file atomically (temp name, then move)."""
        fs, _ = self.filesystem
        write_atomic(self.file(name), lambda out: out.write(data), filesystem=fs)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_table(self, name: str, table: pa.Table) -> None:
        """Write a Parquet file atomically, so readers never see a half-written table."""
        fs, _ = self.filesystem
        write_atomic(self.file(name), lambda out: pq.write_table(table, out), filesystem=fs)

    def read_table(self, name: str, columns: list[str] | None = None) -> pa.Table | None:
        """A Parquet file of the run dir, or ``None`` when it does not exist (yet).

        Raises:
            RunDirError: the file exists but is not a readable Parquet table.
        """
        if not self.exists(name):
            return None
        fs, _ = self.filesystem
        try:
            return pq.read_table(self.file(name), columns=columns, filesystem=fs)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RunDirError(f"{self.uri}/{name}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None

    def local_dir(self, study_name: str) -> Path:
        """A local directory for this sweep: the run dir itself, or a driver-local cache."""
        if self.is_local:
            return Path(self.uri)
        return local_cache_root() / "sweeps" / study_name


def run_location(storage: str, name: str) -> RunLocation:
    """Normalise a storage path (absolute, ``~`` and ``file://`` resolved) or keep a URI as given."""
    storage = os.fspath(storage)
    if storage.startswith("file://"):
        storage = storage[len("file://") :]
    if not is_uri(storage):
        storage = os.path.abspath(os.path.expanduser(storage))
    return RunLocation(storage=storage, name=name)


def open_run_dir(run_dir: str | os.PathLike[str]) -> RunLocation:
    """The :class:`RunLocation` of an existing run dir given as one path or URI."""
    text = os.fspath(run_dir).rstrip("/")
    parent, _, name = text.rpartition("/")
    if not parent or parent.endswith(":/") or parent.endswith("://"):
        return run_location(text, "")  # a bucket root, or a bare relative name
    return run_location(parent, name)
