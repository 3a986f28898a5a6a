"""Training defenses: a trainer that produces a defended ranker in place of an undefended one (AMR,
paper §7.1, is the reference: VBPR trained with adversarial perturbations of its embeddings)."""

from __future__ import annotations

import hashlib
import torch

from aipbench.defenses.handover import Handover

__all__ = ["TrainingContext", "state_sha256", "train_defended"]

class TrainingContext(Handover):
    """The hand-over to ``defense.train``: the platform's own data (``dataset`` — its training
    interactions, catalog images), Φ and its cached ``features``, the ``protocol`` (its ranker settings),
    the ``undefended`` ranker being replaced, the protocol's seed and the device."""

    FIELDS = ("dataset", "feature_extractor", "features", "protocol", "undefended", "seed", "device")


def state_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over a model's state: every entry's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        t = value.detach().cpu().contiguous()
        h.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def train_defended(defense, store, dataset, undefended, device: str = "cpu"):
    """Run ``defense.train`` (with torch's deterministic kernels, as ``aipbench prepare`` trains) and
    return its ranker frozen on ``device``; it must be an aipbench ``Ranker``."""
    from aipbench.artifacts import deterministic_torch
    from aipbench.errors import InputError
    from aipbench.rankers.base import Ranker
    from aipbench.ranker_steps import load_extractor, load_features

    context = TrainingContext(dataset=dataset, feature_extractor=load_extractor(store), features=load_features(store),
                              protocol=store.protocol, undefended=undefended, seed=store.protocol.data.seed,
                              device=device)
    with deterministic_torch():
        ranker = defense.train(context)
    if isinstance(ranker, tuple):  # trainers that also return their history
        ranker = ranker[0]
    if not isinstance(ranker, Ranker):
        source = getattr(defense, "_aipbench_source", ("the training defense",))[0]
        raise InputError(f"{source}: train() must return an aipbench Ranker, got {type(ranker).__name__}")
    return ranker.to(device).eval().requires_grad_(False)
