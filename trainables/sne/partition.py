"""Partitions of the teacher's ``D`` feature dimensions into ``K`` parts, one per student.

Pure functions on arrays. Every partition is disjoint, covers ``0 .. D-1`` and is
balanced: part sizes are ``floor(D / K)`` or ``ceil(D / K)`` (the sizes of ``np.array_split``),
so students of one ensemble have the same output width up to one and similar cost.

- ``sequential``: contiguous slices (baseline).
- ``random``: a seeded random split (baseline).
- ``correlation`` (informed): dimensions that co-vary in the teacher's features on training data
  go to the same student, so each student owns a coherent factor instead of fragments of many.
- ``class`` (informed): dimensions whose head weights favour the same classes go together.

Both informed partitions are balanced clusterings solved the same way: an initial clustering,
then rounds of *balanced assignment* (a linear assignment of dimensions to size-limited slots
maximising total affinity) until the labels stop changing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

from trainables.sne.config import PARTITIONS

__all__ = [
    "PARTITIONS",
    "part_sizes",
    "sequential_partition",
    "random_partition",
    "correlation_partition",
    "class_partition",
    "balanced_assignment",
    "make_partition",
    "partition_labels",
    "check_partition",
]

Partition = tuple[np.ndarray, ...]

# Rounds of re-assignment of the informed partitions; they converge in a handful on real features.
_MAX_ROUNDS = 30


def part_sizes(d: int, k: int) -> list[int]:
    """Balanced sizes of ``k`` parts of ``d`` items (larger parts first), as ``np.array_split``."""
    if k < 1 or k > d:
        raise ValueError(f"cannot split {d} feature dimensions into {k} non-empty parts (need 1 <= K <= D)")
    return [d // k + (1 if i < d % k else 0) for i in range(k)]


def sequential_partition(d: int, k: int) -> Partition:
    """Contiguous slices ``[0, s0), [s0, s0 + s1), ...``."""
    sizes = part_sizes(d, k)
    bounds = np.cumsum([0, *sizes])
    return tuple(np.arange(bounds[i], bounds[i + 1]) for i in range(k))


def random_partition(d: int, k: int, seed: int = 0) -> Partition:
    """A uniformly random balanced split, reproducible from ``seed``."""
    sizes = part_sizes(d, k)
    perm = np.random.default_rng(seed).permutation(d)
    bounds = np.cumsum([0, *sizes])
    return tuple(np.sort(perm[bounds[i] : bounds[i + 1]]) for i in range(k))


def balanced_assignment(scores: ArrayLike, sizes: Sequence[int]) -> np.ndarray:
    """Assign each item to a group, maximising total score, with group ``g`` getting ``sizes[g]`` items.

    Solved exactly as a linear assignment of items to ``sum(sizes)`` slots (group ``g`` owns
    ``sizes[g]`` identical slots).

    Args:
        scores: ``D x K`` affinity of item ``i`` to group ``g`` (higher is better).
        sizes: Items per group; must sum to ``D``.

    Returns:
        ``D`` group labels.
    """
    scores = np.asarray(scores, dtype=np.float64)
    d, k = scores.shape
    if len(sizes) != k or sum(sizes) != d:
        raise ValueError(f"sizes {list(sizes)} must have {k} entries summing to {d}")
    slot_group = np.repeat(np.arange(k), sizes)
    rows, cols = linear_sum_assignment(-scores[:, slot_group])
    labels = np.empty(d, dtype=np.int64)
    labels[rows] = slot_group[cols]
    return labels


def _labels_to_parts(labels: np.ndarray, k: int) -> Partition:
    return tuple(np.flatnonzero(labels == g) for g in range(k))


def _refine(affinity: np.ndarray, labels: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Balanced re-assignment rounds: score of item ``i`` for group ``g`` = mean affinity to its members."""
    k = len(sizes)
    for _ in range(_MAX_ROUNDS):
        member = np.eye(k)[labels]  # D x K one-hot
        counts = member.sum(axis=0)
        # An item's affinity to its own group excludes itself (its self-affinity is maximal).
        totals = affinity @ member - np.diag(affinity)[:, None] * member
        denom = counts[None, :] - member
        scores = totals / np.maximum(denom, 1.0)
        new = balanced_assignment(scores, sizes)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _spectral_labels(affinity: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Initial clusters: k-means on the top-``k`` eigenvectors of the normalised affinity."""
    from sklearn.cluster import KMeans

    degree = affinity.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    normalised = affinity * inv_sqrt[:, None] * inv_sqrt[None, :]
    _, vectors = np.linalg.eigh(normalised)
    embedding = vectors[:, -k:]
    embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embedding)


def correlation_partition(features: ArrayLike, k: int, seed: int = 0) -> Partition:
    """Cluster feature dimensions by absolute correlation into ``k`` balanced groups.

    Args:
        features: ``N x D`` teacher features on training data.
        k: Number of parts.
        seed: Seeds the k-means of the initial spectral clustering.

    Returns:
        ``k`` sorted index arrays, disjoint, covering ``0 .. D-1``, balanced.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be N x D, got shape {x.shape}")
    d = x.shape[1]
    sizes = part_sizes(d, k)
    if k == 1:
        return (np.arange(d),)
    x = x - x.mean(axis=0)
    std = x.std(axis=0)
    # A constant (dead) dimension correlates with nothing; it gets zero affinity and simply
    # fills whichever group has room.
    z = np.divide(x, std, out=np.zeros_like(x), where=std > 1e-12)
    affinity = np.abs(z.T @ z) / len(x)
    np.fill_diagonal(affinity, np.where(std > 1e-12, 1.0, 0.0))
    labels = _spectral_labels(affinity + 1e-9, k, seed)
    labels = balanced_assignment(np.eye(k)[labels], sizes)  # balance the initial clusters
    return _labels_to_parts(_refine(affinity, labels, sizes), k)


def class_partition(head_weight: ArrayLike, k: int, seed: int = 0) -> Partition:
    """Group feature dimensions by the classes their head weights favour, balanced.

    Each dimension ``i`` has a class profile: column ``W[:, i]`` of the teacher head (how much it
    votes for each class), centred and normalised. Dimensions with similar profiles (cosine
    similarity) favour the same classes and go to the same student. The initial groups put each
    dimension with the class it favours most, classes dealt round-robin over the ``k`` groups
    (``k <= C``), or are k-means clusters of the profiles (``k > C``).

    Args:
        head_weight: ``C x D`` weight of the teacher's linear head.
        k: Number of parts.
        seed: Seeds the k-means used when there are more parts than classes.

    Returns:
        ``k`` sorted index arrays, disjoint, covering ``0 .. D-1``, balanced.
    """
    w = np.asarray(head_weight, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"head_weight must be C x D, got shape {w.shape}")
    c, d = w.shape
    sizes = part_sizes(d, k)
    if k == 1:
        return (np.arange(d),)
    profiles = w - w.mean(axis=0, keepdims=True)  # a bias common to all classes favours none
    profiles = profiles / np.maximum(np.linalg.norm(profiles, axis=0, keepdims=True), 1e-12)
    if k <= c:
        favoured = w.argmax(axis=0)
        initial = favoured % k
    else:
        from sklearn.cluster import KMeans

        initial = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(profiles.T)
    labels = balanced_assignment(np.eye(k)[initial], sizes)
    affinity = profiles.T @ profiles  # cosine similarity of class profiles
    return _labels_to_parts(_refine(affinity, labels, sizes), k)


def make_partition(
    name: str,
    d: int,
    k: int,
    *,
    features: ArrayLike | None = None,
    head_weight: ArrayLike | None = None,
    seed: int = 0,
) -> Partition:
    """Build the partition ``name`` (one of :data:`PARTITIONS`) of ``d`` dimensions into ``k`` parts.

    Args:
        name: ``sequential``, ``random``, ``correlation`` or ``class``.
        d: Feature dimension ``D``.
        k: Number of parts ``K`` (students), ``1 <= K <= D``.
        features: ``N x D`` teacher features, needed by ``correlation``.
        head_weight: ``C x D`` teacher head weight, needed by ``class``.
        seed: Seed of the random choices.

    Raises:
        ValueError: for an unknown name, a missing input or ``K`` outside ``[1, D]``.
    """
    part_sizes(d, k)  # validates k against d
    if name == "sequential":
        parts = sequential_partition(d, k)
    elif name == "random":
        parts = random_partition(d, k, seed)
    elif name == "correlation":
        if features is None:
            raise ValueError("the correlation partition needs the teacher's features")
        parts = correlation_partition(features, k, seed)
    elif name == "class":
        if head_weight is None:
            raise ValueError("the class partition needs the teacher head's weight")
        parts = class_partition(head_weight, k, seed)
    else:
        raise ValueError(f"sne.partition must be one of {', '.join(PARTITIONS)}, got {name!r}")
    check_partition(parts, d)
    return parts


def partition_labels(parts: Sequence[np.ndarray], d: int) -> np.ndarray:
    """The owner (part index) of each of the ``d`` dimensions."""
    labels = np.full(d, -1, dtype=np.int64)
    for g, part in enumerate(parts):
        labels[np.asarray(part)] = g
    return labels


def check_partition(parts: Sequence[np.ndarray], d: int) -> None:
    """Raise ``ValueError`` unless ``parts`` are disjoint, covering and balanced (sizes as :func:`part_sizes`)."""
    flat = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts]) if parts else np.zeros(0, np.int64)
    if len(flat) != d or not np.array_equal(np.sort(flat), np.arange(d)):
        raise ValueError("a partition must assign every feature dimension to exactly one part")
    sizes = [len(p) for p in parts]
    # Part g always has size part_sizes(d, K)[g], so a model can be rebuilt from (D, K) alone.
    if sizes != part_sizes(d, len(parts)):
        raise ValueError(f"partition is not balanced (or not in canonical size order): part sizes {sizes}")
