"""The paper's Figure 5: a ranker re-trained at other embedding lengths, all else equal (the lengths its spec
lists: VBPR's and DVBPR's)."""

from __future__ import annotations

import dataclasses

from aipbench.rankers.spec import SPECS

__all__ = ["embedding_lengths", "length_artifact", "with_length"]


def embedding_lengths(protocol=None) -> dict[str, tuple[int, ...]]:
    """{ranker: its Figure 5 lengths} for every registered ranker that has them (of ``protocol``, where given)."""
    return {name: SPECS.get(name).lengths for name in SPECS
            if SPECS.get(name).lengths and (protocol is None or SPECS.get(name).in_protocol(protocol))}


def with_length(cfg, length: int | None):
    """A ranker section at embedding ``length`` (unchanged for None)."""
    return cfg if length is None else dataclasses.replace(cfg, embedding_length=length)


def length_artifact(protocol, base: str, length: int) -> str:
    """The artifact holding ``base`` (vbpr or dvbpr) at embedding ``length``: the ranker itself at the
    protocol's own length, else the optional ``<base>-k<length>``."""
    return base if length == protocol.rankers.section(base).embedding_length else f"{base}-k{length}"
