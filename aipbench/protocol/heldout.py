"""A protocol's held-out build: its public settings with the platform's private training seeds — BPR's and
every trained ranker's — derived from a secret seed file that the maintainers keep, published as its SHA-256
only. The data set, its splits and cold items and the public pre-trained image model Φ stay the public
build's (the same items are scored; Φ is public in the paper's threat model), so an attack tuned to, or
rebuilt from, the public build meets rankers it has never seen: it gains only what a surrogate model would."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from aipbench.errors import InputError
from aipbench.protocol.schema import Protocol

__all__ = ["MIN_SECRET_BYTES", "held_out", "read_seed_file", "secret_seed"]

MIN_SECRET_BYTES = 16  # 128 bits: a secret no one can guess or search for


def read_seed_file(path: str | Path) -> tuple[bytes, str]:
    """The secret of a seed file and its SHA-256 (what is published); one-line errors."""
    from aipbench.paths import read_regular

    secret = read_regular(path, max_bytes=1 << 20)
    if len(secret) < MIN_SECRET_BYTES:
        raise InputError(f"{path}: a seed file holds at least {MIN_SECRET_BYTES} secret bytes (e.g. `head -c 32 "
                         f"/dev/urandom > {Path(path).name}`), got {len(secret)}")
    return secret, hashlib.sha256(secret).hexdigest()


def secret_seed(secret: bytes, key: str) -> int:
    """The seed of setting ``key`` (e.g. ``rankers.vbpr.train.seed``) in the held-out build: 31 bits of
    SHA-256(secret, key)."""
    return int.from_bytes(hashlib.sha256(secret + b"\0" + key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def held_out(protocol: Protocol, secret: bytes) -> Protocol:
    """``protocol`` with its private training seeds drawn from ``secret`` (its hash changes: the held-out build
    has a cache of its own); everything else as published."""
    sections = []
    for name, section in protocol.rankers.sections:  # every trained ranker's; Φ's pre-training stays public
        train = getattr(section, "train", None)
        if train is not None and hasattr(train, "seed"):
            seed = secret_seed(secret, f"rankers.{name}.train.seed")
            section = dataclasses.replace(section, train=dataclasses.replace(train, seed=seed))
        sections.append((name, section))
    return dataclasses.replace(protocol, bpr=dataclasses.replace(protocol.bpr, seed=secret_seed(secret, "bpr.seed")),
                               rankers=dataclasses.replace(protocol.rankers, sections=tuple(sections)))
