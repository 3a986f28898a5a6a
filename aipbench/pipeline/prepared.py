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
        self.store = open_store(self.protocol, home, device=self.device)  # what is missing is built on it too
        self.store.prepare(["candidates", *needs], log=log)
        self._artifacts = StoreArtifacts(self.store)
        self._rankers: dict[tuple[str, int | None], "Ranker"] = {}
        self._summaries: dict[str, "BaseSetSummary"] = {}
        self._cooperative: dict[tuple[str, bytes], "ColdItemMetrics"] = {}

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

    def ranker(self, name: str, *, length: int | None = None) -> "Ranker":
        """The named ranker (or its Figure 5 re-training at ``length``, built if missing), loaded once."""
        from aipbench.rankers.lengths import length_artifact

        if length is not None and length_artifact(self.protocol, name, length) == name:
            length = None  # the protocol's own length: the ranker itself
        key = (name, length)
        if key not in self._rankers:
            if length is not None:
                self.store.prepare([f"{name}-k{length}"], log=self.log)
            self._rankers[key] = load_ranker(self.store, name, self.device, length=length, artifacts=self._artifacts)
        return self._rankers[key]

    def summarize(self, ranker: "Ranker") -> "BaseSetSummary":
        """τ_u^N, the test items' ranks and AUC of ``ranker`` (e.g. a defended one) on the base sets."""
        from aipbench.scoring.metrics import summarize_base_sets

        return summarize_base_sets(ranker, self.base_sets, self.hit_ranks)

    def summary(self, ranker: "Ranker") -> "BaseSetSummary":
        """``summarize`` of a ranker this object loaded, computed once."""
        if ranker.instance not in self._summaries:
            self._summaries[ranker.instance] = self.summarize(ranker)
        return self._summaries[ranker.instance]

    def cooperative(self, ranker: "Ranker", items: np.ndarray) -> "ColdItemMetrics":
        """Cold-item metrics of the cooperative (original) images of ``items`` under a loaded ranker, once."""
        key = (ranker.instance, np.asarray(items, dtype=np.int64).tobytes())
        if key not in self._cooperative:
            from aipbench.scoring.metrics import image_metrics

            images = np.asarray(self.dataset.images[np.asarray(items)])
            self._cooperative[key] = image_metrics(ranker, images, self.summary(ranker))
        return self._cooperative[key]

    def hashes(self) -> dict[str, dict[str, str]]:
        """Every built artifact's file hashes (for results documents)."""
        return self.store.hashes()
