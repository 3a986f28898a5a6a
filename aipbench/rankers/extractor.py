"""Φ for the synthetic protocols: pre-train an AlexNet-style classifier over visual attributes, freeze it,
and cache its fc7 features per image hash."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from aipbench.data.synthetic import CLASS_COUNTS, N_NUISANCE
from aipbench.rankers.nets.alexnet import FeatureExtractor, build_extractor

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["FeatureCache", "class_log_probs", "extract_features", "image_hashes", "make_extractor", "nuisance_groups",
           "pretrain_extractor"]

# The synthetic extractor's head: one logit group per attribute (category | colour | pattern).
GROUPS = tuple(CLASS_COUNTS.values())
_HOLDOUT_FRACTION = 0.1


def nuisance_groups(pretrain) -> tuple[int, ...]:
    """The classifier head's extra logit groups: one per nuisance draw of the renderer, ``nuisance_bins``
    logits each (none when the protocol pre-trains on the class attributes alone)."""
    return (pretrain.nuisance_bins,) * N_NUISANCE if pretrain.nuisance_bins else ()


def make_extractor(protocol: "Protocol") -> FeatureExtractor:
    """An extractor of the protocol's architecture (untrained for ``alexnet-style``)."""
    cfg = protocol.rankers.extractor
    if cfg.kind != "alexnet-style":
        return build_extractor(cfg, 1000)
    return build_extractor(cfg, sum(GROUPS) + sum(nuisance_groups(cfg.pretrain)))


def class_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of the joint classes (category × colour) × pattern, from the grouped head
    (the attributes are predicted independently, so the joint log-probability is the sum); nuisance
    logits after the class groups, if the protocol pre-trains with them, are no class and are ignored."""
    cat, col, pat = (F.log_softmax(g, dim=1) for g in torch.split(logits[:, : sum(GROUPS)], GROUPS, dim=1))
    return (cat[:, :, None, None] + col[:, None, :, None] + pat[:, None, None, :]).flatten(1)


def _grouped_loss(logits: torch.Tensor, labels: torch.Tensor, groups: tuple[int, ...], nuisance_weight: float) -> torch.Tensor:
    """Cross-entropy per logit group: weight 1 for the class attributes, ``nuisance_weight`` after them."""
    return sum((1.0 if k < len(GROUPS) else nuisance_weight) * F.cross_entropy(g, labels[:, k])
               for k, g in enumerate(torch.split(logits, groups, dim=1)))


def pretrain_extractor(protocol: "Protocol", *, device: str = "cpu", progress: bool = False
                       ) -> tuple[FeatureExtractor, dict]:
    """Train the extractor on the protocol's generated pre-training set (disjoint from the catalog)
    to predict category, colour and pattern (and the binned nuisance draws, if the protocol says so);
    returns it frozen (eval mode) and a history with the held-out accuracy per target. Deterministic
    from ``pretrain.seed``; trained on ``device``."""
    from aipbench.data.synthetic import nuisance_labels, pretraining_set
    from aipbench.rankers.precision import autocast

    precision = protocol.compute.precision if protocol.compute else None
    cfg = protocol.rankers.extractor.pretrain
    if cfg is None:
        raise ValueError(f"protocol {protocol.name!r} has no extractor pre-training settings")
    torch.manual_seed(cfg.seed)  # dropout masks
    gen = torch.Generator().manual_seed(cfg.seed)
    model = make_extractor(protocol).to(device)
    images, attrs = pretraining_set(protocol, cfg.n_images, cfg.seed)
    labels, names = torch.stack([attrs[k] for k in CLASS_COUNTS], 1), list(CLASS_COUNTS)
    groups = GROUPS + nuisance_groups(cfg)
    if cfg.nuisance_bins:
        labels = torch.cat([labels, nuisance_labels(cfg.n_images, cfg.seed, cfg.nuisance_bins)], 1)
        names += [f"nuisance{k}" for k in range(N_NUISANCE)]
    n_hold = max(1, int(cfg.n_images * _HOLDOUT_FRACTION))
    n_train = cfg.n_images - n_hold
    x = torch.from_numpy(images)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    history: dict = {"loss": [], "holdout_accuracy": []}
    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="extractor", unit="epoch")
    for _ in epochs:
        model.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for s in range(0, n_train, cfg.batch_size):
            b = order[s : s + cfg.batch_size]
            with autocast(precision, device):
                logits = model.classifier[6](model(x[b].to(device))).float()
            loss = _grouped_loss(logits, labels[b].to(device), groups, cfg.nuisance_weight or 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * b.numel()
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model.logits(x[s : s + 512].to(device)).cpu() for s in range(n_train, cfg.n_images, 512)])
        acc = {k: float((g.argmax(1) == labels[n_train:, i]).float().mean())
               for i, (k, g) in enumerate(zip(names, torch.split(logits, groups, dim=1)))}
        history["loss"].append(total / n_train)
        history["holdout_accuracy"].append(acc)
    return model.eval().requires_grad_(False), history


@torch.no_grad()
def extract_features(extractor: torch.nn.Module, images, *, batch_size: int = 512, progress: bool = False) -> torch.Tensor:
    """Φ(x) (fc7 after ReLU, float32) of uint8 images (N×3×H×W numpy or tensor), batched, in eval mode."""
    extractor.eval()
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="features", unit="batch")
    device = next(extractor.parameters()).device
    return torch.cat([extractor(torch.from_numpy(np.array(images[s : s + batch_size])).to(device)).cpu() for s in starts])


def image_hashes(images) -> list[str]:
    """SHA-256 of each uint8 image's bytes (C-contiguous N×3×H×W)."""
    arr = np.ascontiguousarray(np.asarray(images, dtype=np.uint8))
    return [hashlib.sha256(a.tobytes()).hexdigest() for a in arr]


class FeatureCache:
    """Φ(x) keyed by the image's SHA-256: known images (the catalog, cooperative cold images) are read,
    new ones computed once in a batch and remembered."""

    def __init__(self, extractor: torch.nn.Module, hashes: list[str], features: torch.Tensor, *, batch_size: int = 512):
        self.extractor, self.batch_size = extractor, batch_size
        self.rows = {h: i for i, h in enumerate(hashes)}
        self.table = [features]
        self.size = features.shape[0]
        self.misses = 0

    def __call__(self, images) -> torch.Tensor:
        keys = image_hashes(images)
        new = [i for i, k in enumerate(keys) if k not in self.rows]
        if new:
            fresh = extract_features(self.extractor, np.asarray(images)[new], batch_size=self.batch_size)
            for j, i in enumerate(new):
                self.rows.setdefault(keys[i], self.size + j)
            self.table.append(fresh)
            self.size += fresh.shape[0]
            self.misses += len(new)
        table = torch.cat(self.table) if len(self.table) > 1 else self.table[0]
        self.table = [table]
        return table[torch.as_tensor([self.rows[k] for k in keys], dtype=torch.long)]
