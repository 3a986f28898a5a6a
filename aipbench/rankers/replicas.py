"""Ranker-seed spread: a ranker re-trained with other seeds derived from the protocol's, all else equal
(optional artifacts ``vbpr-r2``, ``dvbpr-r3``, …; replica 1 is the ranker itself)."""

from __future__ import annotations

import dataclasses

import numpy as np

from aipbench.rankers.spec import SPECS

__all__ = ["MAX_REPLICAS", "is_replicated", "replica_artifact", "replica_seed", "with_replica"]

MAX_REPLICAS = 10


def is_replicated(name: str) -> bool:
    """Whether the ranker ``name`` has a training seed (its spec says so). AlexRank has none (its user profiles
    are means of the fixed Φ's features): every replica of it is the ranker itself, so its spread across seeds
    is zero by construction."""
    return name in SPECS and SPECS.get(name).replicated


def replica_seed(seed: int, replica: int) -> int:
    """The training seed of ``replica`` (1: the protocol's own), derived from the protocol's seed."""
    if replica == 1:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(replica)]).generate_state(1, dtype=np.uint32)[0] >> 1)


def with_replica(cfg, replica: int | None):
    """A ranker section whose training seed is ``replica``'s (unchanged for None or 1)."""
    if replica in (None, 1):
        return cfg
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=replica_seed(cfg.train.seed, replica)))


def replica_artifact(name: str, replica: int | None) -> str:
    """The artifact of ``replica`` of the ranker stored as ``name`` (itself for None or 1, and for a ranker
    without a training seed)."""
    base = name.split("-")[0]
    return name if replica in (None, 1) or not is_replicated(base) else f"{name}-r{replica}"
