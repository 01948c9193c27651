"""What every dataset source returns and raises: :class:`RawData` and :class:`DataError`.

A source (:mod:`trainables.datasets.digits`, :mod:`~trainables.datasets.torchvision_sets`,
:mod:`~trainables.datasets.npz`) returns its training pool and official test set as
:class:`RawData`, in ``N x C x H x W`` layout, before splitting and scaling. A problem a user can
cause (missing files, no network, a malformed file) raises :class:`DataError` with one line;
:func:`short_reason` shortens a lower-level error for that line.
"""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass

from torch import Tensor

__all__ = ["DataError", "RawData", "short_reason"]


class DataError(Exception):
    """A user-facing data problem.

    ``str(exc)`` is one clear line (the path, what is missing, how to fix it); the CLI prints it
    without a traceback and exits non-zero.
    """

    def __init__(self, message: str) -> None:
        # One line, always: the message may embed the text of a lower-level error.
        super().__init__(" ".join(str(message).split("\n")))


@dataclass
class RawData:
    """A dataset's arrays as its source delivers them, before splitting and scaling."""

    x_train: Tensor  # N x C x H x W; uint8 (scaled by 1/255 later) or float32
    y_train: Tensor  # int64
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    class_names: tuple[str, ...] | None = None  # None: the class indices are the names


def short_reason(exc: BaseException) -> str:
    """``Type: text`` of a lower-level error, on one line and at most 240 characters of text."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        text = str(exc.reason)
    else:
        text = str(exc)
    text = " ".join(text.split()) or "no details"
    if len(text) > 240:  # long enough for torchvision's mirror-by-mirror download errors
        text = text[:237] + "..."
    return f"{type(exc).__name__}: {text}"
