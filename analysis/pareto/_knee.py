"""The knee of a Pareto front: the point with the best trade-off, and whether the front bends there."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from analysis.pareto._dominance import _front_min
from analysis.pareto._objectives import to_minimization

__all__ = ["knee_bends", "knee_point"]


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
