"""What the 95 % intervals add to an evaluation's scoring: 1,000 cold items × 34,244 users × 4 rankers × 4 ε,
both measured in one run (the scoring engine on the same (users × items) scores, then the intervals of every
row). Target: the intervals add under 10 %.

Run: ``.venv/bin/python -m pytest benchmarks/bench_intervals.py --benchmark-enable -s -n 0``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from aipbench.scoring.intervals import Bootstrap, attack_intervals
from aipbench.scoring.metrics import BaseSetSummary, cold_item_metrics, prediction_shift

N_USERS, N_BASE, N_COLD, ROWS = 34_244, 1_001, 1_000, 4 * 4  # rankers × budgets
RANKS = (5, 10, 20)


def test_intervals_add_under_ten_percent_to_scoring(benchmark):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(N_USERS, N_BASE, generator=gen)
    summary = BaseSetSummary(base, RANKS)
    coop = torch.randn(N_USERS, N_COLD, generator=gen) + 1.0
    adv = coop + 0.8

    scoring = intervals = 0.0
    boot = Bootstrap(N_COLD, seed=20210419)
    before = cold_item_metrics(coop, summary)  # once per ranker in an evaluation: not counted (the ratio is larger)
    for _ in range(ROWS):  # per (ranker, ε): the scoring of the adversarial items, then the row's intervals
        start = time.perf_counter()
        after = cold_item_metrics(adv, summary)
        shift, _ = prediction_shift(after.mean_score, before.mean_score)
        scoring += time.perf_counter() - start
        start = time.perf_counter()
        found = attack_intervals(boot, before=before, after=after, shift=shift, ranks=RANKS)
        intervals += time.perf_counter() - start
    benchmark.pedantic(lambda: attack_intervals(boot, before=before, after=after, shift=shift, ranks=RANKS),
                       rounds=3, iterations=1)
    ratio = intervals / scoring
    print(f"\n{ROWS} rows of 1,000 items x 34,244 users: scoring {scoring:.1f} s, intervals {intervals:.2f} s "
          f"({ratio:.1%} of scoring; {1000 * intervals / ROWS:.0f} ms a row, {len(found['delta']['hr'])} ranks)")
    assert np.isfinite(found["prediction_shift"]).all() and ratio < 0.10
