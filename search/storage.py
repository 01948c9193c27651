"""Where a run dir lives: a local (or shared POSIX) path, or an object store URI.

Run dirs on object stores (``s3://bucket/prefix``, ``gs://…``) go through pyarrow
filesystems, as Ray Tune's own storage does, so every node and the analysis tools read the same
files. Credentials and endpoints come from the usual environment (``AWS_ACCESS_KEY_ID``,
``AWS_ENDPOINT_URL`` …). The Optuna study is an SQLite file, which object stores cannot host:
for such run dirs it lives in a local cache on the driver and a copy is uploaded to the run dir
(``study.db``) whenever the sweep stops.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

__all__ = ["RunLocation", "run_location", "is_uri", "local_cache_root"]


def is_uri(storage: str) -> bool:
    return "://" in storage and not storage.startswith("file://")


def local_cache_root() -> Path:
    """Driver-local state for remote run dirs (the Optuna study, shared artefacts)."""
    return Path(os.environ.get("BRAINSWEEP_CACHE", Path.home() / ".cache" / "brainsweep"))


@dataclass(frozen=True)
class RunLocation:
    """A run dir: ``storage`` (path or URI) joined with ``name``.

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
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """(pyarrow filesystem, path of the run dir inside it)."""
        if self.is_local:
            return pafs.LocalFileSystem(), self.uri
        fs, path = pafs.FileSystem.from_uri(self.uri)
        return fs, path

    def file(self, name: str) -> str:
        """Path of a file of the run dir inside :attr:`filesystem`."""
        return f"{self.filesystem[1]}/{name}"

    def exists(self, name: str) -> bool:
        fs, _ = self.filesystem
        return fs.get_file_info(self.file(name)).type == pafs.FileType.File

    def read_text(self, name: str) -> str:
        fs, _ = self.filesystem
        with fs.open_input_stream(self.file(name)) as stream:
            return stream.readall().decode()

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file atomically (temp name, then move)."""
        fs, root = self.filesystem
        fs.create_dir(root, recursive=True)
        tmp = f"{root}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, self.file(name))

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def local_dir(self, study_name: str) -> Path:
        """A local directory for this sweep: the run dir itself, or a driver-local cache."""
        if self.is_local:
            return Path(self.uri)
        return local_cache_root() / "sweeps" / study_name


def run_location(storage: str, name: str) -> RunLocation:
    """Normalise a storage path (absolute, ``~`` expanded) or keep a URI as given."""
    if storage.startswith("file://"):
        storage = storage[len("file://") :]
    if not is_uri(storage):
        storage = os.path.abspath(os.path.expanduser(storage))
    return RunLocation(storage=storage, name=name)
