"""Dominance: the Pareto front (a mask, or indices in order) and non-dominated ranks.

Fronts and ranks of two or more objectives come from moocore, behind the wrappers below that
keep :mod:`analysis.pareto`'s conventions (every copy of a tied point kept, non-finite rows never
on the front); one objective is done in numpy. The private helpers take minimisation arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np
from numpy.typing import ArrayLike

from analysis.pareto._objectives import _valid_rows, to_minimization

__all__ = ["nondominated_ranks", "pareto_front", "pareto_mask"]



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
