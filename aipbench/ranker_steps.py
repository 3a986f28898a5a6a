"""Artifact steps for Φ, its cached features and the four rankers, and the loaders that rebuild them frozen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.artifacts import ArtifactError, ArtifactStore, Step
from aipbench.pipeline import PROGRESS, load_dataset
from aipbench.registry import Registry

if TYPE_CHECKING:
    import torch

    from aipbench.rankers.base import Ranker

__all__ = ["EMBEDDING_LENGTHS", "RANKERS", "RANKER_STEPS", "length_steps", "load_extractor", "load_feature_cache",
           "length_artifact", "load_features", "load_length_variant", "load_ranker"]

# The paper's Figure 5: the embedding lengths at which VBPR and DVBPR are re-trained (all else equal).
EMBEDDING_LENGTHS = {"vbpr": (20, 50, 100), "dvbpr": (10, 30, 50, 100)}

# name -> loader(store) -> Ranker; the order is the paper's (Table 4's columns).
RANKERS: Registry = Registry("ranker")


def _save(obj, path: Path) -> None:
    import torch

    torch.save(obj, path)


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _write_history(history: dict, out: Path) -> None:
    (out / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")


def _own_state(model: "torch.nn.Module") -> dict:
    """The ranker's own parameters: the frozen extractor lives in its own artifact."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("extractor.")}


# -- builders ------------------------------------------------------------------------------------------------


def _build_extractor(store: ArtifactStore, out: Path) -> None:
    from aipbench.rankers.extractor import make_extractor, pretrain_extractor

    if store.protocol.rankers.extractor.kind == "alexnet-style":
        model, history = pretrain_extractor(store.protocol, progress=PROGRESS)
    else:
        model, history = make_extractor(store.protocol), {"weights": "torchvision AlexNet_Weights.IMAGENET1K_V1"}
    _save(model.state_dict(), out / "extractor.pt")
    _write_history(history, out)


def _build_features(store: ArtifactStore, out: Path) -> None:
    from aipbench.rankers.extractor import extract_features, image_hashes

    images = load_dataset(store).images
    feats = extract_features(load_extractor(store), images, batch_size=store.protocol.rankers.extractor.batch_size,
                             progress=PROGRESS)
    with open(out / "features.npy", "wb") as fh:
        np.save(fh, feats.numpy().astype(np.float32))
    hashes = [h for s in range(0, len(images), 4096) for h in image_hashes(images[s : s + 4096])]
    (out / "image_sha256.txt").write_text("\n".join(hashes) + "\n")


def _build_alexrank(store: ArtifactStore, out: Path) -> None:
    from aipbench.rankers.alexrank import user_profiles

    dataset = load_dataset(store)
    mean, mean_sq = user_profiles(load_features(store), dataset.train_indptr, dataset.train_items)
    _save({"mean": mean, "mean_sq": mean_sq}, out / "alexrank.pt")


def _with_length(cfg, length: int | None):
    import dataclasses

    return cfg if length is None else dataclasses.replace(cfg, embedding_length=length)


def _build_vbpr(store: ArtifactStore, out: Path, length: int | None = None) -> None:
    from aipbench.rankers.training import train_vbpr

    model, history = train_vbpr(load_dataset(store), load_extractor(store), load_features(store),
                                _with_length(store.protocol.rankers.vbpr, length), progress=PROGRESS)
    _save(_own_state(model), out / "vbpr.pt")
    _write_history(history, out)


def _build_amr(store: ArtifactStore, out: Path) -> None:
    from aipbench.rankers.training import train_amr

    extractor = load_extractor(store)
    vbpr_state = {**_load(store.path("vbpr", "vbpr.pt")), **{f"extractor.{k}": v for k, v in extractor.state_dict().items()}}
    model, history = train_amr(load_dataset(store), extractor, load_features(store), store.protocol.rankers.amr,
                               vbpr_state=vbpr_state, progress=PROGRESS)
    _save(_own_state(model), out / "amr.pt")
    _write_history(history, out)


def _build_dvbpr(store: ArtifactStore, out: Path, length: int | None = None) -> None:
    from aipbench.rankers.training import train_dvbpr

    model, history = train_dvbpr(load_dataset(store), _with_length(store.protocol.rankers.dvbpr, length),
                                 progress=PROGRESS)
    _save(_own_state(model), out / "dvbpr.pt")
    with open(out / "item_embeddings.npy", "wb") as fh:
        np.save(fh, model.catalog.numpy().astype(np.float32))
    _write_history(history, out)


RANKER_STEPS: tuple[Step, ...] = (
    Step("extractor", ("extractor.pt", "history.json"), (), _build_extractor, "Φ: pre-trained, frozen"),
    Step("features", ("features.npy", "image_sha256.txt"), ("dataset", "extractor"), _build_features,
         "Φ(x) of every item image"),
    Step("alexrank", ("alexrank.pt",), ("dataset", "features"), _build_alexrank, "AlexRank user profiles (Eq. 1)"),
    Step("vbpr", ("vbpr.pt", "history.json"), ("dataset", "features"), _build_vbpr, "VBPR (Eq. 2, BPR loss of Eq. 4)"),
    Step("dvbpr", ("dvbpr.pt", "item_embeddings.npy", "history.json"), ("dataset",), _build_dvbpr,
         "DVBPR (Eq. 5), CNN-F end to end"),
    Step("amr", ("amr.pt", "history.json"), ("dataset", "features", "vbpr"), _build_amr, "AMR (Eq. 10-11)"),
)


