"""``Prepared``: one protocol, prepared, on one device — the data set, the base sets and their per-ranker
summaries, each ranker loaded once, cooperative cold-item metrics computed once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.pipeline.device import resolve_device
from aipbench.pipeline.loaders import StoreArtifacts, load_base_sets, load_dataset, load_ranker
from aipbench.pipeline.steps import open_store
from aipbench.rankers.precision import apply_precision

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.protocol.schema import Protocol
    from aipbench.rankers.base import Ranker
    from aipbench.scoring.metrics import BaseSetSummary, ColdItemMetrics

__all__ = ["Prepared"]


class Prepared:
    """``protocol`` (a name, a file or a ``Protocol``) with the candidate sets and ``needs`` built in its
    cache (``home``, default ``$AIPBENCH_HOME``); rankers, scores and any training on ``device`` (``auto``:
    CUDA where present)."""

    def __init__(self, protocol: "str | Path | Protocol", *, home: Path | None = None, device: str = "auto",
                 needs: Sequence[str] = (), log: Callable[[str], None] = print) -> None:
        from aipbench.protocol import load_protocol
        from aipbench.protocol.schema import Protocol

        self.protocol = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
        self.device, self.log = resolve_device(device), log
        apply_precision(self.precision)
        self.store = open_store(self.protocol, home, device=self.device)  # what is missing is built on it too
        self.store.prepare(["candidates", *needs], log=log)
        self._artifacts = StoreArtifacts(self.store)
        self._rankers: dict[tuple[str, int | None], "Ranker"] = {}
        self._summaries: dict[str, "BaseSetSummary"] = {}
        self._cooperative: dict[tuple[str, bytes], "ColdItemMetrics"] = {}
        self._images: dict[bytes, np.ndarray] = {}
        self._image_sha256: list[str] | None = None

    @property
    def precision(self) -> str | None:
        """The protocol's ``compute.precision`` (None: float32)."""
        return self.protocol.compute.precision if self.protocol.compute else None

    @property
    def hit_ranks(self) -> tuple[int, ...]:
        return tuple(self.protocol.metrics.hit_ranks)

    @cached_property
    def dataset(self) -> "Dataset":
        return load_dataset(self.store)

    @cached_property
    def base_sets(self) -> np.ndarray:
        """Each user's 1,000 BPR candidates and, last, the user's test item."""
        return load_base_sets(self.store, self.dataset)

    def cold_subset(self, k: int | None) -> np.ndarray:
        """The protocol's subset of ``k`` cold items (``metrics.subset_rule``; all when ``k`` is None), in
        id order — what `evaluate --items`, Tables 6 and 8 and the figures use."""
        from aipbench.data.splits import cold_subset

        return cold_subset(self.dataset.cold_items, k, rule=self.protocol.metrics.subset_rule,
                           seed=self.protocol.split.seed)

    def ranker(self, name: str, *, length: int | None = None, replica: int | None = None) -> "Ranker":
        """The named ranker (or its Figure 5 re-training at ``length``, or its ``replica`` trained with
        another derived seed; built if missing), loaded once."""
        from aipbench.rankers.lengths import length_artifact
        from aipbench.rankers.replicas import replica_artifact

        if length is not None and length_artifact(self.protocol, name, length) == name:
            length = None  # the protocol's own length: the ranker itself
        artifact = replica_artifact(name if length is None else f"{name}-k{length}", replica)
        key = (name, length, artifact)
        if key not in self._rankers:
            if artifact != name:
                self.store.prepare([artifact], log=self.log)
            self._rankers[key] = load_ranker(self.store, name, self.device, length=length, replica=replica,
                                             artifacts=self._artifacts)
        return self._rankers[key]

    def adopt(self, ranker: "Ranker") -> None:
        """Score ``ranker`` — one this object did not load (a submitted one) — under its name, as if it had."""
        self._rankers[(ranker.name, None, ranker.name)] = ranker

    def summarize(self, ranker: "Ranker") -> "BaseSetSummary":
        """τ_u^N, the test items' ranks and AUC of ``ranker`` (e.g. a defended one) on the base sets."""
        from aipbench.scoring.metrics import summarize_base_sets

        return summarize_base_sets(ranker, self.base_sets, self.hit_ranks)

    def summary(self, ranker: "Ranker") -> "BaseSetSummary":
        """``summarize`` of a ranker this object loaded, computed once."""
        if ranker.instance not in self._summaries:
            self._summaries[ranker.instance] = self.summarize(ranker)
        return self._summaries[ranker.instance]

    def cooperative_images(self, items: np.ndarray) -> np.ndarray:
        """This process's own copy of the cooperative images of ``items``, each checked against the SHA-256
        the features artifact recorded for it: what budgets are checked against and scored from, never
        re-read from a file an attack could have written since."""
        key = np.asarray(items, dtype=np.int64).tobytes()
        if key not in self._images:
            from aipbench.errors import ArtifactError
            from aipbench.rankers.extractor import image_hashes

            if self._image_sha256 is None:
                self.store.prepare(["features"], log=self.log)
                self._image_sha256 = self.store.read_verified("features", "image_sha256.txt").decode().split()
            ids = np.asarray(items, dtype=np.int64)
            images = np.array(self.dataset.images[ids], copy=True)
            bad = [int(i) for i, h in zip(ids, image_hashes(images)) if h != self._image_sha256[int(i)]]
            if bad:
                raise ArtifactError(f"{self.store.dir('dataset')}: the catalog image of item {bad[0]} differs from "
                                    f"its recorded SHA-256 ({len(bad)} items); run `aipbench prepare --protocol {self.protocol.name}`")
            self._images[key] = images
        return self._images[key]

    def cooperative(self, ranker: "Ranker", items: np.ndarray) -> "ColdItemMetrics":
        """Cold-item metrics of the cooperative (original) images of ``items`` under a loaded ranker, once."""
        key = (ranker.instance, np.asarray(items, dtype=np.int64).tobytes())
        if key not in self._cooperative:
            from aipbench.scoring.metrics import image_metrics

            self._cooperative[key] = image_metrics(ranker, self.cooperative_images(items), self.summary(ranker))
        return self._cooperative[key]

    def hashes(self) -> dict[str, dict[str, str]]:
        """Every built artifact's file hashes (for results documents)."""
        return self.store.hashes()
