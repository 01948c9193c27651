"""Writing files so that readers never see half of one: a temp file beside it, then a rename.

The one implementation of "write to a temp file, then rename", for local paths and pyarrow
filesystems (object stores: the final ``move`` is a single PUT, which is atomic there too).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], filesystem: Any = None) -> None:
    """Call ``write(handle)`` on a temp file next to ``path``, then move it onto ``path``.

    Args:
        path: The destination (a local path, or a path on ``filesystem``).
        write: Writes the content into a binary handle.
        filesystem: A ``pyarrow.fs.FileSystem``; ``None`` for the local filesystem.
    """
    text = os.fspath(path)
    parent, _, name = text.rpartition("/")
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp" if parent else f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    if filesystem is None:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as handle:
                write(handle)
            os.replace(tmp, text)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return
    if parent:
        filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(tmp) as handle:
        write(handle)
    filesystem.move(tmp, text)
