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

The functions live in private modules, one job each, and are imported from here (``__all__``):
``_objectives`` (directions and the minimisation form), ``_dominance`` (fronts and ranks),
``_hypervolume`` (hypervolumes, the progress curve, the default reference point) and ``_knee``.
This module holds the compute side of the compute/render split, which follows Optuna:
:func:`compute_front` returns a plain :class:`ParetoFront`, and renderers (``analysis.plot``)
only draw it. This package imports nothing else of the project; its command line (``python -m
analysis pareto``, also ``python -m analysis.pareto``) is ``analysis/pareto/__main__.py``, which
reads run dirs and is never imported from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analysis.pareto._dominance import _mask_min, _order_front, _ranks_min, nondominated_ranks, pareto_front, pareto_mask
from analysis.pareto._hypervolume import _hypervolume_min, _reference_point_min, hypervolume, hypervolume_progress, reference_point
from analysis.pareto._knee import _knee_min, knee_bends, knee_point
from analysis.pareto._objectives import (
    DIRECTIONS,
    _flip_max_columns,
    _reference_to_minimization,
    _valid_rows,
    _validate_directions,
    to_minimization,
)

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
