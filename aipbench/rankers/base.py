"""One scoring interface for every ranker: score(u, i) = ⟨user_vec_u, item_vec_i⟩ + item_bias_i + user_bias_u."""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.protocol.schema import Protocol as BenchmarkProtocol

__all__ = ["ArtifactReader", "Ranker", "Side", "chunked_scores"]


class ArtifactReader(Protocol):
    """What a ranker loads itself from: the protocol and its built artifacts (``aipbench.pipeline``)."""

    protocol: "BenchmarkProtocol"

    def state(self, artifact: str, file: str) -> dict:
        """A torch state dict stored in ``artifact``'s ``file``, on the CPU."""

    def array(self, artifact: str, file: str) -> np.ndarray:
        """A NumPy array stored in ``artifact``'s ``file``."""

    def path(self, artifact: str, file: str):
        """Where ``artifact``'s ``file`` is (checked against the manifest)."""

    def extractor(self) -> nn.Module:
        """The protocol's frozen feature extractor Φ."""

    def features(self) -> torch.Tensor:
        """Φ of every item's catalog image (float32, items × features)."""


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
    # The image model (pixels → representation) and what it is: the protocol's pre-trained Φ, which every
    # ranker built on it shares (AlexRank, VBPR, AMR), or a ranker's own trained network (DVBPR's Φ_e).
    _image_attr: str = "extractor"
    image_model_name: str = "extractor"

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

    @classmethod
    @abc.abstractmethod
    def load(cls, artifacts: ArtifactReader, *, length: int | None = None, replica: int | None = None) -> "Ranker":
        """The trained ranker from the protocol's artifacts; ``length``: its Figure 5 re-training at that
        embedding length (artifact ``<name>-k<length>``); ``replica``: its re-training with another derived
        seed (``<name>-r<replica>``, ``aipbench.rankers.replicas``)."""

    # -- shared ---------------------------------------------------------------------------------------

    @property
    def instance(self) -> str:
        """This trained instance: the variant's name (e.g. ``vbpr-k20``), else the family's."""
        return self.variant or self.name

    @property
    def image_model(self) -> nn.Module:
        """The model from pixels to the ranker's visual representation (Φ, or DVBPR's Φ_e)."""
        return getattr(self, self._image_attr)

    @property
    def image_model_target(self) -> str:
        """What an attack on the image model alone targets: the shared Φ, or this instance's own network."""
        return "extractor" if self.image_model_name == "extractor" else self.instance

    def with_image_model(self, wrap: Callable[[nn.Module], nn.Module], *, catalog: torch.Tensor | None = None,
                         dataset: "Dataset | None" = None) -> "Ranker":
        """A frozen copy whose image model is ``wrap(model)`` (e.g. behind a defense). With ``catalog`` (the
        catalog images' representations as that wrapped model sees them), the copy scores catalog items by
        them, and whatever else was computed from the catalog is recomputed from ``dataset``."""
        wrapped = copy.deepcopy(self)
        if catalog is not None:
            wrapped._use_catalog(catalog.to(self.catalog.device), dataset)
        setattr(wrapped, self._image_attr, wrap(getattr(wrapped, self._image_attr)))
        return wrapped.eval().requires_grad_(False)

    def _use_catalog(self, catalog: torch.Tensor, dataset: "Dataset | None") -> None:
        self.catalog = catalog.float()

    @torch.no_grad()
    def user_sum(self) -> Side:
        """The user side summed over all users."""
        side = self.user_side(self.all_users())
        return Side(side.vec.sum(0), side.bias.sum())

    def summed_preference(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Σ_u p(u, x) over all users, as a function of the representation of new items' images x: one
        product per image, not a sum over users (Eq. 6's plain sum)."""
        total, n = self.user_sum(), self.n_users

        def summed(features: torch.Tensor) -> torch.Tensor:
            items = self.item_side(features)
            return items.vec @ total.vec + total.bias + n * items.bias

        return summed

    def all_users(self) -> torch.Tensor:
        """The ids of every user, 0 .. n_users − 1, on the ranker's device."""
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
