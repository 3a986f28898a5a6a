"""Build the context each knowledge level is granted, from a prepared protocol's artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from aipbench.attacks.context import GRANTS, AttackContext
from aipbench.attacks.oracle import rank_oracle

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.pipeline.prepared import Prepared
    from aipbench.pipeline.store import ArtifactStore
    from aipbench.rankers.base import Ranker

__all__ = ["CONTEXT_ARTIFACTS", "Classifier", "attack_target", "build_context", "popular_class"]

# What a context may load besides the ranker itself: Φ (insider, and the classifier on it) and the cached
# catalog features (TAaMR's popular class). An evaluation prepares these with its rankers, so a cache
# holding only, say, DVBPR can still grant every level.
CONTEXT_ARTIFACTS = ("extractor", "features")


class Classifier(nn.Module):
    """The pre-trained image classifier behind Φ: uint8 or [0, 1] images → class log-probabilities
    (the synthetic extractor's joint category × colour × pattern classes; ImageNet's 1,000 otherwise)."""

    def __init__(self, extractor: nn.Module, joint: bool) -> None:
        super().__init__()
        self.extractor, self.joint = extractor, joint

    def forward(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        return self.log_probs_from_features(self.extractor(images))

    def log_probs_from_features(self, features: torch.Tensor) -> torch.Tensor:
        from aipbench.rankers.extractor import class_log_probs

        logits = self.extractor.classifier[6](features)
        return class_log_probs(logits) if self.joint else torch.log_softmax(logits, dim=1)


def _classifier(store: "ArtifactStore", extractor: nn.Module | None = None) -> Classifier:
    """The protocol's classifier, on ``extractor`` (default: the stored pre-trained one)."""
    from aipbench.pipeline.loaders import load_extractor

    joint = store.protocol.rankers.extractor.kind == "alexnet-style"
    return Classifier(load_extractor(store) if extractor is None else extractor, joint).eval()


@torch.no_grad()
def popular_class(store: "ArtifactStore", dataset: "Dataset") -> int:
    """TAaMR's target: the classifier's class with the most training interactions, each catalog item
    counted as its predicted class (from the cached features, so no image is re-encoded)."""
    from aipbench.pipeline.loaders import load_features

    predicted = _classifier(store).log_probs_from_features(load_features(store)).argmax(1).numpy()
    return int(np.bincount(predicted, weights=dataset.item_train_counts()).argmax())


def attack_target(knowledge: str, ranker: "Ranker") -> str:
    """Which rankers share one attack run: an insider attacks each ranker instance; an expert attacks each
    image model (Φ is shared by AlexRank, VBPR and AMR; a DVBPR has its own Φ_e, named after the ranker);
    semantic and classifier attacks do not depend on the ranker at all. A re-trained variant of a ranker
    (e.g. Figure 5's ``vbpr-k20``) is its own target."""
    if knowledge in ("insider", "blackbox"):  # a black-box attack queries one ranker instance
        return ranker.instance
    if knowledge == "expert":
        return ranker.image_model_target
    return "any"


def build_context(
    prepared: "Prepared",
    ranker: "Ranker",
    knowledge: str,
    *,
    epsilon: int | None,
    items: np.ndarray | None = None,
    wrap=None,
) -> AttackContext:
    """The context for an attack of ``knowledge`` on ``ranker``: public fields plus exactly the level's
    grants (nothing else is loaded into it). Modules are frozen and on the prepared device. ``items``
    limits the cold items attacked; ``wrap`` puts the image models the context loads itself (Φ for DVBPR's
    classifier) behind the same defense as the (already defended) ranker, for adaptive attacks."""
    store, dataset, device = prepared.store, prepared.dataset, prepared.device
    cold = dataset.cold_items if items is None else np.asarray(items)

    def extractor():  # Φ as this ranker sees it (behind the defense, if any); loaded only when granted
        if ranker.image_model_name == "extractor":
            return ranker.image_model
        from aipbench.pipeline.loaders import load_extractor

        phi = load_extractor(store).to(device)
        return phi if wrap is None else wrap(phi)

    public = {
        "cold_items": cold.copy(),
        "cold_images": prepared.cooperative_images(cold).copy(),
        "catalog_images": dataset.images,
        "epsilon": epsilon,
        "seed": store.protocol.data.seed,
        "device": device,
        "image_size": dataset.image_size,
    }
    makers = {
        "ranker": lambda: ranker,
        "user_embeddings": lambda: ranker.user_side(ranker.all_users()),
        "feature_extractor": extractor,
        "training_interactions": lambda: np.stack([dataset.train_users, dataset.train_items.astype(np.int64)], 1),
        "hook_item": lambda: int(dataset.hook_item),
        "hook_image": lambda: np.asarray(dataset.images[dataset.hook_item]).copy(),
        "image_model": lambda: ranker.image_model,
        # the contract's two kinds: the protocol's Φ, or a network the ranker trained itself (a submitted ranker's
        # "own" is what DVBPR's Φ_e is to an expert attack such as EXPA)
        "image_model_name": lambda: "extractor" if ranker.image_model_name == "extractor" else "dvbpr",
        "classifier": lambda: _classifier(store, extractor()).to(device),
        "popular_class": lambda: popular_class(store, dataset),
        "oracle": lambda: rank_oracle(ranker, prepared.base_sets, seed=store.protocol.data.seed, n_items=len(cold),
                                      image_size=dataset.image_size),
    }
    granted = {name: makers[name]() for name in sorted(GRANTS[knowledge])}
    return AttackContext(knowledge, public=public, granted=granted)
