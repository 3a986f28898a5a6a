"""The protocol's artifact graph (data → BPR → candidate sets → extractor → rankers) and typed loaders."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.artifacts import ArtifactError, ArtifactStore, Step, aipbench_home

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.protocol import Protocol

__all__ = [
    "PROGRESS",
    "load_base_sets",
    "load_bpr",
    "load_candidates",
    "load_dataset",
    "open_store",
    "raw_data_path",
    "steps_for",
]

# Progress bars on long steps unless AIPBENCH_PROGRESS=0 (CI, tests).
PROGRESS = os.environ.get("AIPBENCH_PROGRESS", "1") != "0"


def raw_data_path(protocol: "Protocol") -> Path:
    """Where `aipbench data import` leaves a real data set's distributed file."""
    assert protocol.data.file is not None
    return aipbench_home() / "raw" / protocol.data.file.name


# -- builders ------------------------------------------------------------------------------------------


def _build_dataset(store: ArtifactStore, out: Path) -> None:
    protocol = store.protocol
    if protocol.data.source == "synthetic":
        from aipbench.data.synthetic import generate

        dataset = generate(protocol)
        dataset.save(out / "interactions.npz", out / "images.npy")
        return
    from aipbench.data.dvbpr_npy import import_dvbpr_npy

    raw = raw_data_path(protocol)
    if not raw.is_file():
        raise ArtifactError(
            f"{raw}: data file not found; run `aipbench data import {protocol.name} PATH/{protocol.data.file.name}`"
        )
    dataset = import_dvbpr_npy(raw, protocol, out / "images.npy", progress=PROGRESS)
    dataset.save_interactions(out / "interactions.npz")


def _build_bpr(store: ArtifactStore, out: Path) -> None:
    import torch

    from aipbench.models.bpr import train_bpr

    model, history = train_bpr(load_dataset(store), store.protocol.bpr, progress=PROGRESS)
    torch.save(model.state_dict(), out / "bpr.pt")
    (out / "history.json").write_text(json.dumps(history, indent=2, sort_keys=True) + "\n")


def _build_candidates(store: ArtifactStore, out: Path) -> None:
    from aipbench.candidates import candidate_sets

    dataset = load_dataset(store)
    model = load_bpr(store)
    cands = candidate_sets(
        model.user_factors.weight.detach(),
        model.item_factors.weight.detach(),
        model.item_bias.weight.detach().squeeze(-1),
        dataset.train_indptr,
        dataset.train_items,
        dataset.test_items,
        dataset.cold_items,
        store.protocol.bpr.n_candidates,
        progress=PROGRESS,
    )
    with open(out / "candidates.npy", "wb") as fh:
        np.save(fh, cands)


_STEPS: tuple[Step, ...] = (
    Step("dataset", ("interactions.npz", "images.npy"), (), _build_dataset, "catalog images, splits, cold items, hook"),
    Step("bpr", ("bpr.pt", "history.json"), ("dataset",), _build_bpr, "first-stage BPR, K from the protocol"),
    Step("candidates", ("candidates.npy",), ("dataset", "bpr"), _build_candidates, "top-N BPR candidate sets"),
)


def steps_for(protocol: "Protocol") -> dict[str, Step]:
    steps = {s.name: s for s in _STEPS}
    try:
        from aipbench.ranker_steps import RANKER_STEPS, length_steps
    except ImportError:  # rankers not installed in this build of the package
        return steps
    steps.update({s.name: s for s in RANKER_STEPS + length_steps(protocol)})
    return steps


def open_store(protocol: "Protocol", home: Path | None = None) -> ArtifactStore:
    return ArtifactStore(protocol, steps_for(protocol), home=home)


# -- loaders -------------------------------------------------------------------------------------------


def load_dataset(store: ArtifactStore) -> "Dataset":
    from aipbench.data.dataset import Dataset

    return Dataset.load(store.path("dataset", "interactions.npz"), store.path("dataset", "images.npy"))


def load_bpr(store: ArtifactStore):
    import torch

    from aipbench.models.bpr import BPR

    state = torch.load(store.path("bpr", "bpr.pt"), map_location="cpu", weights_only=True)
    n_users, k = state["user_factors.weight"].shape
    model = BPR(n_users, state["item_factors.weight"].shape[0], k, init_std=0.0, seed=0)
    model.load_state_dict(state)
    return model.eval()


def load_candidates(store: ArtifactStore) -> np.ndarray:
    return np.load(store.path("candidates", "candidates.npy"))


def load_base_sets(store: ArtifactStore) -> np.ndarray:
    """Each user's base set: the BPR candidates and, in the last column, the user's test item."""
    from aipbench.candidates import base_sets

    return base_sets(load_candidates(store), load_dataset(store).test_items)
