"""The paper's Figure 5: VBPR and DVBPR re-trained at other embedding lengths, all else equal."""

from __future__ import annotations

import dataclasses

__all__ = ["EMBEDDING_LENGTHS", "length_artifact", "with_length"]

EMBEDDING_LENGTHS = {"vbpr": (20, 50, 100), "dvbpr": (10, 30, 50, 100)}


def with_length(cfg, length: int | None):
    """A ranker section at embedding ``length`` (unchanged for None)."""
    return cfg if length is None else dataclasses.replace(cfg, embedding_length=length)


def length_artifact(protocol, base: str, length: int) -> str:
    """The artifact holding ``base`` (vbpr or dvbpr) at embedding ``length``: the ranker itself at the
    protocol's own length, else the optional ``<base>-k<length>``."""
    return base if length == getattr(protocol.rankers, base).embedding_length else f"{base}-k{length}"
