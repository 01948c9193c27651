"""Pareto fronts, non-dominated sorting, hypervolume and knee points.

Pure functions, arrays in and arrays out: no I/O, no pandas, no Ray, so they can be used anywhere
(the live progress display of a sweep included) and tested on small arrays in milliseconds.

Conventions shared by every function here:

* ``points`` is an ``(n, m)`` array-like of objective values in their original units, one row per
  trial and one column per objective; ``directions`` is a sequence of ``m`` strings, ``"max"`` or
  ``"min"``. Internally everything works on minimisation: :func:`to_minimization` negates the
  ``"max"`` columns.
* Dominance (minimisation): ``a`` dominates ``b`` iff ``a <= b`` in every objective and ``a < b``
  in at least one. Identical points do not dominate each other, so ties are kept: every copy of a
  non-dominated point is on the front.
* A row with any non-finite value (NaN, or +/-inf) is *missing*: a failed or diverged trial, or a
  metric that was never reported. It is never on the front, never dominates anything, has rank
  ``-1`` and adds no hypervolume.
* A reference point is given in the original units, like the points.

Fronts and ranks of two or more objectives, and hypervolumes of three or more, come from moocore
(dimension sweeps: an O(n log n) front up to three objectives), behind thin wrappers that keep
the conventions above where moocore's own differ (copies of a point, non-finite rows); one
objective, and the 2-D hypervolume, are done here. A front of 10,000 trials takes milliseconds,
and no function builds an ``n x n`` matrix.

The compute/render split follows Optuna: :func:`compute_front` returns a plain
:class:`ParetoFront`, and renderers (``analysis.plot``) only draw it. This package imports nothing
of the project; its command line (``python -m analysis pareto``, also ``python -m analysis.pareto``)
is ``analysis/pareto/__main__.py``, which reads run dirs and is never imported from here.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "DIRECTIONS",
    "ParetoFront",
    "compute_front",
    "front_summary",
    "hypervolume",
    "hypervolume_progress",
    "knee_bends",
    "knee_point",
    "nondominated_ranks",
    "pareto_front",
    "pareto_mask",
    "reference_point",
    "to_minimization",
]

#: The accepted direction strings, as in Ray Tune's ``mode``.
DIRECTIONS: tuple[str, ...] = ("max", "min")

# --------------------------------------------------------------------------------------------
# Validation and conversion
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Dominance (all private helpers below take minimisation arrays)
# --------------------------------------------------------------------------------------------


def _valid_rows(z: np.ndarray) -> np.ndarray:
    return np.isfinite(z).all(axis=1)


# moocore does the heavy lifting (O(n log n) dimension sweeps for m <= 3, Kung et al. beyond), but
# its conventions are not ours, so every call below goes through these wrappers:
#
# * ``is_nondominated`` keeps only the first of a set of identical non-dominated points unless
#   ``keep_weakly=True``; we keep every copy.
# * It has no notion of a missing row: NaN compares false, so a NaN row can be reported
#   non-dominated *and* make a finite row look dominated, and -inf dominates everything. Only
#   finite rows are ever passed in.
# * ``pareto_rank`` ranks every row it is given (int32); non-finite rows get -1 here instead.
#   It gives identical points the same rank, as the fast non-dominated sort does.
# * One objective is a total order: done in numpy rather than relying on moocore's m = 1 path.
#
# Costs for n finite rows: the mask is O(n log n) up to three objectives; ranks are O(n log n) in
# 2-D and peel one front at a time from three objectives on (about 0.4 s for the worst case, a
# chain of 10,000 layers in 3-D); memory stays O(n m) throughout.


def _nondominated_min(z: np.ndarray) -> np.ndarray:
    """Non-dominated mask of finite minimisation rows; every copy of a tied point is kept."""
    if len(z) == 0:
        return np.zeros(0, dtype=bool)
    if z.shape[1] == 1:
        return z[:, 0] == z[:, 0].min()
    return np.asarray(moocore.is_nondominated(np.ascontiguousarray(z), keep_weakly=True), dtype=bool)


def _layers_min(z: np.ndarray) -> np.ndarray:
    """Non-dominated rank (0 = front) of finite minimisation rows; identical rows share a rank."""
    if len(z) == 0:
        return np.zeros(0, dtype=np.int64)
    if z.shape[1] == 1:
        # Distinct values in increasing order are the layers; -0.0 == 0.0, so they share one.
        return np.unique(z[:, 0], return_inverse=True)[1].astype(np.int64).reshape(-1)
    return np.asarray(moocore.pareto_rank(np.ascontiguousarray(z)), dtype=np.int64)


def _mask_min(z: np.ndarray) -> np.ndarray:
    valid = _valid_rows(z)
    mask = np.zeros(len(z), dtype=bool)
    mask[valid] = _nondominated_min(z[valid])
    return mask


def _order_front(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    index = np.flatnonzero(mask)
    # Best first objective first; remaining objectives, then trial index, break ties so the
    # order is deterministic.
    keys = [index] + [z[index, j] for j in range(z.shape[1] - 1, -1, -1)]
    return index[np.lexsort(keys)]


def _front_min(z: np.ndarray) -> np.ndarray:
    return _order_front(z, _mask_min(z))


def _ranks_min(z: np.ndarray) -> np.ndarray:
    """Ranks of minimisation rows, -1 for non-finite ones; O(n) memory (no n x n matrix)."""
    valid = _valid_rows(z)
    ranks = np.full(len(z), -1, dtype=np.int64)
    ranks[valid] = _layers_min(z[valid])
    return ranks


def pareto_mask(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated points.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.

    Returns:
        A boolean array of length ``n``, True for points on the Pareto front. Ties are kept:
        identical points are all on the front unless another point dominates them. Rows with a
        non-finite value are never on the front and never dominate another row.
    """
    return _mask_min(to_minimization(points, directions))


