"""Hypervolume: of a set of points, of every prefix in trial order (the progress curve), and a default reference point.

Two objectives use an O(n log n) sweep written here; three or more use
:func:`moocore.hypervolume`. Points and references are in original units; the private helpers
take minimisation arrays.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import moocore
import numpy as np
from numpy.typing import ArrayLike

from analysis.pareto._objectives import (
    _flip_max_columns,
    _reference_to_minimization,
    _valid_rows,
    _validate_directions,
    to_minimization,
)

__all__ = ["hypervolume", "hypervolume_progress", "reference_point"]


def _hypervolume_min(z: np.ndarray, ref: np.ndarray) -> float:
    """Exact hypervolume of minimisation rows ``z`` with respect to the finite point ``ref``."""
    z = z[_valid_rows(z)]
    z = z[(z < ref).all(axis=1)]  # only points strictly better than ref in every objective count
    if len(z) == 0:
        return 0.0
    m = z.shape[1]
    if m == 1:
        return float(ref[0] - z[:, 0].min())
    if m == 2:
        # Sweep along the first objective: point i adds the strip [x_i, ref_x] x [y_i, best y so
        # far), which is zero for dominated points and for duplicates.
        order = np.lexsort((z[:, 1], z[:, 0]))
        x, y = z[order, 0], z[order, 1]
        best_before = np.minimum.accumulate(np.concatenate(([ref[1]], y[:-1])))
        return float(np.sum((ref[0] - x) * np.maximum(best_before - y, 0.0)))
    return float(moocore.hypervolume(np.ascontiguousarray(z), ref=ref))


def hypervolume(points: ArrayLike, directions: Sequence[str], reference: ArrayLike) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    Two objectives use an O(n log n) sweep; three or more use :func:`moocore.hypervolume`.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.
        reference: ``m`` finite values in the original units (e.g. ``val_accuracy`` 0.0,
            ``energy_uj`` 5.0). Fix it once per study and record it with the results: a
            hypervolume is only comparable to another computed with the same reference.

    Returns:
        The hypervolume (product of original units). Points that are not strictly better than
        the reference in every objective, and rows with a non-finite value, contribute nothing;
        no such points gives ``0.0``.

    Raises:
        ValueError: On bad ``points``/``directions`` (see :func:`to_minimization`) or a
            ``reference`` of the wrong length or with a non-finite value.
    """
    z = to_minimization(points, directions)
    ref = _reference_to_minimization(reference, tuple(directions))
    return _hypervolume_min(z, ref)


def hypervolume_progress(
    points: ArrayLike, directions: Sequence[str], reference: ArrayLike
) -> np.ndarray:
    """Hypervolume of the first ``i`` points for ``i = 1..n``: the search progress curve.

    Rows are taken in the given order (trial order) and the current front is kept incrementally.
    One objective is a running minimum; two objectives update a sorted staircase and add each new
    point's uncovered area exactly (O(n log n) overall); three or more add, whenever a point
    enlarges the front, the volume of its box that the front did not cover yet (one
    :func:`moocore.hypervolume` of the few front points that bound it). A point is checked
    against the current front only, never against all the rows seen so far.

    Args:
        points: ``(n, m)`` objective values in original units, in trial order.
        directions: ``"max"``/``"min"`` per objective.
        reference: ``m`` finite values in original units, as for :func:`hypervolume`.

    Returns:
        A float array of length ``n``; element ``i - 1`` equals
        ``hypervolume(points[:i], directions, reference)`` up to rounding: from two objectives
        on the curve is a running sum of increments. It is non-decreasing.
    """
    z = to_minimization(points, directions)
    ref = _reference_to_minimization(reference, tuple(directions))
    # Only finite rows strictly better than the reference can ever add volume; screen them in one
    # vectorised pass so the loops below visit the candidates only.
    candidates = _valid_rows(z) & (z < ref).all(axis=1)
    if z.shape[1] == 1:
        best = np.minimum.accumulate(np.where(candidates, z[:, 0], ref[0]))
        return ref[0] - best
    if z.shape[1] == 2:
        return _progress_2d(z, ref, candidates)
    return _progress_nd(z, ref, candidates)


