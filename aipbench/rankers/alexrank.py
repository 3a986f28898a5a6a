"""AlexRank (Eq. 1): p(u, i) = −mean over u's training items j of ‖Φ(x_i) − Φ(x_j)‖², by expanding the square."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.checkpoint import save_state
from aipbench.rankers.spec import BuildInputs, RankerSpec, register_ranker

__all__ = ["AlexRank", "user_profiles"]


def user_profiles(features: torch.Tensor, train_indptr: np.ndarray, train_items: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per user: the mean feature m_u of the training items and the mean squared norm q_u = mean_j ‖Φ_j‖²
    (float64 accumulation, vectorized with ``index_add_``)."""
    dev = features.device
    counts = torch.as_tensor(np.diff(train_indptr), dtype=torch.float64, device=dev)
    users = torch.repeat_interleave(torch.arange(counts.numel(), device=dev),
                                    torch.as_tensor(np.diff(train_indptr), device=dev))
    f = features.double()[torch.as_tensor(np.asarray(train_items), dtype=torch.long, device=dev)]
    mean = torch.zeros(counts.numel(), features.shape[1], dtype=torch.float64, device=dev).index_add_(0, users, f)
    sq = torch.zeros(counts.numel(), dtype=torch.float64, device=dev).index_add_(0, users, f.pow(2).sum(1))
    counts = counts.clamp(min=1)
    return (mean / counts[:, None]).float(), (sq / counts).float()


class AlexRank(Ranker):
    """−mean_j ‖f_i − f_j‖² = ⟨[2 m_u, −1], [f_i, ‖f_i‖²]⟩ − q_u: one matrix product, no loop over j.

    ``extractor`` is the frozen Φ; ``catalog`` holds Φ of every item's catalog image."""

    name = "alexrank"

    def __init__(self, extractor: torch.nn.Module, catalog_features: torch.Tensor, *, mean: torch.Tensor,
                 mean_sq: torch.Tensor):
        super().__init__(catalog_features)
        self.extractor = extractor.eval().requires_grad_(False)
        self.register_buffer("mean", mean.float())
        self.register_buffer("mean_sq", mean_sq.float())

    @classmethod
    def fit(cls, extractor, catalog_features: torch.Tensor, *, train_indptr, train_items) -> "AlexRank":
        mean, mean_sq = user_profiles(catalog_features, train_indptr, train_items)
        return cls(extractor, catalog_features, mean=mean, mean_sq=mean_sq)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "AlexRank":
        state = artifacts.state("alexrank", "alexrank.pt")
        return cls(artifacts.extractor(), artifacts.features(), mean=state["mean"], mean_sq=state["mean_sq"])

    @property
    def n_users(self) -> int:
        return self.mean.shape[0]

    def _use_catalog(self, catalog: torch.Tensor, dataset) -> None:
        """The user profiles are means of the catalog representations: they move with it."""
        super()._use_catalog(catalog, dataset)
        self.mean, self.mean_sq = user_profiles(catalog, dataset.train_indptr, dataset.train_items)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        vec = torch.cat([features, features.pow(2).sum(1, keepdim=True)], 1)
        return Side(vec, features.new_zeros(features.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        m = self.mean[users]
        return Side(torch.cat([2 * m, -torch.ones_like(m[:, :1])], 1), -self.mean_sq[users])


def _build(inputs: BuildInputs, section: None, out: Path) -> None:
    dataset = inputs.dataset()
    mean, mean_sq = user_profiles(inputs.features().to(inputs.device), dataset.train_indptr, dataset.train_items)
    save_state({"mean": mean, "mean_sq": mean_sq}, out / "alexrank.pt")


# No section: AlexRank has nothing to train (its profiles are means of Φ's features), so it is in every protocol.
SPEC = register_ranker(RankerSpec(
    name="alexrank", ranker=AlexRank, build=_build, files=("alexrank.pt",), needs=("dataset", "features"),
    description="AlexRank user profiles (Eq. 1)", order=1))
