"""The scoring engine against naive per-user, per-item loops of the metrics' definitions (docs/scoring.md, paper §5.2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from aipbench.scoring.metrics import BaseSetSummary, cold_item_metrics, prediction_shift
from aipbench.scoring.significance import paired_t_test


@pytest.fixture
def case():
    gen = torch.Generator().manual_seed(0)
    # integer-valued scores make ties frequent, so the tie rules are exercised
    base = torch.randint(0, 8, (40, 11), generator=gen).float()
    cold = torch.randint(0, 8, (40, 7), generator=gen).float()
    return base, cold


def test_cold_item_metrics_equal_the_naive_definitions(case):
    base, cold = case
    summary = BaseSetSummary(base, (1, 3, 5))
    metrics = cold_item_metrics(cold, summary, chunk=3)
    for n in (1, 3, 5):
        for c in range(cold.shape[1]):
            hits, kept = [], []
            for u in range(base.shape[0]):
                tau = sorted(base[u].tolist(), reverse=True)[n - 1]
                hits.append(cold[u, c].item() > tau)
                r_u = sum(x >= base[u, -1].item() for x in base[u, :-1].tolist())
                kept.append(r_u + (cold[u, c].item() > base[u, -1].item()) < n)
            assert metrics.hit_rate[n][c] == pytest.approx(np.mean(hits))
            assert metrics.availability[n][c] == pytest.approx(np.mean(kept))
    assert np.allclose(metrics.mean_score, cold.double().mean(0).numpy())


def test_prediction_shift_is_eq8():
    adv, coop = np.array([1.0, 2.0, 4.0]), np.array([0.5, 2.5, 1.0])
    per_item, overall = prediction_shift(adv, coop)
    assert per_item.tolist() == [0.5, -0.5, 3.0] and overall == pytest.approx(1.0)


def test_paired_t_test_is_scipys():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50)
    t, p = paired_t_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue))
    assert paired_t_test(a, a) == (0.0, 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        paired_t_test(a, b[:3])


def _naive(base: np.ndarray, cold: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Append each cold item to each user's base set, sort (ties: candidates, then the test item, then the
    cold item), and count positions."""
    users, items = cold.shape
    hit, kept = np.zeros(items), np.zeros(items)
    for c in range(items):
        for u in range(users):
            scores = np.append(base[u], cold[u, c])
            kind = np.array([0] * (base.shape[1] - 1) + [1, 2])  # candidates, test item, cold item
            order = np.lexsort((kind, -scores))
            position = np.empty_like(order)
            position[order] = np.arange(order.size)
            hit[c] += position[-1] < n
            kept[c] += position[-2] < n
    return hit / users, kept / users


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    users=st.integers(1, 6),
    base_size=st.integers(2, 9),
    items=st.integers(1, 5),
    n=st.integers(1, 4),
)
def test_engine_equals_append_and_sort(data, users, base_size, items, n):
    n = min(n, base_size)
    small = st.integers(-3, 3).map(float)  # few distinct values: ties everywhere
    base = data.draw(arrays(np.float32, (users, base_size), elements=small))
    cold = data.draw(arrays(np.float32, (users, items), elements=small))
    summary = BaseSetSummary(torch.from_numpy(base), (n,))
    metrics = cold_item_metrics(torch.from_numpy(cold), summary, chunk=2)
    hit, kept = _naive(base, cold, n)
    assert np.allclose(metrics.hit_rate[n], hit)
    assert np.allclose(metrics.availability[n], kept)


@pytest.mark.parametrize("name", ["vbpr", "dvbpr"])
def test_scoring_users_in_blocks_gives_the_same_numbers(tiny_prepared, name):
    """A score matrix too large for memory is scored in blocks of users: the hit rates and availability
    are the same numbers (counts, divided once), the mean scores the same up to float64 summation order."""
    from aipbench.scoring.metrics import image_metrics

    ranker = tiny_prepared.ranker(name)
    summary = tiny_prepared.summary(ranker)
    images = np.array(tiny_prepared.dataset.images[:64])
    whole = image_metrics(ranker, images, summary)
    blocks = image_metrics(ranker, images, summary, max_bytes=4 * 64 * 7)  # 7 users a block: 43 blocks, one short
    for n in summary.hit_ranks:
        assert np.array_equal(whole.hit_rate[n], blocks.hit_rate[n]) and whole.hit_rate[n].any()
        assert np.array_equal(whole.availability[n], blocks.availability[n])
    np.testing.assert_allclose(blocks.mean_score, whole.mean_score, rtol=1e-9, atol=1e-12)
