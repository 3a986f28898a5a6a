"""Base-set scoring: per-user thresholds τ_u^N, the ordinary test items' ranks and AUC, cold items' HR@N.

Tie rule (the protocol's ``metrics.ties = "against-cold-item"``): an item that is scored equal to a
base-set item does not beat it — a cold item hits the top N only if its score is *strictly* above
τ_u^N, and the test item's rank counts every candidate scored at least as high as it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from aipbench.rankers.base import chunked_scores

if TYPE_CHECKING:
    from aipbench.rankers.base import Ranker

__all__ = ["BaseSetSummary", "base_set_scores", "cold_hit_rates", "summarize_base_sets"]


@torch.no_grad()
def base_set_scores(ranker: "Ranker", base_sets: np.ndarray, *, chunk: int = 1024) -> torch.Tensor:
    """(users × |B_u|) float32 scores of every user's base set, catalog images: the whole catalog is
    scored ``chunk`` users at a time (one matrix product) and the base-set columns gathered."""
    base = torch.as_tensor(np.asarray(base_sets), dtype=torch.long)
    items = ranker.catalog_side()
    out = torch.empty(base.shape, dtype=torch.float32)
    for s in range(0, base.shape[0], chunk):
        users = torch.arange(s, min(s + chunk, base.shape[0]), device=items.vec.device)
        full = chunked_scores(ranker.user_side(users), items, chunk=chunk)
        out[s : s + users.numel()] = torch.gather(full, 1, base[s : s + users.numel()].to(full.device)).cpu()
    return out


class BaseSetSummary:
    """What every later metric needs from a ranker's base-set scores, computed once.

    ``thresholds[N]`` is τ_u^N, the N-th highest score in B_u (test item included); ``test_rank`` is the
    0-based rank of the test item among its user's candidates (ties against it); ``test_auc`` the
    fraction of candidates scored strictly below the test item.
    """

    def __init__(self, scores: torch.Tensor, hit_ranks: tuple[int, ...]) -> None:
        top = torch.topk(scores, max(hit_ranks), dim=1).values
        self.thresholds = {n: top[:, n - 1].clone() for n in hit_ranks}
        test, candidates = scores[:, -1:], scores[:, :-1]
        self.test_rank = (candidates >= test).sum(1)
        self.test_auc = (candidates < test).sum(1).double() / candidates.shape[1]
        self.hit_ranks = tuple(hit_ranks)

    def test_hit_rate(self, n: int) -> float:
        """HR@N of the ordinary test items inside the base sets."""
        return float((self.test_rank < n).double().mean())


def summarize_base_sets(ranker: "Ranker", base_sets: np.ndarray, hit_ranks=(5, 10, 20)) -> BaseSetSummary:
    return BaseSetSummary(base_set_scores(ranker, base_sets), tuple(hit_ranks))


@torch.no_grad()
def cold_hit_rates(cold_scores: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Per cold item, HR@N over users: the fraction of users u with s(u, c) > τ_u^N.

    ``cold_scores`` is (users × cold items); ``threshold`` is τ^N per user."""
    return (cold_scores > threshold.to(cold_scores.device)[:, None]).double().mean(0)
