"""One scoring interface for every ranker: score(u, i) = ⟨user_vec_u, item_vec_i⟩ + item_bias_i + user_bias_u."""

from __future__ import annotations

import abc
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["Ranker", "Side", "chunked_scores"]


class Side(NamedTuple):
    """One side of the bilinear score: vectors (n × d) and biases (n,)."""

    vec: torch.Tensor
    bias: torch.Tensor


def chunked_scores(user: Side, item: Side, *, chunk: int = 4096) -> torch.Tensor:
    """The full (users × items) score matrix, computed ``chunk`` users at a time (bounded temporaries)."""
    out = []
    for s in range(0, user.vec.shape[0], chunk):
        block = torch.addmm(item.bias.unsqueeze(0), user.vec[s : s + chunk], item.vec.T)
        out.append(block + user.bias[s : s + chunk].unsqueeze(1))
    return torch.cat(out) if out else user.vec.new_zeros((0, item.vec.shape[0]))


class Ranker(nn.Module, abc.ABC):
    """A frozen second-stage ranker, written so that every score is one matrix product.

    Subclasses define ``encode`` (pixels → the ranker's visual representation: Φ(x) or Φ_e(x),
    differentiable), ``item_side`` (representation → item vectors and biases; with ``items`` the
    catalog items' own learned terms are added, without them the images are new items that have
    only their visual terms) and ``user_side``. ``catalog`` holds the cached representation of every
    item's catalog image (a buffer), so scoring catalog items never touches pixels.
    """

    name: str = ""  # the model family (alexrank, vbpr, dvbpr, amr): what an attack's objective depends on
    variant: str = ""  # a re-trained instance of the family (e.g. "vbpr-k20"), else empty

    def __init__(self, catalog_features: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("catalog", catalog_features.float(), persistent=False)

    # -- defined by each ranker -----------------------------------------------------------------------

    @abc.abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels (uint8, or float in [0, 1]) → the ranker's visual representation, differentiably."""

    @abc.abstractmethod
    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        """Representation → item vectors and biases (catalog terms added when ``items`` are given)."""

    @abc.abstractmethod
    def user_side(self, users: torch.Tensor) -> Side:
        """User vectors and biases of ``users``."""

    @property
    @abc.abstractmethod
    def n_users(self) -> int:
        """How many users the ranker was trained for."""

    # -- shared ---------------------------------------------------------------------------------------

    def all_users(self) -> torch.Tensor:
        return torch.arange(self.n_users, device=self.catalog.device)

    def catalog_side(self, items: torch.Tensor | None = None) -> Side:
        """Item side of catalog items (all items when ``items`` is None) from the cached representation."""
        if items is None:
            items = torch.arange(self.catalog.shape[0], device=self.catalog.device)
        return self.item_side(self.catalog[items], items)

    def score_items(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(len(users) × len(items)) scores of catalog items with their catalog images."""
        return chunked_scores(self.user_side(users), self.catalog_side(items))

    def score_images(self, users: torch.Tensor, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """(len(users) × len(images)) scores of new items given only their images (uint8, or float in
        [0, 1]); differentiable with respect to float images."""
        device = self.catalog.device
        feats = torch.cat([self.encode(images[s : s + batch_size].to(device)) for s in range(0, images.shape[0], batch_size)])
        return chunked_scores(self.user_side(users), self.item_side(feats))

    def score_features(self, users: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Like ``score_images`` from an already computed representation (e.g. a feature cache)."""
        return chunked_scores(self.user_side(users), self.item_side(features))
