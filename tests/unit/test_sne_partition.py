"""SNE partitions: disjoint, covering, balanced; the informed ones recover planted structure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainables.sne.partition import (
    PARTITIONS,
    balanced_assignment,
    check_partition,
    class_partition,
    correlation_partition,
    make_partition,
    part_sizes,
    partition_labels,
    random_partition,
    sequential_partition,
)


def _inputs(d: int, n: int = 64, classes: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"features": rng.normal(size=(n, d)), "head_weight": rng.normal(size=(classes, d))}


@pytest.mark.parametrize("name", PARTITIONS)
@settings(max_examples=15, deadline=None)
@given(d=st.integers(1, 40), data=st.data())
def test_every_partition_is_disjoint_covering_and_balanced(name, d, data):
    k = data.draw(st.integers(1, d))
    parts = make_partition(name, d, k, seed=3, **_inputs(d))
    assert len(parts) == k
    flat = np.concatenate(parts)
    assert len(flat) == d and len(set(flat.tolist())) == d  # disjoint
    assert set(flat.tolist()) == set(range(d))  # covering
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # balanced
    assert sizes == part_sizes(d, k)  # canonical order: a model can be rebuilt from (D, K)
    assert all(np.all(np.diff(p) > 0) for p in parts)  # sorted indices


def test_part_sizes_match_array_split_and_reject_empty_parts():
    assert part_sizes(10, 3) == [4, 3, 3]
    assert part_sizes(10, 3) == [len(a) for a in np.array_split(np.arange(10), 3)]
    with pytest.raises(ValueError, match="1 <= K <= D"):
        part_sizes(3, 4)
    with pytest.raises(ValueError, match="1 <= K <= D"):
        make_partition("sequential", 4, 0)


def test_sequential_is_contiguous_and_random_is_seeded():
    assert [p.tolist() for p in sequential_partition(7, 3)] == [[0, 1, 2], [3, 4], [5, 6]]
    a, b, c = random_partition(30, 3, seed=1), random_partition(30, 3, seed=1), random_partition(30, 3, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def _same_grouping(labels_a: np.ndarray, labels_b: np.ndarray) -> bool:
    """True when two labelings define the same groups (up to renaming)."""
    pairs = set(zip(labels_a.tolist(), labels_b.tolist()))
    return len(pairs) == len(set(labels_a.tolist())) == len(set(labels_b.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlation_partition_recovers_planted_blocks(seed):
    rng = np.random.default_rng(seed)
    d, k, n = 48, 4, 400
    planted = rng.permutation(np.repeat(np.arange(k), d // k))  # hidden block of each dimension
    factors = rng.normal(size=(n, k))
    # Each dimension is its block's factor (random sign and scale: |correlation| must not care)
    # plus independent noise; blocks are shuffled so contiguity gives no hint.
    scale = rng.uniform(0.5, 2.0, size=d) * rng.choice([-1.0, 1.0], size=d)
    features = factors[:, planted] * scale + 0.6 * rng.normal(size=(n, d))
    parts = correlation_partition(features, k, seed=seed)
    assert _same_grouping(partition_labels(parts, d), planted)
    # The uninformed partitions do not find them.
    assert not _same_grouping(partition_labels(sequential_partition(d, k), d), planted)
    assert not _same_grouping(partition_labels(random_partition(d, k, seed), d), planted)


def test_correlation_partition_handles_dead_features():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(100, 10))
    features[:, 3] = 0.0  # a ReLU unit that never fires
    parts = correlation_partition(features, 3)
    check_partition(parts, 10)


def test_class_partition_groups_dimensions_favouring_the_same_classes():
    rng = np.random.default_rng(0)
    classes, d = 4, 24
    favoured = rng.permutation(np.repeat(np.arange(classes), d // classes))
    weight = 0.05 * rng.normal(size=(classes, d))
    weight[favoured, np.arange(d)] += 1.0  # dimension i votes for class favoured[i]
    parts = class_partition(weight, classes)
    assert _same_grouping(partition_labels(parts, d), favoured)
    # With fewer parts than classes, each part is a union of whole classes.
    labels2 = partition_labels(class_partition(weight, 2), d)
    for c in range(classes):
        assert len(set(labels2[favoured == c].tolist())) == 1, f"class {c} is split across parts"


def test_class_partition_with_more_parts_than_classes_is_balanced():
    weight = np.random.default_rng(1).normal(size=(3, 20))
    parts = class_partition(weight, 7)
    check_partition(parts, 20)


def test_balanced_assignment_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(6, 3))
    sizes = [2, 2, 2]
    labels = balanced_assignment(scores, sizes)
    assert np.bincount(labels, minlength=3).tolist() == sizes
    best = max(
        (perm for perm in set(itertools.permutations([0, 0, 1, 1, 2, 2]))),
        key=lambda perm: scores[np.arange(6), list(perm)].sum(),
    )
    assert scores[np.arange(6), labels].sum() == pytest.approx(scores[np.arange(6), list(best)].sum())


def test_make_partition_rejects_unknown_names_and_missing_inputs():
    with pytest.raises(ValueError, match="sne.partition must be one of"):
        make_partition("kmeans", 8, 2)
    with pytest.raises(ValueError, match="teacher's features"):
        make_partition("correlation", 8, 2)
    with pytest.raises(ValueError, match="head's weight"):
        make_partition("class", 8, 2)


def test_check_partition_rejects_overlap_gaps_and_imbalance():
    with pytest.raises(ValueError, match="exactly one part"):
        check_partition([np.array([0, 1]), np.array([1, 2])], 4)
    with pytest.raises(ValueError, match="exactly one part"):
        check_partition([np.array([0]), np.array([2])], 3)
    with pytest.raises(ValueError, match="balanced"):
        check_partition([np.array([0, 1, 2]), np.array([3])], 4)