def _progress_2d(z: np.ndarray, ref: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Prefix hypervolumes in 2-D: a bisection per point, amortised O(1) arithmetic.

    The front is a staircase kept sorted by the first objective (strictly increasing) and so by
    the second (strictly decreasing). A new point that is not weakly dominated adds the part of
    its box ``[p, ref]`` not covered yet, a sum of rectangles over the points it removes; every
    term is non-negative, so the curve is non-decreasing without any rounding wobble.
    """
    progress = np.zeros(len(z), dtype=np.float64)
    xs: list[float] = []
    ys: list[float] = []
    ref_x, ref_y = float(ref[0]), float(ref[1])
    current = 0.0
    rows = z.tolist()  # Python floats: far cheaper than numpy scalars in a per-point loop
    for i in np.flatnonzero(candidates).tolist():
        px, py = rows[i]
        below = bisect_right(xs, px)  # xs[:below] <= px; the last of them has the lowest y
        if below and ys[below - 1] <= py:
            progress[i] = current  # weakly dominated (a copy included): adds nothing
            continue
        start = bisect_left(xs, px)  # first front point with x >= px
        cap = ys[start - 1] if start else ref_y  # points left of px cover y >= cap already
        k, left, area = start, px, 0.0
        while k < len(xs) and ys[k] >= py:  # these are dominated by p: they leave the front
            area += (xs[k] - left) * (cap - py)
            left, cap = xs[k], ys[k]
            k += 1
        area += ((xs[k] if k < len(xs) else ref_x) - left) * (cap - py)
        xs[start:k] = [px]
        ys[start:k] = [py]
        current += area
        progress[i] = current
    # Rows that were never candidates carry the running value forward.
    return np.maximum.accumulate(progress) if len(progress) else progress


def _progress_nd(z: np.ndarray, ref: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Prefix hypervolumes for three or more objectives, one exact increment per front change.

    A point ``p`` that is not weakly dominated by the current front ``F`` adds
    ``vol([p, ref]) - hv({max(q, p) : q in F})``: its box minus the part the front already
    covers. The clipped points are mostly dominated by one another (only ``p``'s neighbours on
    the front bound its new region), so after one O(f log f) screening the hypervolume is taken
    of a handful of points instead of the whole front. That matters most from four objectives
    on, where :func:`moocore.hypervolume` is O(f^2). The front itself lives in a preallocated
    buffer (no ``vstack`` per point), and a new point is checked against it only, never against
    all the rows seen so far.
    """
    n, m = z.shape
    progress = np.zeros(n, dtype=np.float64)
    # Column-major (m, capacity): the per-point tests then run on contiguous columns instead of
    # reducing over a short axis of length m, several times faster in numpy.
    columns = np.empty((m, min(max(n, 1), 64)), dtype=np.float64)
    size = 0
    current = 0.0
    rows = z.tolist()
    ref_values = ref.tolist()
    for i in np.flatnonzero(candidates).tolist():
        point = rows[i]
        kept = columns[:, :size]
        if size and _all_columns(kept, point, np.less_equal).any():  # weakly dominated
            progress[i] = current
            continue
        box = math.prod(r - v for r, v in zip(ref_values, point))
        covered = 0.0
        if size:
            clipped = np.maximum(kept, np.array(point)[:, None]).T.copy()  # C order for moocore
            clipped = clipped[moocore.is_nondominated(clipped)]  # copies cover nothing extra
            covered = float(moocore.hypervolume(clipped, ref=ref))
        # ``covered`` can exceed ``box`` by a rounding error only; never let the curve go down.
        current += max(box - covered, 0.0)
        survivors = kept[:, ~_all_columns(kept, point, np.greater_equal)]
        size = survivors.shape[1]
        if size == columns.shape[1]:
            columns = np.concatenate([columns, np.empty_like(columns)], axis=1)  # amortised doubling
        columns[:, :size] = survivors
        columns[:, size] = point
        size += 1
        progress[i] = current
    return np.maximum.accumulate(progress) if n else progress


def _all_columns(columns: np.ndarray, point: Sequence[float], compare: np.ufunc) -> np.ndarray:
    """``compare(columns[j], point[j])`` for every objective ``j``, and-ed: one flag per point."""
    out = compare(columns[0], point[0])
    for j in range(1, len(point)):
        out &= compare(columns[j], point[j])
    return out


def reference_point(
    points: ArrayLike, directions: Sequence[str], margin: float = 0.1
) -> np.ndarray:
    """A default hypervolume reference: the worst finite value per objective, pushed outwards.

    Per objective, the reference is the worst value among the finite rows, moved in the worsening
    direction by ``margin`` times the objective's range across those rows; when the range is zero,
    by ``margin`` times the absolute worst value, or by ``margin`` when that is zero as well. With
    ``margin > 0`` every finite point is strictly better than the reference and contributes volume.

    The reference depends on the points it is derived from, so hypervolumes computed with
    references derived from different point sets are not comparable. Derive it once (e.g. from
    the first complete analysis of a study, or fix it in the spec), record it with the results,
    and pass it explicitly afterwards.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.
        margin: Non-negative fraction of the range to add beyond the worst value.

    Returns:
        A float array of length ``m`` in original units.

    Raises:
        ValueError: If ``margin`` is negative or not finite, or if no row is finite.
    """
    directions = _validate_directions(directions)
    if not np.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    z = to_minimization(points, directions)
    if not _valid_rows(z).any():
        raise ValueError(
            "cannot derive a reference point: no row has finite values in every objective"
        )
    return _flip_max_columns(_reference_point_min(z, margin), directions)


def _reference_point_min(z: np.ndarray, margin: float) -> np.ndarray:
    z = z[_valid_rows(z)]
    worst = z.max(axis=0)
    scale = worst - z.min(axis=0)
    scale = np.where(scale > 0, scale, np.abs(worst))
    scale = np.where(scale > 0, scale, 1.0)
    return worst + margin * scale
