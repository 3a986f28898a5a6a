"""Scoring 1,000 cold images against 34,244 users (Amazon Men's user count) for each ranker, features included.

Rankers have synthetic-v1's architecture (64×64 images) and random weights: the cost does not depend on
the values. Run: ``.venv/bin/python -m pytest benchmarks/bench_scoring.py --benchmark-enable``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipbench.data.splits import to_csr
from aipbench.protocol import load_protocol
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.extractor import make_extractor
from aipbench.rankers.nets.cnnf import CNNF
from aipbench.rankers.vbpr import VBPR

N_USERS, N_CATALOG, N_COLD = 34_244, 10_000, 1_000


@pytest.fixture(scope="module")
def setup():
    proto = load_protocol("synthetic-v1")
    r = proto.rankers
    torch.manual_seed(0)
    extractor = make_extractor(proto).eval().requires_grad_(False)
    feats = torch.rand(N_CATALOG, r.extractor.fc_width)
    rng = np.random.default_rng(0)
    indptr, items = to_csr(np.repeat(np.arange(N_USERS), 5), rng.integers(0, N_CATALOG, N_USERS * 5), N_USERS)
    cnn = CNNF(r.dvbpr.conv_widths, r.dvbpr.fc_widths, out_dim=r.dvbpr.embedding_length, dropout=r.dvbpr.dropout,
               lrn=r.dvbpr.local_response_norm)
    rankers = {
        "alexrank": AlexRank.fit(extractor, feats, train_indptr=indptr, train_items=items),
        "vbpr": VBPR(extractor, feats, N_USERS, factors=r.vbpr.factors, embedding_length=r.vbpr.embedding_length,
                     visual_bias=True),
        "dvbpr": DVBPR(cnn, N_USERS, torch.rand(N_CATALOG, r.dvbpr.embedding_length)),
        "amr": VBPR(extractor, feats, N_USERS, factors=r.amr.factors, embedding_length=r.amr.embedding_length,
                    visual_bias=True),
    }
    images = torch.randint(0, 256, (N_COLD, 3, 64, 64), dtype=torch.uint8)
    return {k: v.eval().requires_grad_(False) for k, v in rankers.items()}, images


@pytest.mark.parametrize("name", ["alexrank", "vbpr", "dvbpr", "amr"])
def test_score_cold_images(benchmark, setup, name):
    rankers, images = setup
    ranker = rankers[name]
    users = ranker.all_users()

    def score():
        with torch.no_grad():
            return ranker.score_images(users, images)

    out = benchmark.pedantic(score, rounds=3, iterations=1)
    assert out.shape == (N_USERS, N_COLD) and torch.isfinite(out).all()
