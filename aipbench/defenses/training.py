"""Training defenses: a trainer that produces a defended ranker in place of an undefended one (AMR,
paper §7.1, is the reference: VBPR trained with adversarial perturbations of its embeddings)."""

from __future__ import annotations

from aipbench.defenses.handover import Handover

__all__ = ["TrainingContext", "train_defended"]


class TrainingContext(Handover):
    """The hand-over to ``defense.train``: the platform's own data (``dataset`` — its training
    interactions, catalog images), Φ and its cached ``features``, the ``protocol`` (its ranker settings),
    the ``undefended`` ranker being replaced, the protocol's seed and the device."""

    FIELDS = ("dataset", "feature_extractor", "features", "protocol", "undefended", "seed", "device")


def train_defended(defense, *, store, dataset, undefended, device: str = "cpu"):
    """Run ``defense.train`` (with torch's deterministic kernels, as ``aipbench prepare`` trains) and
    return its ranker frozen on ``device``; it must be an aipbench ``Ranker``."""
    from aipbench.defenses.guard import call_defense
    from aipbench.errors import InputError
    from aipbench.pipeline.loaders import load_extractor, load_features
    from aipbench.pipeline.store import deterministic_torch
    from aipbench.rankers.base import Ranker

    context = TrainingContext(dataset=dataset, feature_extractor=load_extractor(store), features=load_features(store),
                              protocol=store.protocol, undefended=undefended, seed=store.protocol.data.seed,
                              device=device)
    with deterministic_torch():
        ranker = call_defense(defense, "train", context)
    if isinstance(ranker, tuple):  # trainers that also return their history
        ranker = ranker[0]
    if not isinstance(ranker, Ranker):
        source = getattr(defense, "_aipbench_source", ("the training defense",))[0]
        raise InputError(f"{source}: train() must return an aipbench Ranker, got {type(ranker).__name__}")
    return ranker.to(device).eval().requires_grad_(False)
