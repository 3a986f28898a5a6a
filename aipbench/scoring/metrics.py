"""Base-set scoring: per-user thresholds τ_u^N, the ordinary test items' ranks and AUC, cold items' HR@N.

Tie rule (the protocol's ``metrics.ties = "against-cold-item"``): an item that is scored equal to a
base-set item does not beat it — a cold item hits the top N only if its score is *strictly* above
τ_u^N, and the test item's rank counts every candidate scored at least as high as it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from aipbench.rankers.base import chunked_scores

if TYPE_CHECKING:
    from aipbench.rankers.base import Ranker

__all__ = [
    "BaseSetSummary",
    "ColdItemMetrics",
    "SCORE_MATRIX_BYTES",
    "base_set_scores",
    "cold_hit_rates",
    "cold_hits",
    "cold_item_metrics",
    "compare",
    "image_metrics",
    "prediction_shift",
    "summarize_base_sets",
]


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
        self.test_score = scores[:, -1].clone()
        self.test_rank = (candidates >= test).sum(1)
        self.test_auc = (candidates < test).sum(1).double() / candidates.shape[1]
        self.hit_ranks = tuple(hit_ranks)

    def rows(self, start: int, stop: int) -> "BaseSetSummary":
        """The summary of users ``start:stop`` only (a block of users scored on its own)."""
        part = object.__new__(BaseSetSummary)
        part.thresholds = {n: t[start:stop] for n, t in self.thresholds.items()}
        part.test_score, part.test_rank = self.test_score[start:stop], self.test_rank[start:stop]
        part.test_auc, part.hit_ranks = self.test_auc[start:stop], self.hit_ranks
        return part

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


@dataclasses.dataclass(frozen=True)
class ColdItemMetrics:
    """Per cold item (arrays aligned with the scored items): HR@N over users, availability HR@N of the
    ordinary test items with this item added, and the mean score over users (for Eq. 8)."""

    hit_rate: dict[int, np.ndarray]
    availability: dict[int, np.ndarray]
    mean_score: np.ndarray


@torch.no_grad()
def cold_item_metrics(cold_scores: torch.Tensor, summary: BaseSetSummary, *, chunk: int = 256) -> ColdItemMetrics:
    """Integrity and availability of cold items from their (users × items) scores, ``chunk`` items at a time.

    Integrity: c is in u's top N iff s_u(c) > τ_u^N. Availability: u's test item stays in the top N iff
    r_u + [s_u(c) > s_u(t_u)] < N, r_u its rank among the candidates (ties go against the cold item)."""
    n_items = cold_scores.shape[1]
    hits = {n: np.empty(n_items) for n in summary.hit_ranks}
    avail = {n: np.empty(n_items) for n in summary.hit_ranks}
    means = np.empty(n_items)
    dev = cold_scores.device
    rank, test = summary.test_rank.to(dev)[:, None], summary.test_score.to(dev)[:, None]
    for s in range(0, n_items, chunk):
        block = cold_scores[:, s : s + chunk]
        displaced = rank + (block > test).long()
        for n in summary.hit_ranks:
            hits[n][s : s + block.shape[1]] = cold_hit_rates(block, summary.thresholds[n]).cpu().numpy()
            avail[n][s : s + block.shape[1]] = (displaced < n).double().mean(0).cpu().numpy()
        means[s : s + block.shape[1]] = block.double().mean(0).cpu().numpy()
    return ColdItemMetrics(hits, avail, means)


def prediction_shift(adversarial_mean: np.ndarray, cooperative_mean: np.ndarray) -> tuple[np.ndarray, float]:
    """Eq. 8: Δ_{p_i} = mean_u (p'_{u,i} − p_{u,i}) per item and Δ_set, their mean over the items."""
    delta = np.asarray(adversarial_mean, dtype=np.float64) - np.asarray(cooperative_mean, dtype=np.float64)
    return delta, float(delta.mean())


SCORE_MATRIX_BYTES = 1 << 30  # the largest (users × images) float32 score matrix formed at once


@torch.no_grad()
def image_metrics(ranker: "Ranker", images: np.ndarray, summary: BaseSetSummary, *,
                  max_bytes: int = SCORE_MATRIX_BYTES) -> ColdItemMetrics:
    """``cold_item_metrics`` of new items known by their uint8 images (N×3×H×W), over all users. When the
    users × images score matrix would pass ``max_bytes``, the images are encoded once and the users scored
    in blocks: hit rates and availability are the same numbers (counts of users, divided once), mean scores
    are summed block by block in float64."""
    users, x = ranker.all_users(), torch.from_numpy(np.asarray(images))
    block = max(1, max_bytes // (4 * max(len(x), 1)))
    if users.numel() <= block:
        return cold_item_metrics(ranker.score_images(users, x), summary)
    feats = torch.cat([ranker.encode(x[s : s + 256].to(users.device)) for s in range(0, len(x), 256)])
    total = users.numel()
    hits = {n: np.zeros(len(x)) for n in summary.hit_ranks}
    avail = {n: np.zeros(len(x)) for n in summary.hit_ranks}
    sums = np.zeros(len(x))
    for s in range(0, total, block):
        e = min(s + block, total)
        part = cold_item_metrics(ranker.score_features(users[s:e], feats), summary.rows(s, e))
        for n in summary.hit_ranks:  # a block's rates are its counts over its users: add the counts back up
            hits[n] += np.rint(part.hit_rate[n] * (e - s))
            avail[n] += np.rint(part.availability[n] * (e - s))
        sums += part.mean_score * (e - s)
    return ColdItemMetrics({n: h / total for n, h in hits.items()}, {n: a / total for n, a in avail.items()}, sums / total)


def cold_hits(ranker: "Ranker", images: np.ndarray, summary: BaseSetSummary, *, n: int) -> np.ndarray:
    """Per image: the fraction of all users whose top-``n`` the image (as a cold item) enters."""
    return image_metrics(ranker, images, summary).hit_rate[n]


def compare(adv: np.ndarray, coop: np.ndarray, level: float, *, boot=None) -> dict:
    """Mean adversarial HR, its difference to cooperative, and the paired t-test; with ``boot`` (a
    ``Bootstrap`` over these items) their 95 % intervals."""
    from aipbench.scoring.significance import significance

    out = {"hr": float(adv.mean()), "delta": float((adv - coop).mean()), "test": significance(adv, coop, level)}
    if boot is not None:
        out["interval"] = boot.intervals({"hr": adv, "delta": adv - coop})
    return out
