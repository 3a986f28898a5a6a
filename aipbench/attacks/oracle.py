"""The black-box attacker's only window on the recommender: a query oracle (Cohen et al., WSDM '21).

A merchant controls a few accounts on the platform (probe users) and can see where an item's image would
rank in their lists. ``RankOracle`` answers, for each query image, its rank in each probe user's list (the
number of the user's base-set items scored at least as high, so 0 is the top), counts every image queried,
and refuses a query that would pass the budget. It runs in the harness; a sandboxed attack holds a client that
sends its images over its channel (``aipbench.harness.isolation.oracle_link``), so nothing of the ranker ever
reaches the attack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aipbench.rankers.base import Ranker

__all__ = ["PROBE_USERS", "QUERIES_PER_ITEM", "QueryBudgetExceeded", "RankOracle", "probe_users", "rank_oracle"]

PROBE_USERS = 50  # accounts the merchant controls (a seeded sample of the protocol's users)
QUERIES_PER_ITEM = 1000  # images the attack may have ranked, per cold item it attacks


class QueryBudgetExceeded(PermissionError):
    """A query would take the attack past its budget of queried images; nothing was answered."""


def rank_oracle(ranker: "Ranker", base_sets: np.ndarray, *, seed: int, n_items: int, image_size: int) -> "RankOracle":
    """The oracle on ``ranker`` for an attack on ``n_items`` cold items: the protocol's probe users, their
    base sets scored once, a budget of ``QUERIES_PER_ITEM`` images per cold item."""
    import torch

    users = probe_users(len(base_sets), seed)
    rows = np.asarray(base_sets[users])
    unique, where = np.unique(rows, return_inverse=True)
    device = ranker.catalog.device
    with torch.no_grad():
        scores = ranker.score_items(torch.as_tensor(users, device=device), torch.as_tensor(unique, device=device))
        base = scores.gather(1, torch.as_tensor(where.reshape(rows.shape), device=device)).cpu()
    return RankOracle(ranker, users, base, budget=QUERIES_PER_ITEM * n_items, image_size=image_size)


def probe_users(n_users: int, seed: int, k: int = PROBE_USERS) -> np.ndarray:
    """The probe users: ``k`` users drawn without replacement from a generator seeded by (seed, "probe")."""
    rng = np.random.default_rng([int(seed), 0x70726F6265])  # "probe"
    return np.sort(rng.choice(n_users, size=min(k, n_users), replace=False))


class RankOracle:
    """Ranks of query images in the probe users' lists, with a budget of ``budget`` queried images.

    ``base_scores`` are the probe users' scores of their base-set items (P × |B|); an image's rank for user
    u is the number of those scored at least as high as the image (ties against the image)."""

    response = "rank"

    def __init__(self, ranker: "Ranker", users: np.ndarray, base_scores, *, budget: int, image_size: int) -> None:
        import torch

        self._ranker = ranker
        self._users = torch.as_tensor(users, dtype=torch.long, device=ranker.catalog.device)
        self._base = torch.as_tensor(base_scores)
        self.budget, self.used, self.image_size = int(budget), 0, int(image_size)
        self.n_probe_users = len(users)

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def query(self, images) -> np.ndarray:
        """Ranks (int32, N × probe users) of N uint8 images (N×3×S×S, numpy or torch)."""
        import torch

        arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        s = self.image_size
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1:] != (3, s, s):
            raise ValueError(f"an oracle query is a uint8 array of shape N×3×{s}×{s}, got {arr.dtype} {arr.shape}")
        if len(arr) > self.remaining:
            raise QueryBudgetExceeded(f"a query of {len(arr)} images would pass the budget of {self.budget} "
                                      f"queried images ({self.used} used, {self.remaining} left); nothing was answered")
        self.used += len(arr)
        with torch.no_grad():
            scores = self._ranker.score_images(self._users, torch.from_numpy(np.require(arr, requirements=["C", "W"])))  # P × N
            base = self._base.to(scores.device)
            ranks = (base[:, :, None] >= scores[:, None, :]).sum(1)  # P × N
        return ranks.T.contiguous().cpu().numpy().astype(np.int32)

    def describe(self) -> dict:
        return {"response": self.response, "probe_users": self.n_probe_users, "budget": self.budget, "used": self.used}
