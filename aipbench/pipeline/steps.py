"""The protocol's artifact graph — data → BPR → candidate sets → Φ → features → rankers — as build steps (a
ranker's step, and its length and replica variants, from its registered spec)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import ArtifactError
from aipbench.pipeline.loaders import StoreArtifacts, load_bpr, load_dataset, load_extractor
from aipbench.pipeline.store import ArtifactStore, Step
from aipbench.rankers.checkpoint import save_state, write_history
from aipbench.rankers.lengths import length_artifact, with_length
from aipbench.rankers.registry import ranker_specs
from aipbench.rankers.replicas import MAX_REPLICAS, is_replicated, replica_artifact, with_replica
from aipbench.rankers.spec import RankerSpec

if TYPE_CHECKING:
    from aipbench.protocol.schema import Protocol

__all__ = ["DATA_FILE", "PHI_STEPS", "PROGRESS", "STEPS", "length_steps", "open_store", "ranker_steps",
           "replica_steps", "steps_for"]

# Progress bars on long steps unless AIPBENCH_PROGRESS=0 (CI, tests).
PROGRESS = os.environ.get("AIPBENCH_PROGRESS", "1") != "0"
DATA_FILE = "data_file"  # the store input naming a real data set's file (`aipbench data import`)
IMPORTED_FILES = ("interactions.npz", "images.bin", "image_offsets.npy", "source.json")


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
                            f"`aipbench data import --protocol {protocol.name} PATH/{protocol.data.file.name}`")
    dataset, source = import_dvbpr_npy(store.inputs[DATA_FILE], protocol, out, progress=PROGRESS)
    dataset.save_interactions(out / "interactions.npz")
    (out / "source.json").write_text(json.dumps(source, indent=2, sort_keys=True) + "\n")
    store.record_input(protocol.data.file.name, source["sha256"])


def _build_bpr(store: ArtifactStore, out: Path) -> None:
    from aipbench.firststage.bpr import train_bpr

    model, history = train_bpr(load_dataset(store), store.protocol.bpr, device=store.device, progress=PROGRESS)
    save_state(model.state_dict(), out / "bpr.pt")
    write_history(history, out)


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
    save_state(model.state_dict(), out / "extractor.pt")
    write_history(history, out)


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


class _Inputs(StoreArtifacts):
    """The store as a ranker builder's ``BuildInputs``: its artifacts, the build's device, the replica built."""

    def __init__(self, store: ArtifactStore, replica: int | None) -> None:
        super().__init__(store)
        self.device, self.progress, self.replica = store.device, PROGRESS, replica

    def dataset(self):
        return load_dataset(self.store)


def _build_ranker(spec: RankerSpec, store: ArtifactStore, out: Path, length: int | None = None,
                  replica: int | None = None) -> None:
    """The ranker ``spec`` built by its own builder from its protocol section at ``length`` and ``replica``."""
    section = store.protocol.rankers.section(spec.name)
    if section is not None:
        section = with_replica(with_length(section, length), replica)
    spec.build(_Inputs(store, replica), section, out)


STEPS: tuple[Step, ...] = (
    Step("dataset", ("interactions.npz", "images.npy"), (), _build_dataset, "catalog images, splits, cold items, hook"),
    Step("bpr", ("bpr.pt", "history.json"), ("dataset",), _build_bpr, "first-stage BPR, K from the protocol"),
    Step("candidates", ("candidates.npy",), ("dataset", "bpr"), _build_candidates, "top-N BPR candidate sets"),
)

PHI_STEPS: tuple[Step, ...] = (
    Step("extractor", ("extractor.pt", "history.json"), (), _build_extractor, "Φ: pre-trained, frozen"),
    Step("features", ("features.npy", "image_sha256.txt"), ("dataset", "extractor"), _build_features,
         "Φ(x) of every item image"),
)


def ranker_steps(protocol: "Protocol") -> tuple[Step, ...]:
    """A step per ranker of the protocol (every registered one it has a section for, or that needs none)."""
    return tuple(Step(s.name, s.files, s.needs, functools.partial(_build_ranker, s), s.description)
                 for s in ranker_specs(protocol))


def length_steps(protocol: "Protocol") -> tuple[Step, ...]:
    """Optional steps ``vbpr-k20``, ``dvbpr-k10``, …: each ranker with Figure 5 lengths re-trained at each
    of them other than the protocol's own (that one is the ranker itself)."""
    out = []
    for spec in ranker_specs(protocol):
        for k in spec.lengths:
            if (name := length_artifact(protocol, spec.name, k)) != spec.name:
                build = functools.partial(_build_ranker, spec, length=k)
                out.append(Step(name, spec.files, spec.needs, build,
                                f"{spec.description}, embedding length {k} (Figure 5)", optional=True))
    return tuple(out)


def replica_steps(protocol: "Protocol") -> tuple[Step, ...]:
    """Optional steps ``vbpr-r2``, ``dvbpr-r2``, ``amr-r2``, …: each ranker with a training seed re-trained with
    the seed of replica r (``aipbench.rankers.replicas``); a ranker built from another (AMR from VBPR) is built
    from that one's replica r."""
    out = []
    for r in range(2, MAX_REPLICAS + 1):
        for spec in ranker_specs(protocol):
            if spec.replicated:
                deps = tuple(replica_artifact(d, r) if is_replicated(d) else d for d in spec.needs)
                out.append(Step(replica_artifact(spec.name, r), spec.files, deps,
                                functools.partial(_build_ranker, spec, replica=r),
                                f"{spec.description}, replica {r} (another training seed)", optional=True))
    return tuple(out)


def steps_for(protocol: "Protocol") -> dict[str, Step]:
    steps = {s.name: s for s in STEPS + PHI_STEPS + ranker_steps(protocol) + length_steps(protocol)
             + replica_steps(protocol)}
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
