"""The MMRec-style VBPR of model.py as an aipbench ranker submission: the whole port."""

from __future__ import annotations

from model import VBPR

from aipbench.rankers.mmrec import MMRecRanker, train_mmrec


class MMRecVBPR(MMRecRanker):
    name = "mmrec-vbpr"

    @classmethod
    def make_model(cls, *, n_users, n_items, v_feat):
        return VBPR(n_users, n_items, v_feat, embedding_size=16, reg_weight=1e-4)


def train(context) -> MMRecVBPR:
    return train_mmrec(MMRecVBPR.create(context), context.dataset, seed=context.seed, epochs=10, batch_size=1024,
                       learning_rate=0.005, device=context.device, progress=context.progress)
