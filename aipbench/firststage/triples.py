"""BPR-loss training plumbing shared by the first stage and the visual rankers: triples, best epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["BestEpoch", "TripleSampler", "sample_negatives"]

_MAX_RESAMPLE_ROUNDS = 1000


def sample_negatives(
    users: torch.Tensor,
    pool: torch.Tensor,
    positive_keys: torch.Tensor,
    *,
    n_items: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """For each user, an item drawn uniformly from ``pool`` that is not among the user's positives.

    ``positive_keys`` are the sorted keys ``user * n_items + item`` of the positives; draws that hit one
    are redrawn, all at once, until none does.
    """
    j = pool[torch.randint(pool.numel(), users.shape, generator=generator)]
    todo = torch.arange(users.numel())
    for _ in range(_MAX_RESAMPLE_ROUNDS):
        keys = users[todo] * n_items + j[todo]
        at = torch.searchsorted(positive_keys, keys).clamp_(max=positive_keys.numel() - 1)
        hit = positive_keys[at] == keys
        if not bool(hit.any()):
            return j
        todo = todo[hit]
        j[todo] = pool[torch.randint(pool.numel(), todo.shape, generator=generator)]
    raise ValueError(
        f"could not draw a negative item for user {int(users[todo[0]])}: "
        "the user has trained on (nearly) every catalog item"
    )


class TripleSampler:
    """Each epoch: every training pair (u, i) once in a seeded order, in ⌈nnz / batch_size⌉ batches, each
    with a negative j drawn uniformly from the catalog (cold items never take part, not even as
    negatives) and redrawn while it is among u's training items."""

    def __init__(self, dataset: "Dataset", batch_size: int, generator: torch.Generator) -> None:
        self.users = torch.as_tensor(dataset.train_users, dtype=torch.long)
        self.items = torch.as_tensor(np.asarray(dataset.train_items), dtype=torch.long)
        if self.items.numel() == 0:
            raise ValueError("the data set has no training interactions")
        self.n_items = dataset.n_items
        self.keys = torch.sort(self.users * self.n_items + self.items).values
        self.catalog = torch.as_tensor(dataset.catalog_items, dtype=torch.long)
        self.batch_size, self.gen = batch_size, generator

    @property
    def n_pairs(self) -> int:
        return self.items.numel()

    def epoch(self, device: str | torch.device = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch's batches (u, i, j) on ``device``; drawn on the CPU, so every device trains on the same
        triples."""
        order = torch.randperm(self.n_pairs, generator=self.gen)
        for s in range(0, self.n_pairs, self.batch_size):
            b = order[s : s + self.batch_size]
            u, i = self.users[b], self.items[b]
            j = sample_negatives(u, self.catalog, self.keys, n_items=self.n_items, generator=self.gen)
            yield u.to(device), i.to(device), j.to(device)


class BestEpoch:
    """The epochs to run (a progress bar when asked) and the state of the epoch with the best
    validation AUC (the earliest on a tie), with a JSON-ready history: ``loss`` and ``validation_auc``
    per epoch, ``best_epoch`` (from 1) and ``best_validation_auc``."""

    def __init__(self, name: str, epochs: int, *, progress: bool = False) -> None:
        self.name = name
        self.history: dict = {"loss": [], "validation_auc": [], "best_epoch": 0, "best_validation_auc": -math.inf}
        self.state: dict[str, torch.Tensor] | None = None
        self.epochs = range(1, epochs + 1)
        self._bar = None
        if progress:
            from tqdm.auto import tqdm

            self._bar = self.epochs = tqdm(self.epochs, desc=name, unit="epoch")

    def update(self, model: torch.nn.Module, epoch: int, *, loss: float, auc: float) -> None:
        self.history["loss"].append(loss)
        self.history["validation_auc"].append(auc)
        if auc > self.history["best_validation_auc"]:
            self.history["best_epoch"], self.history["best_validation_auc"] = epoch, auc
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}", val_auc=f"{auc:.4f}")

    def restore(self, model: torch.nn.Module, hint: str) -> dict:
        """Load the best epoch's state into ``model``; returns the history."""
        if self.state is None or not all(torch.isfinite(v).all() for v in self.state.values()):
            raise ValueError(f"{self.name} training diverged (non-finite weights or validation AUC); {hint}")
        model.load_state_dict(self.state)
        return self.history
