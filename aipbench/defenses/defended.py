"""A ranker behind a transform defense: every image it sees — catalog, training profiles, uploads —
passes through the transform (so the defense's price in clean quality is measured too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from aipbench.defenses.transforms import Transformed, apply_transform

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.rankers.base import Ranker

__all__ = ["defend"]


@torch.no_grad()
def defend(ranker: "Ranker", defense, dataset: "Dataset", *, batch_size: int = 512) -> "Ranker":
    """A copy of ``ranker`` whose image model is wrapped by the defense (``Transformed``: uploads are
    transformed, gradients pass straight through) and whose catalog representations — and whatever the
    ranker computed from them, e.g. AlexRank's user profiles — come from the transformed catalog images."""
    from aipbench.rankers.extractor import extract_features

    catalog = extract_features(ranker.image_model, apply_transform(defense, dataset.images), batch_size=batch_size)
    return ranker.with_image_model(lambda model: Transformed(model, defense), catalog=catalog, dataset=dataset)
