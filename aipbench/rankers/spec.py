"""One ranker spec: everything aipbench knows about a ranker — its class, its protocol section, how its
artifact is built, whether it has replicas and Figure 5 lengths — registered in one place, by the ranker's
own module (``register_ranker``). The pipeline's steps, replicas and lengths, the claims and the site iterate
the registry (``aipbench.rankers.registry``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aipbench.protocol.rankers import SECTIONS
from aipbench.registry import Registry

if TYPE_CHECKING:
    import torch

    from aipbench.data.dataset import Dataset
    from aipbench.rankers.base import Ranker

__all__ = ["BuildInputs", "RankerSpec", "SPECS", "register_ranker"]

NAME = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")


class BuildInputs(Protocol):
    """What a ranker's builder reads: the protocol's artifacts it was declared to need, on the build's device."""

    protocol: Any
    device: str
    progress: bool
    replica: int | None  # the replica being built (None: the ranker itself)

    def dataset(self) -> "Dataset": ...

    def extractor(self) -> "torch.nn.Module": ...

    def features(self) -> "torch.Tensor": ...

    def state(self, artifact: str, file: str) -> dict: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class RankerSpec:
    """A ranker as aipbench knows it. ``build(inputs, section, out)`` trains (or fits) it from ``inputs`` as
    ``section`` says (its protocol section at the length and replica being built; None for a ranker without
    one) and writes ``files`` into the folder ``out``."""

    name: str
    ranker: type["Ranker"]
    build: Callable[[BuildInputs, Any, Path], None]
    files: tuple[str, ...]
    needs: tuple[str, ...]  # the artifacts it is built from: dataset, extractor, features, other rankers
    description: str
    section: type | None = None  # its [rankers.<name>] dataclass; None: it needs none and is in every protocol
    replicated: bool = False  # it has a training seed (``section.train.seed``): replicas 2..10 re-train it
    lengths: tuple[int, ...] = ()  # Figure 5: the embedding lengths it is re-trained at (``section.embedding_length``)
    order: int = 100  # its place in tables: the paper's rankers first, in Table 4's order

    def __post_init__(self) -> None:
        if not NAME.match(self.name):  # a step name; "-" marks its variants (vbpr-k20, vbpr-r2)
            raise ValueError(f"ranker name {self.name!r}: lower-case letters, digits and '_' only")
        if self.name != self.ranker.name:
            raise ValueError(f"ranker spec {self.name!r} names a class whose name is {self.ranker.name!r}")
        if (self.replicated or self.lengths) and self.section is None:
            raise ValueError(f"ranker {self.name!r}: replicas and lengths re-train it from its protocol section")

    def in_protocol(self, protocol) -> bool:
        """Whether ``protocol`` has this ranker: a section for it, or it needs none."""
        return self.section is None or protocol.rankers.section(self.name) is not None


SPECS: Registry[RankerSpec] = Registry("ranker")


def register_ranker(spec: RankerSpec) -> RankerSpec:
    """Add ``spec`` to the registry and its section to the sections a protocol may hold."""
    if spec.section is not None and (spec.name not in SECTIONS or SECTIONS.get(spec.name) is not spec.section):
        SECTIONS.register(spec.name)(spec.section)
    return SPECS.register(spec.name)(spec)
