"""The protocol's artifact graph — data → BPR → candidate sets → Φ → features → rankers — as build steps."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import ArtifactError
from aipbench.pipeline.loaders import StoreArtifacts, load_bpr, load_dataset, load_extractor, load_features
from aipbench.pipeline.store import ArtifactStore, Step
from aipbench.rankers.lengths import EMBEDDING_LENGTHS, length_artifact, with_length
from aipbench.rankers.replicas import MAX_REPLICAS, REPLICATED, replica_artifact, with_replica

if TYPE_CHECKING:
    import torch

    from aipbench.protocol.schema import Protocol

__all__ = ["DATA_FILE", "PROGRESS", "RANKER_STEPS", "STEPS", "length_steps", "open_store", "replica_steps",
           "steps_for"]

# Progress bars on long steps unless AIPBENCH_PROGRESS=0 (CI, tests).
PROGRESS = os.environ.get("AIPBENCH_PROGRESS", "1") != "0"
DATA_FILE = "data_file"  # the store input naming a real data set's file (`aipbench data import`)
IMPORTED_FILES = ("interactions.npz", "images.bin", "image_offsets.npy", "source.json")


def _save(state: dict, path: Path) -> None:
    """A state dict with every tensor on the CPU: artifacts load anywhere, whatever device trained them (a
    CPU-trained state is saved as it is, module metadata included: the same bytes as ever)."""
    import torch

    if any(isinstance(v, torch.Tensor) and v.device.type != "cpu" for v in state.values()):
        on_cpu = type(state)((k, v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items())
        if hasattr(state, "_metadata"):
            on_cpu._metadata = state._metadata
        state = on_cpu
    torch.save(state, path)


def _write_history(history: dict, out: Path) -> None:
    (out / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")


def _own_state(model: "torch.nn.Module") -> dict:
    """The ranker's own parameters: the frozen extractor lives in its own artifact."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith("extractor.")}


# -- the first stage ---------------------------------------------------------------------------------------


