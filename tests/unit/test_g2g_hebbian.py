"""Hebbian scores equal a brute-force double loop; the EMA window is a weighted cosine."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainables.g2g.hebbian import HebbianMoments, hebbian_scores


def _brute_force(pre: list[list[float]], post: list[list[float]], centered: bool, weights: list[float] | None = None):
    """C_H[j][i] by the definition: (weighted) cosine of post column j and pre column i."""
    n = len(pre)
    w = weights or [1.0] * n
    total = sum(w)

    def column(rows, c):
        values = [row[c] for row in rows]
        if centered:
            mean = sum(wk * v for wk, v in zip(w, values)) / total
            values = [v - mean for v in values]
        return values

    def cos(a, b):
        dot = sum(wk * x * y for wk, x, y in zip(w, a, b))
        na = math.sqrt(sum(wk * x * x for wk, x in zip(w, a)))
        nb = math.sqrt(sum(wk * y * y for wk, y in zip(w, b)))
        return 0.0 if na < 1e-9 or nb < 1e-9 else dot / (na * nb)

    return [[cos(column(post, j), column(pre, i)) for i in range(len(pre[0]))] for j in range(len(post[0]))]


@pytest.mark.parametrize("centered", [False, True])
def test_scores_equal_brute_force_double_loop(centered):
    gen = torch.Generator().manual_seed(0)
    pre = torch.randn(9, 5, generator=gen)
    post = torch.relu(torch.randn(9, 4, generator=gen))
    expected = torch.tensor(_brute_force(pre.tolist(), post.tolist(), centered))
    got = hebbian_scores(pre, post, centered)
    assert got.shape == (4, 5)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    samples=st.integers(2, 6),
    n_in=st.integers(1, 4),
    n_out=st.integers(1, 4),
    centered=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_scores_equal_brute_force_on_random_small_arrays(samples, n_in, n_out, centered, seed):
    gen = torch.Generator().manual_seed(seed)
    pre = torch.randn(samples, n_in, generator=gen)
    post = torch.relu(torch.randn(samples, n_out, generator=gen))
    expected = torch.tensor(_brute_force(pre.tolist(), post.tolist(), centered))
    torch.testing.assert_close(hebbian_scores(pre, post, centered), expected, atol=1e-4, rtol=1e-4)


def test_silent_units_score_zero_and_identical_columns_score_one():
    pre = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    post = torch.tensor([[2.0, 0.0], [4.0, 0.0], [6.0, 0.0]])
    scores = hebbian_scores(pre, post)
    assert scores[0, 0].item() == pytest.approx(1.0)
    assert torch.all(scores[1] == 0) and torch.all(scores[:, 1] == 0)
    assert not torch.isnan(hebbian_scores(pre, post, centered=True)).any()


@pytest.mark.parametrize("centered", [False, True])
def test_ema_with_zero_decay_equals_the_latest_batch(centered):
    gen = torch.Generator().manual_seed(1)
    moments = HebbianMoments(5, 3, decay=0.0)
    for _ in range(3):
        pre, post = torch.randn(8, 5, generator=gen), torch.relu(torch.randn(8, 3, generator=gen))
        moments.update(pre, post)
    torch.testing.assert_close(moments.scores(centered), hebbian_scores(pre, post, centered), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("centered", [False, True])
def test_ema_is_the_cosine_over_an_exponentially_weighted_window(centered):
    gen = torch.Generator().manual_seed(2)
    decay = 0.75
    moments = HebbianMoments(4, 3, decay=decay)
    batches = [(torch.randn(6, 4, generator=gen), torch.relu(torch.randn(6, 3, generator=gen))) for _ in range(3)]
    for pre, post in batches:
        moments.update(pre, post)
    # Batch weights after three updates: the first sets the average, later ones move it by 1 - decay.
    weights = [decay * decay, decay * (1 - decay), 1 - decay]
    pre = torch.cat([p for p, _ in batches]).tolist()
    post = torch.cat([q for _, q in batches]).tolist()
    sample_weights = [w for w in weights for _ in range(6)]
    expected = torch.tensor(_brute_force(pre, post, centered, sample_weights))
    torch.testing.assert_close(moments.scores(centered), expected, atol=1e-5, rtol=1e-5)


def test_ema_state_round_trips():
    gen = torch.Generator().manual_seed(3)
    moments = HebbianMoments(4, 3, decay=0.5)
    moments.update(torch.randn(5, 4, generator=gen), torch.randn(5, 3, generator=gen))
    restored = HebbianMoments(4, 3, decay=0.5)
    restored.load_state_dict(moments.state_dict())
    assert restored.batches == 1
    assert torch.equal(restored.scores(True), moments.scores(True))


def test_ema_decay_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="ema_decay"):
        HebbianMoments(2, 2, decay=1.0)