def length_steps(protocol) -> tuple[Step, ...]:
    """Optional steps ``vbpr-k20``, ``dvbpr-k10``, …: the ranker re-trained at each Figure 5 length
    other than the protocol's own (that one is the ranker itself)."""
    import functools

    out = []
    for base, lengths in EMBEDDING_LENGTHS.items():
        main = next(s for s in RANKER_STEPS if s.name == base)
        for k in lengths:
            if (name := length_artifact(protocol, base, k)) != base:
                build = functools.partial(_build_vbpr if base == "vbpr" else _build_dvbpr, length=k)
                out.append(Step(name, main.files, main.deps, build,
                                f"{main.description}, embedding length {k} (Figure 5)", optional=True))
    return tuple(out)


# -- loaders -------------------------------------------------------------------------------------------------


def load_extractor(store: ArtifactStore):
    from aipbench.rankers.extractor import make_extractor

    cfg = store.protocol.rankers.extractor
    state = _load(store.path("extractor", "extractor.pt"))
    model = make_extractor(store.protocol) if cfg.kind == "alexnet-style" else _bare_alexnet(cfg)
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def _bare_alexnet(cfg):
    from aipbench.models.alexnet import FeatureExtractor

    return FeatureExtractor(cfg.conv_widths, cfg.fc_width, 1000)


def load_features(store: ArtifactStore) -> "torch.Tensor":
    import torch

    return torch.from_numpy(np.load(store.path("features", "features.npy")))


def load_feature_cache(store: ArtifactStore):
    """Φ keyed by image SHA-256, seeded with every catalog and cooperative cold image."""
    from aipbench.rankers.extractor import FeatureCache

    hashes = store.path("features", "image_sha256.txt").read_text().split()
    return FeatureCache(load_extractor(store), hashes, load_features(store),
                        batch_size=store.protocol.rankers.extractor.batch_size)


@RANKERS.register("alexrank")
def _load_alexrank(store: ArtifactStore) -> "Ranker":
    from aipbench.rankers.alexrank import AlexRank

    state = _load(store.path("alexrank", "alexrank.pt"))
    return AlexRank(load_extractor(store), load_features(store), state["mean"], state["mean_sq"])


def _load_vbpr_like(store: ArtifactStore, name: str, length: int | None = None) -> "Ranker":
    from aipbench.rankers.vbpr import VBPR

    cfg = _with_length(getattr(store.protocol.rankers, name), length)
    step = name if length is None else f"{name}-k{length}"
    state = _load(store.path(step, f"{name}.pt"))
    model = VBPR.from_config(cfg, load_extractor(store), load_features(store), state["gamma_user"].shape[0], name=name)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("extractor.") for k in missing):  # Φ comes from its own artifact
        raise ArtifactError(f"{store.dir(step) / f'{name}.pt'}: checkpoint does not match the protocol's {step}")
    if length is not None:
        model.variant = step  # a VBPR all the same (same attack objective), but its own attack target
    return model.eval().requires_grad_(False)


@RANKERS.register("vbpr")
def _load_vbpr(store: ArtifactStore) -> "Ranker":
    return _load_vbpr_like(store, "vbpr")


@RANKERS.register("dvbpr")
def _load_dvbpr(store: ArtifactStore, length: int | None = None) -> "Ranker":
    import torch

    from aipbench.models.cnnf import CNNF
    from aipbench.rankers.dvbpr import DVBPR

    cfg = _with_length(store.protocol.rankers.dvbpr, length)
    step = "dvbpr" if length is None else f"dvbpr-k{length}"
    state = _load(store.path(step, "dvbpr.pt"))
    cnn = CNNF(cfg.conv_widths, cfg.fc_widths, cfg.embedding_length, cfg.dropout, lrn=cfg.local_response_norm)
    embeddings = torch.from_numpy(np.load(store.path(step, "item_embeddings.npy")))
    model = DVBPR(cnn, state["theta_user"].shape[0], embeddings)
    model.load_state_dict(state)
    if length is not None:
        model.variant = step
    return model.eval().requires_grad_(False)


@RANKERS.register("amr")
def _load_amr(store: ArtifactStore) -> "Ranker":
    return _load_vbpr_like(store, "amr")


def length_artifact(protocol, base: str, length: int) -> str:
    """The artifact holding ``base`` (vbpr or dvbpr) at embedding ``length``: the ranker itself at the
    protocol's own length, else the optional ``<base>-k<length>``."""
    return base if length == getattr(protocol.rankers, base).embedding_length else f"{base}-k{length}"


def load_length_variant(store: ArtifactStore, base: str, length: int, device: str = "cpu") -> "Ranker":
    """``base`` at embedding ``length`` (see ``length_artifact``; a variant is built if missing)."""
    name = length_artifact(store.protocol, base, length)
    if name == base:
        return load_ranker(store, base, device)
    store.prepare([name])
    loader = _load_vbpr_like if base == "vbpr" else _load_dvbpr
    return (loader(store, base, length) if base == "vbpr" else loader(store, length)).to(device)


def load_ranker(store: ArtifactStore, name: str, device: str = "cpu") -> "Ranker":
    """The named ranker, frozen (eval mode, no parameter gradients), on ``device``; pixels stay differentiable."""
    return RANKERS.get(name)(store).to(device)