def _build_dataset(store: ArtifactStore, out: Path) -> None:
    protocol = store.protocol
    if protocol.data.source == "synthetic":
        from aipbench.data.synthetic import generate

        dataset = generate(protocol, out=out)
        if protocol.data.image_store == "packed-jpeg":  # the photos are already packed into out
            dataset.save_interactions(out / "interactions.npz")
        else:
            dataset.save(out / "interactions.npz", out / "images.npy")
        return
    from aipbench.data.dvbpr_npy import import_dvbpr_npy

    if DATA_FILE not in store.inputs:
        raise ArtifactError(f"{store.dir('dataset')}: protocol '{protocol.name}' has no imported data set; run "
                            f"`aipbench data import {protocol.name} PATH/{protocol.data.file.name}`")
    dataset, source = import_dvbpr_npy(store.inputs[DATA_FILE], protocol, out, progress=PROGRESS)
    dataset.save_interactions(out / "interactions.npz")
    (out / "source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
    store.record_input(protocol.data.file.name, source["sha256"])


def _build_bpr(store: ArtifactStore, out: Path) -> None:
    from aipbench.firststage.bpr import train_bpr

    model, history = train_bpr(load_dataset(store), store.protocol.bpr, device=store.device, progress=PROGRESS)
    _save(model.state_dict(), out / "bpr.pt")
    _write_history(history, out)


def _build_candidates(store: ArtifactStore, out: Path) -> None:
    from aipbench.firststage.candidates import candidate_sets

    dataset = load_dataset(store)
    model = load_bpr(store)
    cands = candidate_sets(
        model.user_factors.weight.detach(),
        model.item_factors.weight.detach(),
        model.item_bias.weight.detach().squeeze(-1),
        train_indptr=dataset.train_indptr,
        train_items=dataset.train_items,
        test_items=dataset.test_items,
        cold_items=dataset.cold_items,
        n_candidates=store.protocol.bpr.n_candidates,
        exclude_seen=store.protocol.bpr.candidate_rule != "all-items",
        device=store.device,
        progress=PROGRESS,
    )
    with open(out / "candidates.npy", "wb") as fh:
        np.save(fh, cands)


# -- Φ and the rankers ---------------------------------------------------------------------------------------


def _build_extractor(store: ArtifactStore, out: Path) -> None:
    import torch

    from aipbench.rankers.extractor import make_extractor, pretrain_extractor
    from aipbench.rankers.nets import weights

    if store.protocol.rankers.extractor.kind == "alexnet-style":
        model, history = pretrain_extractor(store.protocol, device=store.device, progress=PROGRESS)
    else:  # torchvision's ImageNet weights, handed over offline (`aipbench data weights`) and checked
        spec = weights.IMAGENET_ALEXNET
        path, digest = weights.locate_weights(spec)
        model = make_extractor(store.protocol)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        store.record_input(spec.name, digest)
        history = {"weights": spec.label, "file": spec.name, "sha256": digest}
    _save(model.state_dict(), out / "extractor.pt")
    _write_history(history, out)


def _build_features(store: ArtifactStore, out: Path) -> None:
    import torch

    from aipbench.rankers.extractor import extract_features, image_hashes

    images = load_dataset(store).images
    extractor, batch = load_extractor(store).to(store.device), store.protocol.rankers.extractor.batch_size
    chunk = batch * max(1, 4096 // batch)  # whole batches per chunk: the same batches as one pass over all
    feats, hashes = [], []
    starts = range(0, len(images), chunk)
    if PROGRESS:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="features", unit="chunk")
    for s in starts:  # each image read (decoded) once for both its features and its hash
        pixels = np.asarray(images[s : s + chunk])
        feats.append(extract_features(extractor, pixels, batch_size=batch))
        hashes += image_hashes(pixels)
    with open(out / "features.npy", "wb") as fh:
        np.save(fh, torch.cat(feats).numpy().astype(np.float32))
    (out / "image_sha256.txt").write_text("\n".join(hashes) + "\n")


def _build_alexrank(store: ArtifactStore, out: Path) -> None:
    from aipbench.rankers.alexrank import user_profiles

    dataset = load_dataset(store)
    mean, mean_sq = user_profiles(load_features(store).to(store.device), dataset.train_indptr, dataset.train_items)
    _save({"mean": mean, "mean_sq": mean_sq}, out / "alexrank.pt")


def _build_vbpr(store: ArtifactStore, out: Path, length: int | None = None, replica: int | None = None) -> None:
    from aipbench.rankers.training import train_vbpr

    cfg = with_replica(with_length(store.protocol.rankers.vbpr, length), replica)
    model, history = train_vbpr(load_dataset(store), load_extractor(store), load_features(store), cfg,
                                device=store.device, progress=PROGRESS)
    _save(_own_state(model), out / "vbpr.pt")
    _write_history(history, out)


def _build_amr(store: ArtifactStore, out: Path, replica: int | None = None) -> None:
    from aipbench.rankers.training import train_amr

    cfg = with_replica(store.protocol.rankers.amr, replica)
    extractor, vbpr_state = load_extractor(store), None
    if cfg.init == "vbpr":  # the VBPR of the same replica
        vbpr = StoreArtifacts(store).state(replica_artifact("vbpr", replica), "vbpr.pt")
        vbpr_state = {**vbpr, **{f"extractor.{k}": v for k, v in extractor.state_dict().items()}}
    model, history = train_amr(load_dataset(store), extractor, load_features(store), cfg, vbpr_state=vbpr_state,
                               device=store.device, progress=PROGRESS)
    _save(_own_state(model), out / "amr.pt")
    _write_history(history, out)


def _build_dvbpr(store: ArtifactStore, out: Path, length: int | None = None, replica: int | None = None) -> None:
    from aipbench.rankers.training import train_dvbpr

    model, history = train_dvbpr(load_dataset(store), with_replica(with_length(store.protocol.rankers.dvbpr, length),
                                                                   replica), device=store.device, progress=PROGRESS,
                                 precision=store.protocol.compute.precision if store.protocol.compute else None)
    _save(_own_state(model), out / "dvbpr.pt")
    with open(out / "item_embeddings.npy", "wb") as fh:
        np.save(fh, model.catalog.cpu().numpy().astype(np.float32))
    _write_history(history, out)


STEPS: tuple[Step, ...] = (
    Step("dataset", ("interactions.npz", "images.npy"), (), _build_dataset, "catalog images, splits, cold items, hook"),
    Step("bpr", ("bpr.pt", "history.json"), ("dataset",), _build_bpr, "first-stage BPR, K from the protocol"),
    Step("candidates", ("candidates.npy",), ("dataset", "bpr"), _build_candidates, "top-N BPR candidate sets"),
)

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


def length_steps(protocol: "Protocol") -> tuple[Step, ...]:
    """Optional steps ``vbpr-k20``, ``dvbpr-k10``, …: the ranker re-trained at each Figure 5 length
    other than the protocol's own (that one is the ranker itself)."""
    out = []
    for base, lengths in EMBEDDING_LENGTHS.items():
        main = next(s for s in RANKER_STEPS if s.name == base)
        for k in lengths:
            if (name := length_artifact(protocol, base, k)) != base:
                build = functools.partial(_build_vbpr if base == "vbpr" else _build_dvbpr, length=k)
                out.append(Step(name, main.files, main.deps, build,
                                f"{main.description}, embedding length {k} (Figure 5)", optional=True))
    return tuple(out)


def replica_steps(protocol: "Protocol") -> tuple[Step, ...]:
    """Optional steps ``vbpr-r2``, ``dvbpr-r2``, ``amr-r2``, …: each trained ranker re-trained with the
    seed of replica r (``aipbench.rankers.replicas``); AMR's replica starts from VBPR's of the same r."""
    builders = {"vbpr": _build_vbpr, "dvbpr": _build_dvbpr, "amr": _build_amr}
    out = []
    for r in range(2, MAX_REPLICAS + 1):
        for base in REPLICATED:
            main = next(s for s in RANKER_STEPS if s.name == base)
            deps = tuple(replica_artifact(d, r) if d in REPLICATED else d for d in main.deps)
            out.append(Step(replica_artifact(base, r), main.files, deps, functools.partial(builders[base], replica=r),
                            f"{main.description}, replica {r} (another training seed)", optional=True))
    return tuple(out)


def steps_for(protocol: "Protocol") -> dict[str, Step]:
    steps = {s.name: s for s in STEPS + RANKER_STEPS + length_steps(protocol) + replica_steps(protocol)}
    if protocol.data.source == "dvbpr-npy":  # the distributed JPEGs packed as they are, and what was measured
        steps["dataset"] = dataclasses.replace(steps["dataset"], files=IMPORTED_FILES,
                                               description="the imported data file's splits, cold items, hook, images")
    elif protocol.data.image_store == "packed-jpeg":
        steps["dataset"] = dataclasses.replace(steps["dataset"], files=IMPORTED_FILES[:3])
    return steps


def open_store(protocol: "Protocol", home: Path | None = None, *, device: str = "cpu") -> ArtifactStore:
    """The protocol's artifact cache (under ``$AIPBENCH_HOME``, or ``home``) with every step it knows;
    builders train and infer on ``device``."""
    return ArtifactStore(protocol, steps_for(protocol), home=home, device=device)
