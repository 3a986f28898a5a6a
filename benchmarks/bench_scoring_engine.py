"""The scoring engine vs the per-item full sort, on the same inputs: 1,000 cold items × 34,244 users ×
1,002 items (1,000 candidates, the test item, the cold item).

The full sort is timed on a few items and scaled to 1,000 (running it on all would take most of an hour
on 2 cores). Run: ``.venv/bin/python -m pytest benchmarks/bench_scoring_engine.py --benchmark-enable -s``.
"""

from __future__ import annotations

import time

import pytest
import torch

from aipbench.scoring.metrics import BaseSetSummary, cold_item_metrics

N_USERS, N_BASE, N_COLD, N = 34_244, 1_001, 1_000, 5
NAIVE_ITEMS = 3


@pytest.fixture(scope="module")
def scores():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(N_USERS, N_BASE, generator=gen), torch.randn(N_USERS, N_COLD, generator=gen) + 1.5


def _full_sort(base: torch.Tensor, cold_column: torch.Tensor) -> tuple[float, float]:
    """Append the cold item, sort every user's 1,002 scores, read the cold and test items' positions."""
    full = torch.cat([base, cold_column[:, None]], 1)
    # ties against the cold item, then the test item: stable sort on descending score with them last
    order = torch.sort(full, dim=1, descending=True, stable=True).indices
    position = torch.argsort(order, dim=1)
    return float((position[:, -1] < N).double().mean()), float((position[:, -2] < N).double().mean())


def test_engine(benchmark, scores):
    base, cold = scores

    def engine():
        return cold_item_metrics(cold, BaseSetSummary(base, (5, 10, 20)))

    metrics = benchmark.pedantic(engine, rounds=1, iterations=1)
    started = time.perf_counter()
    naive = [_full_sort(base, cold[:, c]) for c in range(NAIVE_ITEMS)]
    per_item = (time.perf_counter() - started) / NAIVE_ITEMS
    engine_s = benchmark.stats.stats.mean if benchmark.stats else float("nan")
    print(f"\nengine, 1,000 items: {engine_s:.2f} s; full sort: {per_item:.2f} s per item, "
          f"~{per_item * N_COLD:.0f} s for 1,000 items; speed-up ~{per_item * N_COLD / engine_s:.0f}x")
    for c, (hit, kept) in enumerate(naive):
        assert metrics.hit_rate[N][c] == pytest.approx(hit)
        assert metrics.availability[N][c] == pytest.approx(kept)
