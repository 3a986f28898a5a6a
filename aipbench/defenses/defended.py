"""A ranker behind a transform defense: every image it sees — catalog, training profiles, uploads —
passes through the transform (so the defense's price in clean quality is measured too)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from aipbench.defenses.transforms import Transformed, apply_transform

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.rankers.base import Ranker

__all__ = ["defend", "with_image_model"]


@torch.no_grad()
def defend(ranker: "Ranker", defense, dataset: "Dataset", *, batch_size: int = 512) -> "Ranker":
    """A copy of ``ranker`` whose image model is wrapped by the defense (``Transformed``: uploads are
    transformed, gradients pass straight through) and whose catalog representations — and, for
    AlexRank, user profiles — are recomputed from the transformed catalog images."""
    from aipbench.rankers.alexrank import AlexRank, user_profiles
    from aipbench.rankers.extractor import extract_features

    defended = copy.deepcopy(ranker)
    attr = "cnn" if hasattr(defended, "cnn") else "extractor"
    model = getattr(defended, attr)
    device = defended.catalog.device
    feats = extract_features(model, apply_transform(defense, dataset.images), batch_size=batch_size).to(device)
    defended.catalog = feats.float()
    if isinstance(defended, AlexRank):
        mean, mean_sq = user_profiles(feats.cpu(), dataset.train_indptr, dataset.train_items)
        defended.mean, defended.mean_sq = mean.to(device), mean_sq.to(device)
    setattr(defended, attr, Transformed(model, defense))
    return defended.eval().requires_grad_(False)


def with_image_model(ranker: "Ranker", wrap) -> "Ranker":
    """A copy of ``ranker`` whose image model (Φ, or DVBPR's CNN) is ``wrap(model)``; nothing else changes."""
    wrapped = copy.deepcopy(ranker)
    attr = "cnn" if hasattr(wrapped, "cnn") else "extractor"
    setattr(wrapped, attr, wrap(getattr(wrapped, attr)))
    return wrapped.eval().requires_grad_(False)