def pareto_front(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Indices of the Pareto-optimal points, best first objective first.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.

    Returns:
        Integer indices into ``points`` of the non-dominated rows (ties kept), sorted by the first
        objective from best to worst; equal first objectives are ordered by the next objectives,
        then by index.
    """
    return _front_min(to_minimization(points, directions))


def nondominated_ranks(points: ArrayLike, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: the Pareto layer of every point.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.

    Returns:
        Integer ranks of length ``n``: ``0`` for the front, ``1`` for the front of the remaining
        points, and so on. Rows with a non-finite value get ``-1``.
    """
    return _ranks_min(to_minimization(points, directions))


# --------------------------------------------------------------------------------------------
# Hypervolume
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Knee point
# --------------------------------------------------------------------------------------------


def _knee_min(z: np.ndarray, front: np.ndarray) -> int | None:
    """Knee among the (ordered) front indices ``front`` of minimisation rows ``z``."""
    return _knee_and_bend(z, front)[0]


def _knee_and_bend(z: np.ndarray, front: np.ndarray) -> tuple[int | None, bool]:
    """The knee, and whether the front bends towards the ideal point there (else: closest to the ideal)."""
    if len(front) == 0:
        return None, False
    f = z[front]
    low = f.min(axis=0)
    span = f.max(axis=0) - low
    f = (f - low) / np.where(span > 0, span, 1.0)  # [0, 1]; a constant objective becomes 0
    m = f.shape[1]
    closest = int(front[np.argmin(np.linalg.norm(f, axis=1))])
    if len(front) <= 2 or m == 1:
        # No trade-off curve to bend: take the point closest to the (normalised) ideal, the origin.
        return closest, False
    # Hyperplane w . x = 1 through the extreme points (the best point in each objective, ties
    # broken by the sum of the others). In 2-D this is the line between the two ends of the front.
    extremes = np.array([f[np.lexsort((f.sum(axis=1), f[:, j]))[0]] for j in range(m)])
    try:
        w = np.linalg.solve(extremes, np.ones(m))
    except np.linalg.LinAlgError:
        w = None
    if w is None or not np.isfinite(w).all() or (w <= 0).any():
        # Degenerate extremes (shared or collinear, possible from three objectives on): use the
        # plane through the unit points of the normalised box instead.
        w = np.ones(m)
    # Signed distance towards the ideal point: the knee bulges furthest towards it. On a concave
    # front every interior point lies beyond the plane: no knee, so the point closest to the ideal.
    distance = (1.0 - f @ w) / np.linalg.norm(w)
    if distance.max() <= 1e-12:
        return closest, False
    return int(front[np.argmax(distance)]), True


def knee_bends(points: ArrayLike, directions: Sequence[str]) -> bool:
    """Whether :func:`knee_point` found a real knee (the front bends towards the ideal point there).

    False for a front of one or two points and for a concave front: :func:`knee_point` then
    returns the front point closest to the normalised ideal point instead.
    """
    z = to_minimization(points, directions)
    return _knee_and_bend(z, _front_min(z))[1]


def knee_point(points: ArrayLike, directions: Sequence[str]) -> int | None:
    """Index of the knee of the Pareto front, the point with the best trade-off.

    The front is normalised to ``[0, 1]`` per objective (minimisation), and the knee is the front
    point furthest from the line (2-D) or hyperplane (3+ objectives) through the extreme points,
    on the side of the ideal point (Das, 1999; Branke et al., 2004). A front of one or two points
    has no curve to bend, and a concave front bends away from the ideal: then the point closest
    to the normalised ideal point is returned (:func:`knee_bends` says which). Ties
    go to the earlier point in :func:`pareto_front` order.

    Args:
        points: ``(n, m)`` objective values in original units.
        directions: ``"max"``/``"min"`` per objective.

    Returns:
        An index into ``points``, or ``None`` when no row is finite.
    """
    z = to_minimization(points, directions)
    return _knee_min(z, _front_min(z))


# --------------------------------------------------------------------------------------------
# Compute side of the compute/render split
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ParetoFront:
    """Everything a renderer or a selector needs about one Pareto analysis; plain data.

    The arrays are read-only. Equality is identity (``eq=False``): element-wise array comparison
    has no single truth value.

    Attributes:
        objectives: Objective (metric) names, one per column of ``points``.
        directions: ``"max"``/``"min"`` per objective.
        points: ``(n, m)`` objective values of all trials, original units.
        front: Indices of the non-dominated points, best first objective first (ties kept).
        ranks: Non-dominated rank per point (0 = front, -1 = non-finite row).
        reference: Hypervolume reference, original units. Record it with the results. All NaN
            when it had to be derived and there were no finite points.
        hypervolume: Hypervolume of ``points`` with respect to ``reference``.
        knee: Index of the knee point, or ``None`` when there are no finite points.
    """

    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    points: np.ndarray
    front: np.ndarray
    ranks: np.ndarray
    reference: np.ndarray
    hypervolume: float
    knee: int | None


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def compute_front(
    points: ArrayLike,
    objectives: Sequence[str],
    directions: Sequence[str],
    reference: ArrayLike | None = None,
) -> ParetoFront:
    """Compute the front, ranks, hypervolume and knee of a set of trials in one pass.

    Args:
        points: ``(n, m)`` objective values in original units.
        objectives: ``m`` objective names (e.g. ``("val_accuracy", "energy_uj")``).
        directions: ``"max"``/``"min"`` per objective.
        reference: Hypervolume reference in original units. ``None`` derives one with
            :func:`reference_point`; record the returned ``reference`` and pass it explicitly
            next time, so that hypervolumes stay comparable as the study grows.

    Returns:
        A :class:`ParetoFront`.

    Raises:
        ValueError: On bad ``points``/``directions``/``reference``, or if ``objectives`` does not
            have one name per objective.
    """
    directions = _validate_directions(directions)
    objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
    if len(objectives) != len(directions):
        raise ValueError(
            f"objectives has {len(objectives)} names but directions has {len(directions)} "
            f"entries; give one direction per objective"
        )
    z = to_minimization(points, directions)
    valid = _valid_rows(z)
    if reference is not None:
        ref_min = _reference_to_minimization(reference, directions)
    elif valid.any():
        ref_min = _reference_point_min(z, margin=0.1)
    else:
        ref_min = np.full(len(directions), np.nan)  # nothing to derive it from; recorded as NaN
    ranks = _ranks_min(z)
    front = _order_front(z, ranks == 0)  # the front is rank 0: no second dominance pass
    volume = _hypervolume_min(z, ref_min) if valid.any() else 0.0
    return ParetoFront(
        objectives=objectives,
        directions=directions,
        points=_read_only(_flip_max_columns(z, directions)),
        front=_read_only(front),
        ranks=_read_only(ranks),
        reference=_read_only(_flip_max_columns(ref_min, directions)),
        hypervolume=volume,
        knee=_knee_min(z, front),
    )


def front_summary(points: ArrayLike, directions: Sequence[str], reference: ArrayLike) -> tuple[int, float]:
    """Front size and hypervolume in one call: what a live progress line shows.

    Args:
        points: ``(n, m)`` objective values in original units (e.g. the full-budget, feasible
            trials finished so far).
        directions: ``"max"``/``"min"`` per objective.
        reference: ``m`` finite values in original units. Keep it fixed for the whole sweep,
            or the numbers of successive lines are not comparable.

    Returns:
        ``(front_size, hypervolume)``: the number of non-dominated finite points (ties kept)
        and their hypervolume with respect to ``reference``.
    """
    z = to_minimization(points, directions)
    ref = _reference_to_minimization(reference, tuple(directions))
    return int(_mask_min(z).sum()), _hypervolume_min(z, ref)

