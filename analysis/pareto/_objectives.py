"""Objective values in original units and their all-minimisation form, and which rows are missing.

:func:`to_minimization` negates the ``"max"`` columns so that smaller is better everywhere; every
other module of :mod:`analysis.pareto` works on that form. A row with a non-finite value is
missing (:func:`_valid_rows` is False for it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["DIRECTIONS", "to_minimization"]

#: The accepted direction strings, as in Ray Tune's ``mode``.
DIRECTIONS: tuple[str, ...] = ("max", "min")


def _validate_directions(directions: Sequence[str]) -> tuple[str, ...]:
    if isinstance(directions, str):
        raise ValueError(
            f"directions must be a sequence of 'max'/'min' strings, one per objective, "
            f"not the single string {directions!r}"
        )
    directions = tuple(directions)
    if not directions:
        raise ValueError("directions must name at least one objective ('max' or 'min')")
    for i, direction in enumerate(directions):
        if direction not in DIRECTIONS:
            raise ValueError(f"directions[{i}] must be 'max' or 'min', got {direction!r}")
    return directions


def to_minimization(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Convert objective values to an all-minimisation float array.

    Args:
        points: ``(n, m)`` objective values in original units. An empty input (``[]``) is read
            as zero points.
        directions: ``m`` strings, ``"max"`` or ``"min"``, one per column of ``points``.

    Returns:
        A new ``(n, m)`` float64 array in which the ``"max"`` columns are negated, so that smaller
        is better in every column. Non-finite values are passed through unchanged (negated).

    Raises:
        ValueError: If ``points`` is not two-dimensional, if ``directions`` is a bare string,
            empty, or does not have one entry per column, or if an entry is not ``"max"`` or
            ``"min"``.
    """
    directions = _validate_directions(directions)
    array = np.array(points, dtype=np.float64)  # always a copy: callers may write to it
    if array.size == 0 and array.ndim <= 1:
        array = array.reshape(0, len(directions))
    if array.ndim != 2:
        raise ValueError(
            f"points must be a 2-D array of shape (n_points, n_objectives), got shape {array.shape}"
        )
    if array.shape[1] != len(directions):
        raise ValueError(
            f"directions has {len(directions)} entries but points have {array.shape[1]} "
            f"objective columns; give one 'max'/'min' per objective"
        )
    maximise = np.array([d == "max" for d in directions])
    array[:, maximise] *= -1.0
    return array


def _reference_to_minimization(reference: ArrayLike, directions: tuple[str, ...]) -> np.ndarray:
    ref = np.array(reference, dtype=np.float64)
    if ref.shape != (len(directions),):
        raise ValueError(
            f"reference must have one value per objective, shape ({len(directions)},), "
            f"got shape {ref.shape}"
        )
    if not np.isfinite(ref).all():
        raise ValueError(f"reference must be finite in every objective, got {ref.tolist()}")
    return _flip_max_columns(ref, directions)


def _flip_max_columns(values: np.ndarray, directions: tuple[str, ...]) -> np.ndarray:
    """Negate the ``"max"`` columns (a copy): original units <-> minimisation, both ways."""
    out = np.array(values, dtype=np.float64)
    maximise = np.array([d == "max" for d in directions])
    out[..., maximise] *= -1.0
    return out

def _valid_rows(z: np.ndarray) -> np.ndarray:
    return np.isfinite(z).all(axis=1)
