"""A model written in MMRec's style as an aipbench ranker: ``forward()`` → (user embeddings, item embeddings)
computed from the visual features in ``self.v_feat``, ``calculate_loss((users, positives, negatives))`` and
``full_sort_predict((users,))`` (Zhou et al.'s MMRec toolkit: VBPR, LATTICE, BM3, FREEDOM, … share this
form). Subclass ``MMRecRanker`` with ``name`` and ``make_model``, and ``train_mmrec`` trains it (docs/rankers.md,
"Porting an MMRec model")."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import torch
from torch import nn

from aipbench.errors import InputError
from aipbench.firststage.triples import TripleSampler
from aipbench.rankers.base import Ranker, Side

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["MMRecRanker", "check_bilinear", "train_mmrec"]


class MMRecRanker(Ranker):
    """An MMRec-style ``model`` scored through aipbench's interface. A new item known only by its image sits in
    a cold item's slot of ``v_feat`` (a cold item has no interactions, as an upload has none), so a model that
    mixes items (a graph over items) scores it as it would score a new item; a catalog item's image sits in
    its own slot. Scores are ⟨user embedding, item embedding⟩: what ``full_sort_predict`` must be
    (``check_bilinear``)."""

    image_model_name = "extractor"  # MMRec models score pre-extracted features: here, the protocol's Φ

    def __init__(self, model: nn.Module, extractor: nn.Module, catalog_features: torch.Tensor,
                 cold_items: torch.Tensor, n_users: int) -> None:
        super().__init__(catalog_features)
        self.model, self.extractor = model, extractor.eval().requires_grad_(False)
        self.register_buffer("cold_slots", torch.as_tensor(cold_items, dtype=torch.long))
        self.register_buffer("user_count", torch.tensor(int(n_users)))

    @classmethod
    @abc.abstractmethod
    def make_model(cls, *, n_users: int, n_items: int, v_feat: torch.Tensor) -> nn.Module:
        """The untrained MMRec-style model for this many users and items, over the catalog features ``v_feat``."""

    @classmethod
    def create(cls, context) -> "MMRecRanker":
        """The untrained ranker for a ranker submission's training ``context``."""
        dataset, features = context.dataset, context.features.float()
        model = cls.make_model(n_users=dataset.n_users, n_items=dataset.n_items, v_feat=features)
        return cls(model, context.feature_extractor, features, torch.as_tensor(dataset.cold_items), dataset.n_users)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "MMRecRanker":
        state = artifacts.state(cls.name, "ranker.pt")
        features = artifacts.features().float()
        n_users = int(state["user_count"])
        ranker = cls(cls.make_model(n_users=n_users, n_items=features.shape[0], v_feat=features), artifacts.extractor(),
                     features, state["cold_slots"], n_users)
        ranker.load_state_dict({k: v for k, v in state.items() if not k.startswith("extractor.")}, strict=False)
        return ranker

    @property
    def n_users(self) -> int:
        return int(self.user_count)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def _embeddings(self, v_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's forward pass over ``v_feat`` (restored afterwards)."""
        kept = self.model.v_feat
        self.model.v_feat = v_feat
        try:
            users, items = self.model.forward()
        finally:
            self.model.v_feat = kept
        return users, items

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        slots = items if items is not None else self.cold_slots
        out = []
        for s in range(0, features.shape[0], len(slots)):  # as many new images at a time as there are cold slots
            part = features[s : s + len(slots)]
            where = slots[s : s + len(part)] if items is not None else slots[: len(part)]
            v_feat = self.catalog.clone().index_put((where,), part.to(self.catalog.dtype))
            out.append(self._embeddings(v_feat)[1][where])
        vec = torch.cat(out) if out else features.new_zeros((0, self.user_side(self.all_users()[:1]).vec.shape[1]))
        return Side(vec, vec.new_zeros(vec.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        vec = self._embeddings(self.catalog)[0][users]
        return Side(vec, vec.new_zeros(vec.shape[0]))


def check_bilinear(ranker: MMRecRanker, *, users: int = 64, tolerance: float = 1e-4) -> None:
    """Refuse (one line) a model whose ``full_sort_predict`` is not ⟨user embedding, item embedding⟩ of its own
    ``forward()``: aipbench scores every ranker as one matrix product."""
    with torch.no_grad():
        chosen = ranker.all_users()[:users]
        said = ranker.model.full_sort_predict((chosen,))
        user, item = ranker.user_side(chosen), ranker.catalog_side()
        product = user.vec @ item.vec.T
    if tuple(said.shape) != tuple(product.shape) or not torch.allclose(said.float(), product.float(), atol=tolerance,
                                                                       rtol=tolerance):
        raise InputError(f"{type(ranker.model).__name__}: full_sort_predict is not the product of forward()'s user and "
                         "item embeddings; aipbench scores a ranker as one matrix product (user side · item side)")


def train_mmrec(ranker: MMRecRanker, dataset: "Dataset", *, seed: int, epochs: int, batch_size: int,
                learning_rate: float, weight_decay: float = 0.0, device: str = "cpu", progress=None) -> MMRecRanker:
    """Adam on the model's own ``calculate_loss((users, positives, negatives))`` over BPR triples of the training
    interactions (cold items never sampled), seeded by ``seed``; then ``check_bilinear``."""
    torch.manual_seed(seed)  # the model's own randomness (dropout, sampling inside its loss)
    gen = torch.Generator().manual_seed(seed)
    ranker = ranker.to(device)
    sampler = TripleSampler(dataset, batch_size, gen)
    params = [p for p in ranker.model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    for epoch in range(epochs):
        ranker.model.train()
        for u, i, j in sampler.epoch(device):
            loss = ranker.model.calculate_loss((u, i, j))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    ranker.model.eval()
    check_bilinear(ranker)
    return ranker.eval()
