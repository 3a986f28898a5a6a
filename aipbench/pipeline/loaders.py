"""Typed loaders of built artifacts: the data set, BPR, candidate and base sets, Φ, features, rankers."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.pipeline.store import ArtifactStore

if TYPE_CHECKING:
    import torch

    from aipbench.data.dataset import Dataset
    from aipbench.rankers.base import Ranker

__all__ = ["StoreArtifacts", "load_base_sets", "load_bpr", "load_candidates", "load_dataset", "load_extractor",
           "load_feature_cache", "load_features", "load_ranker", "load_source"]


def _torch_load(data: bytes) -> dict:
    import io

    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _array(data: bytes) -> np.ndarray:
    import io

    return np.load(io.BytesIO(data), allow_pickle=False)


def load_dataset(store: ArtifactStore) -> "Dataset":
    from aipbench.data.dataset import Dataset

    if "images.bin" in store.steps["dataset"].files:  # an imported data set: its JPEGs, decoded when needed
        from aipbench.data.packed import PackedImages

        images = PackedImages(store.path("dataset", "images.bin"), store.path("dataset", "image_offsets.npy"),
                              store.protocol.data.image_size)
        return Dataset.load(_interactions(store), images)
    return Dataset.load(_interactions(store), store.path("dataset", "images.npy"))


def _interactions(store: ArtifactStore):
    import io

    return io.BytesIO(store.read_verified("dataset", "interactions.npz"))


def load_source(store: ArtifactStore) -> dict | None:
    """What `aipbench data import` measured of a real data set's file (its SHA-256, counts, the hook's
    id), or None for a generated data set."""
    if "source.json" not in store.steps["dataset"].files:
        return None
    import json

    return json.loads(store.read_verified("dataset", "source.json"))


def load_bpr(store: ArtifactStore):
    from aipbench.firststage.bpr import BPR

    state = _torch_load(store.read_verified("bpr", "bpr.pt"))
    n_users, k = state["user_factors.weight"].shape
    model = BPR(n_users, state["item_factors.weight"].shape[0], k, init_std=0.0, seed=0)
    model.load_state_dict(state)
    return model.eval()


def load_candidates(store: ArtifactStore) -> np.ndarray:
    return _array(store.read_verified("candidates", "candidates.npy"))


def load_base_sets(store: ArtifactStore, dataset: "Dataset | None" = None) -> np.ndarray:
    """Each user's base set: the BPR candidates and, in the last column, the user's test item."""
    from aipbench.firststage.candidates import base_sets

    return base_sets(load_candidates(store), (dataset or load_dataset(store)).test_items,
                     test_may_repeat=store.protocol.bpr.candidate_rule == "all-items")


def load_extractor(store: ArtifactStore):
    """Φ, frozen (eval mode, no parameter gradients)."""
    from aipbench.rankers.extractor import make_extractor
    from aipbench.rankers.nets.alexnet import FeatureExtractor

    cfg = store.protocol.rankers.extractor
    state = _torch_load(store.read_verified("extractor", "extractor.pt"))
    # torchvision's AlexNet is rebuilt bare here: its weights are the artifact, not a download
    model = make_extractor(store.protocol) if cfg.kind == "alexnet-style" else FeatureExtractor(cfg.conv_widths,
                                                                                                  cfg.fc_width, 1000)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def load_features(store: ArtifactStore) -> "torch.Tensor":
    import torch

    return torch.from_numpy(_array(store.read_verified("features", "features.npy")))


def load_feature_cache(store: ArtifactStore):
    """Φ keyed by image SHA-256, seeded with every catalog and cooperative cold image."""
    from aipbench.rankers.extractor import FeatureCache

    hashes = store.read_verified("features", "image_sha256.txt").decode().split()
    return FeatureCache(load_extractor(store), hashes, load_features(store),
                        batch_size=store.protocol.rankers.extractor.batch_size)


class StoreArtifacts:
    """A store as the rankers' ``ArtifactReader``: Φ and its features loaded once, on first use."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store, self.protocol = store, store.protocol

    def path(self, artifact: str, file: str) -> Path:
        return self.store.path(artifact, file)

    def state(self, artifact: str, file: str) -> dict:
        return _torch_load(self.store.read_verified(artifact, file))

    def array(self, artifact: str, file: str) -> np.ndarray:
        return _array(self.store.read_verified(artifact, file))

    def extractor(self):
        return load_extractor(self.store)

    @cached_property
    def _features(self):
        return load_features(self.store)

    def features(self):
        return self._features


def load_ranker(store: ArtifactStore, name: str, device: str = "cpu", *, length: int | None = None,
                replica: int | None = None, artifacts: StoreArtifacts | None = None) -> "Ranker":
    """The named ranker (``length``: its Figure 5 re-training at that embedding length; ``replica``: its
    re-training with another derived seed), frozen (eval mode, no parameter gradients), on ``device``;
    pixels stay differentiable. Rankers loaded through one ``artifacts`` reader share its copy of the
    catalog features."""
    from aipbench.rankers.registry import ranker_class

    ranker = ranker_class(name).load(artifacts or StoreArtifacts(store), length=length, replica=replica)
    return ranker.eval().requires_grad_(False).to(device)
