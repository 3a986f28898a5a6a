"""The ε sweep (paper Table 6): INSA at ε = 4, 8, 16, 32 on 1,000 cold images against a DVBPR of
synthetic-v1's architecture and user count (random weights: the cost does not depend on the values).

Run: ``.venv/bin/python -m pytest benchmarks/bench_sweep.py --benchmark-enable``.
"""

from __future__ import annotations

import numpy as np
import torch

from aipbench.attacks.insa import insa
from aipbench.protocol import load_protocol
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.nets.cnnf import CNNF


def test_insa_epsilon_sweep(benchmark):
    proto = load_protocol("synthetic-v1")
    cfg = proto.rankers.dvbpr
    torch.manual_seed(0)
    cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=cfg.dropout,
               lrn=cfg.local_response_norm)
    ranker = DVBPR(cnn, proto.data.synthetic.n_users, torch.rand(10_000, cfg.embedding_length)).eval().requires_grad_(False)
    images = np.random.default_rng(0).integers(0, 256, (1000, 3, 64, 64), dtype=np.uint8)

    def sweep():
        return [insa(ranker, images, epsilon=e, steps=50, learning_rate=0.01) for e in proto.threat.epsilon_sweep]

    out = benchmark.pedantic(sweep, rounds=1, iterations=1)
    assert [int(np.abs(o.astype(int) - images).max()) for o in out] == list(proto.threat.epsilon_sweep)
