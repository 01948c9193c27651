"""Property tests for ``analysis.pareto`` against brute-force references.

The oracles here work in original units with per-objective directions, written as plain Python
loops, so they share no code with the vectorised implementation under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from analysis.pareto import (
    ParetoFront,
    compute_front,
    front_summary,
    hypervolume,
    hypervolume_progress,
    knee_point,
    nondominated_ranks,
    pareto_front,
    pareto_mask,
    reference_point,
    to_minimization,
)

# ---------------------------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------------------------


def is_valid(row) -> bool:
    return all(math.isfinite(v) for v in row)


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def no_worse(a: float, b: float, direction: str) -> bool:
    return a >= b if direction == "max" else a <= b


def dominates(a, b, directions) -> bool:
    """Brute-force dominance in original units; rows with non-finite values never take part."""
    if not (is_valid(a) and is_valid(b)):
        return False
    return all(no_worse(x, y, d) for x, y, d in zip(a, b, directions)) and any(
        better(x, y, d) for x, y, d in zip(a, b, directions)
    )


def brute_front(points, directions) -> set[int]:
    return {
        j
        for j, b in enumerate(points)
        if is_valid(b) and not any(dominates(a, b, directions) for a in points)
    }


def minimised(points, directions) -> np.ndarray:
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return np.asarray(points, dtype=float).reshape(-1, len(directions)) * sign


def grid_hypervolume(points, directions, reference) -> float:
    """Exact hypervolume as a union of boxes, summed over the grid of distinct coordinates."""
    z = minimised(points, directions)
    ref = minimised([reference], directions)[0]
    z = z[np.isfinite(z).all(axis=1) & (z < ref).all(axis=1)]
    if len(z) == 0:
        return 0.0
    axes = [np.unique(np.append(z[:, j], ref[j])) for j in range(z.shape[1])]
    lowers = np.array(list(itertools.product(*[a[:-1] for a in axes])))
    widths = np.array(list(itertools.product(*[np.diff(a) for a in axes])))
    covered = np.zeros(len(lowers), dtype=bool)
    for p in z:  # a cell is inside the union iff some point is <= its lower corner
        covered |= (p <= lowers).all(axis=1)
    return float(widths[covered].prod(axis=1).sum())


def monte_carlo_hypervolume(points, directions, reference, samples=200_000, seed=0):
    """(estimate, standard error, box volume) by uniform sampling of the box [ideal, reference]."""
    z = minimised(points, directions)
    ref = minimised([reference], directions)[0]
    z = z[np.isfinite(z).all(axis=1) & (z < ref).all(axis=1)]
    if len(z) == 0:
        return 0.0, 0.0, 0.0
    low = z.min(axis=0)
    volume = float(np.prod(ref - low))
    x = np.random.default_rng(seed).uniform(low, ref, size=(samples, z.shape[1]))
    covered = np.zeros(samples, dtype=bool)
    for p in z:
        covered |= (p <= x).all(axis=1)
    fraction = covered.mean()
    return volume * fraction, volume * math.sqrt(fraction * (1 - fraction) / samples), volume


def worsened(point, directions, deltas) -> list[float]:
    return [
        v - d if direction == "max" else v + d for v, direction, d in zip(point, directions, deltas)
    ]


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------

TIE_VALUES = st.sampled_from([0.0, 1.0, 2.0, 3.0])  # a small set, so ties and duplicates are common
FLOAT_VALUES = st.floats(-10.0, 10.0, allow_nan=False, width=32)
BAD_VALUES = st.sampled_from([math.nan, math.nan, math.inf, -math.inf])


@st.composite
def point_sets(draw, dims=(2, 3, 4), max_n=40, elements=TIE_VALUES, missing=True, min_n=0):
    """(points, directions) with mixed directions, optional ties and some non-finite rows."""
    m = draw(st.sampled_from(dims))
    n = draw(st.integers(min_n, max_n))
    directions = draw(st.lists(st.sampled_from(["max", "min"]), min_size=m, max_size=m))
    points = draw(hnp.arrays(np.float64, (n, m), elements=elements))
    if missing and n:
        for i in draw(st.lists(st.integers(0, n - 1), max_size=max(1, n // 5))):
            points[i, draw(st.integers(0, m - 1))] = draw(BAD_VALUES)
    return points, directions


@st.composite
def point_sets_with_reference(draw, **kwargs):
    points, directions = draw(point_sets(**kwargs))
    m = len(directions)
    if draw(st.booleans()) and np.isfinite(points).all(axis=1).any():
        margin = draw(st.sampled_from([0.0, 0.1, 1.0]))
        reference = reference_point(points, directions, margin=margin)
    else:  # an arbitrary reference that may cut through, or lie on, the points
        reference = np.array(draw(st.lists(TIE_VALUES, min_size=m, max_size=m)))
    return points, directions, reference


# ---------------------------------------------------------------------------------------------
# 1. Front == brute-force front (mixed directions, ties, NaN/inf rows)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(point_sets())
def test_front_equals_brute_force(data):
    points, directions = data
    expected = brute_front(points.tolist(), directions)

    mask = pareto_mask(points, directions)
    front = pareto_front(points, directions)

    assert mask.dtype == bool and mask.shape == (len(points),)
    assert set(np.flatnonzero(mask).tolist()) == expected
    assert sorted(front.tolist()) == sorted(expected)  # as a list: no index twice
    first = minimised(points[front], directions)[:, 0]
    assert (np.diff(first) >= 0).all(), "front must be sorted best first objective first"


def brute_mask_min(z: np.ndarray) -> np.ndarray:
    """Non-dominated mask of minimisation rows, one vectorised row at a time (for large n)."""
    valid = np.isfinite(z).all(axis=1)
    mask = np.zeros(len(z), dtype=bool)
    finite = z[valid]
    for j in np.flatnonzero(valid):
        mask[j] = not ((finite <= z[j]).all(axis=1) & (finite < z[j]).any(axis=1)).any()
    return mask


def brute_ranks_min(z: np.ndarray) -> np.ndarray:
    """Ranks by peeling brute-force fronts off the remaining finite rows."""
    ranks = np.full(len(z), -1)
    left = np.flatnonzero(np.isfinite(z).all(axis=1))
    rank = 0
    while len(left):
        on_front = brute_mask_min(z[left])
        ranks[left[on_front]] = rank
        left = left[~on_front]
        rank += 1
    return ranks


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["ties", "simplex"])
def test_front_and_ranks_equal_brute_force_at_sizes_past_moocore_thresholds(m, kind):
    # Hypothesis draws at most 40 points; moocore switches algorithms with n (Kung's recursion
    # from 4 objectives, merges above 1024 pairs), so compare a few larger sets as well, with
    # many exact duplicates and some non-finite rows.
    rng = np.random.default_rng(m)
    n = 1200
    if kind == "ties":
        points = rng.choice([0.0, 1.0, 2.0, 3.0], size=(n, m))
    else:
        points = rng.dirichlet(np.ones(m), size=n) + np.abs(rng.normal(0.0, 0.05, (n, m))) * (
            rng.random((n, 1)) < 0.7
        )
        points = np.vstack([points, points[: n // 10]])
    points[rng.choice(len(points), 30, replace=False), rng.integers(0, m, 30)] = rng.choice(
        [np.nan, np.inf, -np.inf], 30
    )
    directions = ["max", "min", "min", "max", "min"][:m]
    z = minimised(points, directions)
    np.testing.assert_array_equal(pareto_mask(points, directions), brute_mask_min(z))
    sample = rng.choice(len(points), 400, replace=False)  # peeling is slow: a subsample
    np.testing.assert_array_equal(
        nondominated_ranks(points[sample], directions), brute_ranks_min(z[sample])
    )


def test_identical_points_are_all_kept():
    points = [[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [2.0, 2.0]]
    assert pareto_mask(points, ["min", "min"]).tolist() == [True, True, True, False]
    assert pareto_front(points, ["min", "min"]).tolist() == [0, 1, 2]


def test_non_finite_rows_never_dominate():
    points = [[np.nan, 0.0], [1.0, 1.0], [-np.inf, 5.0], [0.0, np.inf]]
    assert pareto_mask(points, ["min", "min"]).tolist() == [False, True, False, False]
    assert nondominated_ranks(points, ["min", "min"]).tolist() == [-1, 0, -1, -1]


# The edge cases below are where moocore's own conventions differ from this module's; the
# wrappers in analysis.pareto translate them.


def test_every_copy_of_a_tied_point_is_kept_in_3d_and_shares_its_rank():
    # moocore.is_nondominated keeps only the first copy unless keep_weakly=True.
    points = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 2.0, 3.0], [2.0, 2.0, 3.0]]
    directions = ["min"] * 3
    assert pareto_mask(points, directions).tolist() == [True, True, True, False, False]
    assert nondominated_ranks(points, directions).tolist() == [0, 0, 0, 1, 1]
    # Boxes 3 x 2 x 1 and 1 x 2 x 3 overlapping in 1 x 2 x 1; the copies add nothing.
    assert front_summary(points, directions, [4.0, 4.0, 4.0]) == (3, pytest.approx(10.0))


def test_a_nan_row_does_not_make_a_finite_row_look_dominated():
    # Given to moocore as is, NaN compares false: [nan, 1] comes out non-dominated and [1, 1]
    # dominated; -inf dominates every row.
    points = [[np.nan, 1.0], [1.0, 1.0], [2.0, 2.0], [-np.inf, 0.0], [0.5, np.nan]]
    for directions in (["min", "min"], ["max", "max"]):
        flipped = minimised(points, directions)  # the same set, read in these directions
        assert pareto_mask(flipped, directions).tolist() == [False, True, False, False, False]
        assert nondominated_ranks(flipped, directions).tolist() == [-1, 0, 1, -1, -1]
        assert knee_point(flipped, directions) == 1


def test_one_objective_is_a_total_order_with_ties():
    points = [[1.0], [1.0], [0.0], [2.0], [np.nan], [-0.0]]  # -0.0 == 0.0: a tie
    assert pareto_mask(points, ["min"]).tolist() == [False, False, True, False, False, True]
    assert nondominated_ranks(points, ["min"]).tolist() == [1, 1, 0, 2, -1, 0]
    assert pareto_mask(points, ["max"]).tolist() == [False, False, False, True, False, False]
    assert nondominated_ranks(points, ["max"]).tolist() == [1, 1, 2, 0, -1, 2]
    assert pareto_front(points, ["min"]).tolist() == [2, 5]
    assert hypervolume_progress(points, ["min"], [3.0]).tolist() == [2.0, 2.0, 3.0, 3.0, 3.0, 3.0]
    assert hypervolume_progress(points, ["max"], [0.5]).tolist() == [0.5, 0.5, 0.5, 1.5, 1.5, 1.5]


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_no_points_and_one_point(m):
    directions = ["min"] * m
    empty = np.empty((0, m))
    assert pareto_mask(empty, directions).shape == (0,)
    assert nondominated_ranks(empty, directions).shape == (0,)
    assert pareto_front(empty, directions).shape == (0,)
    assert hypervolume(empty, directions, [1.0] * m) == 0.0
    assert hypervolume_progress(empty, directions, [1.0] * m).shape == (0,)
    assert front_summary(empty, directions, [1.0] * m) == (0, 0.0)
    one = np.zeros((1, m))
    assert pareto_mask(one, directions).tolist() == [True]
    assert nondominated_ranks(one, directions).tolist() == [0]
    assert knee_point(one, directions) == 0
    assert hypervolume_progress(one, directions, [2.0] * m).tolist() == [2.0**m]
    missing = np.full((1, m), np.nan)
    assert pareto_mask(missing, directions).tolist() == [False]
    assert nondominated_ranks(missing, directions).tolist() == [-1]
    assert hypervolume_progress(missing, directions, [2.0] * m).tolist() == [0.0]


@settings(max_examples=100, deadline=None)
@given(point_sets(dims=(1,)) | point_sets(dims=(1,), elements=FLOAT_VALUES))
def test_one_objective_equals_brute_force(data):
    points, directions = data
    expected = brute_front(points.tolist(), directions)
    assert set(np.flatnonzero(pareto_mask(points, directions)).tolist()) == expected
    ranks = nondominated_ranks(points, directions)
    np.testing.assert_array_equal(ranks, brute_ranks_min(minimised(points, directions)))


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_progress_with_copies_and_removals(m):
    # Duplicates add nothing; a point that removes several front points adds only the uncovered
    # part of its box.
    rng = np.random.default_rng(m)
    base = rng.choice([0.0, 0.5, 1.0, 1.5], size=(60, m))
    points = np.vstack([base, base[:20], [[0.0] * m]])  # the last point dominates everything
    reference = [2.0] * m
    progress = hypervolume_progress(points, ["min"] * m, reference)
    expected = [hypervolume(points[: i + 1], ["min"] * m, reference) for i in range(len(points))]
    np.testing.assert_allclose(progress, expected, rtol=1e-12, atol=1e-12)
    assert progress[-1] == pytest.approx(2.0**m)


# ---------------------------------------------------------------------------------------------
# 2. Hypervolume == exact union of boxes (2-D, 3-D, 4-D) and == Monte Carlo (3-D)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    point_sets_with_reference(dims=(2,))
    | point_sets_with_reference(dims=(2,), elements=FLOAT_VALUES)
)
def test_hypervolume_2d_equals_union_of_rectangles(data):
    points, directions, reference = data
    expected = grid_hypervolume(points, directions, reference)
    assert hypervolume(points, directions, reference) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    point_sets_with_reference(dims=(3, 4))
    | point_sets_with_reference(dims=(3, 4), elements=FLOAT_VALUES, max_n=12)
)
def test_hypervolume_nd_equals_union_of_boxes(data):
    points, directions, reference = data
    expected = grid_hypervolume(points, directions, reference)
    assert hypervolume(points, directions, reference) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(point_sets(dims=(3,), elements=FLOAT_VALUES, max_n=30, min_n=1))
def test_hypervolume_3d_matches_monte_carlo(data):
    points, directions = data
    assume(np.isfinite(points).all(axis=1).any())
    reference = reference_point(points, directions)
    estimate, standard_error, box = monte_carlo_hypervolume(points, directions, reference)
    tolerance = 4 * standard_error + 1e-3 * box
    assert abs(hypervolume(points, directions, reference) - estimate) <= tolerance


def test_hypervolume_known_values():
    # Maximise accuracy (reference 0.0), minimise energy (reference 5.0).
    points = [[0.9, 1.0], [0.5, 0.0], [0.95, 6.0], [np.nan, 0.0]]
    # (0.9, 1.0) spans [0, 0.9] x [1, 5] = 3.6; (0.5, 0.0) adds [0, 0.5] x [0, 1] = 0.5;
    # (0.95, 6.0) is worse than the reference in energy and adds nothing.
    assert hypervolume(points, ["max", "min"], [0.0, 5.0]) == pytest.approx(4.1)
    assert hypervolume([], ["max", "min"], [0.0, 5.0]) == 0.0
    assert hypervolume([[1.0, 5.0]], ["max", "min"], [0.0, 5.0]) == 0.0  # on the reference: nothing
    assert hypervolume([[2.0], [1.0]], ["min"], [4.0]) == 3.0
    cube = [[0.0, 0.0, 0.0]]
    assert hypervolume(cube, ["min"] * 3, [2.0, 3.0, 4.0]) == pytest.approx(24.0)


# ---------------------------------------------------------------------------------------------
# 3. A dominated point changes neither the front nor the hypervolume
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(point_sets(min_n=1) | point_sets(min_n=1, elements=FLOAT_VALUES), st.data())
def test_adding_a_dominated_point_changes_nothing(data, draw):
    points, directions = data
    front = pareto_front(points, directions)
    assume(len(front) > 0)
    source = points[draw.draw(st.sampled_from(front.tolist()))]
    m = len(directions)
    deltas = draw.draw(st.lists(st.sampled_from([0.25, 1.0, 3.0]), min_size=m, max_size=m))
    extended = np.vstack([points, worsened(source, directions, deltas)])
    for reference in (reference_point(points, directions), reference_point(extended, directions)):
        assert hypervolume(extended, directions, reference) == pytest.approx(
            hypervolume(points, directions, reference), rel=1e-12, abs=1e-12
        )
    assert set(pareto_front(extended, directions).tolist()) == set(front.tolist())


@settings(max_examples=60, deadline=None)
@given(point_sets(min_n=1), st.data())
def test_a_copy_of_a_front_point_joins_the_front_and_adds_no_volume(data, draw):
    points, directions = data
    front = pareto_front(points, directions)
    assume(len(front) > 0)
    extended = np.vstack([points, points[draw.draw(st.sampled_from(front.tolist()))]])
    reference = reference_point(points, directions)
    assert set(pareto_front(extended, directions).tolist()) == set(front.tolist()) | {len(points)}
    assert hypervolume(extended, directions, reference) == pytest.approx(
        hypervolume(points, directions, reference), rel=1e-12, abs=1e-12
    )


# ---------------------------------------------------------------------------------------------
# 4. Non-dominated ranks
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(point_sets())
def test_ranks_are_a_non_dominated_sorting(data):
    points, directions = data
    ranks = nondominated_ranks(points, directions)
    rows = points.tolist()

    assert ranks.shape == (len(points),) and np.issubdtype(ranks.dtype, np.integer)
    np.testing.assert_array_equal(ranks == 0, pareto_mask(points, directions))
    valid = np.isfinite(points).all(axis=1)
    assert (ranks[~valid] == -1).all() and (ranks[valid] >= 0).all()
    deepest = int(ranks.max(initial=-1))
    assert set(ranks[valid].tolist()) == set(range(deepest + 1))  # layers 0, 1, ..., deepest
    for r in range(deepest + 1):
        layer = np.flatnonzero(ranks == r)
        for i, j in itertools.product(layer, layer):
            assert not dominates(rows[i], rows[j], directions), f"rank {r} point {i} dominates {j}"
        for j in np.flatnonzero(ranks == r + 1):
            assert any(dominates(rows[i], rows[j], directions) for i in layer)


# ---------------------------------------------------------------------------------------------
# 5. Knee point and hypervolume progress
# ---------------------------------------------------------------------------------------------


def convex_front_with_bulge() -> tuple[np.ndarray, int]:
    """Points on x + y = 1 plus a bulge at (0.2, 0.2) (minimisation); returns (points, bulge)."""
    x = np.linspace(0.0, 1.0, 11)
    points = np.vstack([np.column_stack([x, 1 - x]), [[0.2, 0.2]]])
    return points, len(points) - 1


def test_knee_is_the_bulge_of_a_2d_front():
    points, bulge = convex_front_with_bulge()
    assert knee_point(points, ["min", "min"]) == bulge


@pytest.mark.parametrize("directions", [("max", "min"), ("min", "max"), ("max", "max")])
def test_knee_is_invariant_to_directions_and_units(directions):
    points, bulge = convex_front_with_bulge()
    points = points * np.array([1.0, 5.0]) + np.array([0.0, 2.0])  # e.g. energy_uj in [2, 7]
    flipped = minimised(points, directions)  # same front, now expressed in those directions
    assert knee_point(flipped, directions) == bulge


def test_knee_is_the_bulge_of_a_3d_front():
    steps = np.linspace(0, 1, 6)
    grid = [(a, b, 1 - a - b) for a in steps for b in steps if a + b <= 1 + 1e-12]
    points = np.vstack([grid, [[0.2, 0.2, 0.2]]])
    assert knee_point(points, ["min"] * 3) == len(points) - 1


def test_knee_of_a_concave_front_is_an_end_not_the_dent():
    # (0.8, 0.8) is non-dominated but lies beyond the line between the extremes, away from the
    # ideal point: it is the worst trade-off, not a knee.
    points = [[0.8, 0.8], [1.0, 0.0], [0.0, 1.0]]
    assert knee_point(points, ["min", "min"]) == 2


def test_knee_of_small_fronts():
    assert knee_point([[1.0, 1.0]], ["min", "min"]) == 0
    # Two points: the one closest to the normalised ideal; a tie goes to the better first objective.
    assert knee_point([[1.0, 0.0], [0.0, 1.0]], ["min", "min"]) == 1
    assert knee_point([[0.0, 0.0], [0.5, 0.5], [9.0, 9.0]], ["min", "min"]) == 0  # front of one
    assert knee_point([], ["min", "min"]) is None
    assert knee_point([[np.nan, 1.0]], ["min", "min"]) is None


@settings(max_examples=100, deadline=None)
@given(point_sets() | point_sets(elements=FLOAT_VALUES))
def test_knee_is_on_the_front(data):
    points, directions = data
    knee = knee_point(points, directions)
    if np.isfinite(points).all(axis=1).any():
        assert knee in set(pareto_front(points, directions).tolist())
    else:
        assert knee is None


@settings(max_examples=60, deadline=None)
@given(
    point_sets_with_reference(max_n=25)
    | point_sets_with_reference(max_n=25, elements=FLOAT_VALUES)
)
def test_hypervolume_progress_is_the_hypervolume_of_each_prefix(data):
    points, directions, reference = data
    progress = hypervolume_progress(points, directions, reference)
    assert progress.shape == (len(points),)
    assert (np.diff(progress) >= -1e-12).all()
    expected = [hypervolume(points[: i + 1], directions, reference) for i in range(len(points))]
    np.testing.assert_allclose(progress, expected, rtol=1e-9, atol=1e-12)
    if len(points):
        assert progress[-1] == pytest.approx(hypervolume(points, directions, reference), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Reference point and compute_front
# ---------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(point_sets(min_n=1) | point_sets(min_n=1, elements=FLOAT_VALUES))
def test_reference_point_is_strictly_worse_than_every_finite_point(data):
    points, directions = data
    valid = np.isfinite(points).all(axis=1)
    assume(valid.any())
    reference = reference_point(points, directions)
    z = minimised(points[valid], directions)
    assert (z < minimised([reference], directions)[0]).all()


def test_reference_point_values():
    points = [[0.8, 1.0], [0.6, 3.0], [np.nan, 100.0]]
    np.testing.assert_allclose(reference_point(points, ["max", "min"]), [0.58, 3.2])
    # Zero range: pushed by margin x |value|, or by margin when the value is 0.
    flat = reference_point([[0.5, 0.0]], ["max", "min"], margin=0.5)
    np.testing.assert_allclose(flat, [0.25, 0.5])
    with pytest.raises(ValueError, match="no row has finite values"):
        reference_point([[np.nan, 1.0]], ["max", "min"])
    with pytest.raises(ValueError, match="margin"):
        reference_point([[1.0, 1.0]], ["max", "min"], margin=-0.1)


@settings(max_examples=50, deadline=None)
@given(point_sets_with_reference())
def test_compute_front_agrees_with_the_functions(data):
    points, directions, reference = data
    names = tuple(f"metric_{j}" for j in range(len(directions)))
    result = compute_front(points, names, directions, reference)

    assert isinstance(result, ParetoFront)
    assert result.objectives == names and result.directions == tuple(directions)
    np.testing.assert_array_equal(result.points, points)
    np.testing.assert_array_equal(result.front, pareto_front(points, directions))
    np.testing.assert_array_equal(result.ranks, nondominated_ranks(points, directions))
    np.testing.assert_array_equal(result.reference, reference)
    expected = hypervolume(points, directions, reference)
    assert result.hypervolume == pytest.approx(expected, rel=1e-12)
    assert result.knee == knee_point(points, directions)
    with pytest.raises(ValueError):
        result.points[...] = 0.0  # read-only plain data


def test_compute_front_derives_and_records_a_reference():
    points = [[0.8, 1.0], [0.6, 3.0]]
    result = compute_front(points, ["val_accuracy", "energy_uj"], ["max", "min"])
    np.testing.assert_allclose(result.reference, reference_point(points, ["max", "min"]))
    expected = hypervolume(points, ["max", "min"], result.reference)
    assert result.hypervolume == pytest.approx(expected)

    empty = compute_front(np.empty((0, 2)), ["val_accuracy", "energy_uj"], ["max", "min"])
    assert empty.front.size == 0 and empty.hypervolume == 0.0 and empty.knee is None
    assert np.isnan(empty.reference).all()


# ---------------------------------------------------------------------------------------------
# 6. Input validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "directions", "message"),
    [
        ([[1.0, 2.0]], ["max"], r"directions has 1 entries but points have 2 objective columns"),
        ([[1.0, 2.0]], ["max", "min", "min"], r"directions has 3 entries but points have 2"),
        ([[1.0, 2.0]], ["max", "maximize"], r"directions\[1\] must be 'max' or 'min', got 'maxim"),
        ([[1.0, 2.0]], ["MIN", "max"], r"directions\[0\] must be 'max' or 'min', got 'MIN'"),
        ([[1.0, 2.0]], "mm", r"not the single string 'mm'"),
        ([[1.0, 2.0]], [], r"at least one objective"),
        ([1.0, 2.0], ["max", "min"], r"points must be a 2-D array .* got shape \(2,\)"),
    ],
)
@pytest.mark.parametrize(
    "function",
    [to_minimization, pareto_mask, pareto_front, nondominated_ranks, knee_point, reference_point],
)
def test_bad_input_raises_a_clear_value_error(function, points, directions, message):
    with pytest.raises(ValueError, match=message):
        function(points, directions)


@pytest.mark.parametrize("function", [hypervolume, hypervolume_progress])
def test_bad_reference_raises_a_clear_value_error(function):
    with pytest.raises(ValueError, match=r"reference must have one value per objective, shape \(2"):
        function([[1.0, 2.0]], ["max", "min"], [0.0])
    with pytest.raises(ValueError, match="reference must be finite"):
        function([[1.0, 2.0]], ["max", "min"], [0.0, np.nan])
    with pytest.raises(ValueError, match=r"directions\[0\] must be 'max' or 'min'"):
        function([[1.0, 2.0]], ["up", "min"], [0.0, 5.0])


def test_compute_front_checks_objective_names():
    with pytest.raises(ValueError, match="objectives has 1 names but directions has 2 entries"):
        compute_front([[1.0, 2.0]], ["val_accuracy"], ["max", "min"])


def test_to_minimization_negates_max_columns_and_copies():
    points = np.array([[0.9, 2.0], [0.5, 1.0]])
    z = to_minimization(points, ["max", "min"])
    np.testing.assert_array_equal(z, [[-0.9, 2.0], [-0.5, 1.0]])
    z[0, 0] = 7.0
    assert points[0, 0] == 0.9
    assert to_minimization([], ["max", "min"]).shape == (0, 2)
