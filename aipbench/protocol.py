"""Frozen benchmark protocols: load a TOML file, validate it strictly, hash its canonical form."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import field
from pathlib import Path
from typing import Literal

from aipbench.config import ConfigError, Range, build, read_toml, to_dict
from aipbench.rankers_config import RankersConfig

# The protocol every command and API uses when none is named: the embedded synthetic one. synthetic-v2
# since it met the rankers' quality and INSA targets that synthetic-v1 misses (README, "Why synthetic-v2").
DEFAULT_PROTOCOL = "synthetic-v2"

__all__ = [
    "BPRConfig",
    "DEFAULT_PROTOCOL",
    "DataConfig",
    "FileDataConfig",
    "MetricsConfig",
    "Protocol",
    "ProtocolError",
    "SplitConfig",
    "SyntheticConfig",
    "ThreatConfig",
    "find_protocol",
    "list_protocols",
    "load_protocol",
    "protocol_dirs",
]

ProtocolError = ConfigError

_POS = Range(0, None, low_open=True)
_NONNEG = Range(0, None)
_SEED = Range(0, 2**63 - 1)


def _f(rng: Range | None = None) -> dataclasses.Field:
    return field(metadata={"range": rng} if rng else {})


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the procedural catalog generator (``aipbench.data.synthetic``)."""

    n_users: int = _f(Range(3))
    n_catalog_items: int = _f(Range(10))
    mean_interactions_per_user: float = _f(Range(3))
    min_interactions_per_user: int = _f(Range(3))
    popularity_exponent: float = _f(_NONNEG)
    popularity_weight: float = _f(_NONNEG)
    taste_weight: float = _f(_NONNEG)
    taste_segments: int = _f(Range(1))  # users share one of this many taste prototypes ...
    taste_spread: float = _f(_NONNEG)  # ... plus individual variation of this relative size
    noise_std: float = _f(Range(0, 64))
    jitter: float = _f(Range(0, 1))


@dataclasses.dataclass(frozen=True)
class FileDataConfig:
    """A real data set distributed as a DVBPR-style ``.npy`` file, pinned by its SHA-256."""

    name: str
    sha256: str

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError("sha256 must be 64 lowercase hex digits")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and the image size every stage sees."""

    source: Literal["synthetic", "dvbpr-npy"]
    image_size: int = _f(Range(64, 512))  # AlexNet-style pooling needs >= 63 px
    n_cold_items: int = _f(Range(1))
    seed: int = _f(_SEED)
    synthetic: SyntheticConfig | None = None
    file: FileDataConfig | None = None

    def __post_init__(self) -> None:
        if self.source == "synthetic" and (self.synthetic is None or self.file is not None):
            raise ValueError("source 'synthetic' needs a [data.synthetic] table and no [data.file]")
        if self.source == "dvbpr-npy" and (self.file is None or self.synthetic is not None):
            raise ValueError("source 'dvbpr-npy' needs a [data.file] table and no [data.synthetic]")


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """How interactions become train / validation / test, which items are cold, and the hook."""

    # "leave-two-out": per user, a seeded shuffle; the last item is the test item, the one before it the
    # validation item. "as-distributed": the file's own validation and test items (real data).
    rule: Literal["leave-two-out", "as-distributed"]
    # Cold items: a seeded uniform sample among items that appear in no interaction at all.
    cold_rule: Literal["uniform-among-uninteracted"]
    # Hook: the item with the most training interactions; ties go to the lowest item id.
    hook_rule: Literal["most-train-interactions"]
    seed: int = _f(_SEED)


@dataclasses.dataclass(frozen=True)
class BPRConfig:
    """The first-stage ranker and the candidate sets it produces."""

    factors: int = _f(Range(1))
    learning_rate: float = _f(_POS)
    weight_decay: float = _f(_NONNEG)
    epochs: int = _f(Range(1))
    batch_size: int = _f(Range(1))
    init_std: float = _f(_POS)
    seed: int = _f(_SEED)
    # Model selection: the epoch with the best AUC of the validation items (against all catalog items
    # the user has not trained on) is kept.
    selection: Literal["validation-auc"]
    # Candidate set: the top-n_candidates catalog items by BPR score among items the user has not
    # trained on, excluding cold items and the user's test item; the test item is then added once.
    n_candidates: int = _f(Range(1))


@dataclasses.dataclass(frozen=True)
class ThreatConfig:
    """The default threat model for bounded attacks (L∞ in 8-bit units) and the ε sweep."""

    norm: Literal["linf"]
    epsilon: int = _f(Range(1, 255))
    epsilon_sweep: tuple[int, ...] = _f(Range(1, 255))
    quantize: Literal["uint8"]


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """Hit ranks, the significance test and the tie rule of the scoring engine."""

    hit_ranks: tuple[int, ...] = _f(Range(1))
    significance_level: float = _f(Range(0, 1, low_open=True))
    test: Literal["paired-t"]
    # A cold item enters the top-N only if its score is strictly above the N-th best of the base set.
    ties: Literal["against-cold-item"]


@dataclasses.dataclass(frozen=True)
class ProtocolInfo:
    """Identity of the protocol; ``name`` must equal the file's stem."""

    name: str
    version: int = _f(Range(1))
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A complete, validated protocol. ``sha256`` is the hash of its canonical JSON form."""

    protocol: ProtocolInfo
    data: DataConfig
    split: SplitConfig
    bpr: BPRConfig
    rankers: RankersConfig
    threat: ThreatConfig
    metrics: MetricsConfig
    source: str = field(default="", compare=False, metadata={"internal": True})

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def version(self) -> int:
        return self.protocol.version

    def canonical(self) -> dict:
        return to_dict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def hash12(self) -> str:
        return self.sha256[:12]


def protocol_dirs() -> list[Path]:
    """Folders searched for ``NAME.toml``: ``$AIPBENCH_PROTOCOLS`` (os.pathsep-separated), then the
    project's own ``protocols/``."""
    dirs = [Path(p) for p in os.environ.get("AIPBENCH_PROTOCOLS", "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "protocols")
    return dirs


def list_protocols() -> list[Path]:
    seen: dict[str, Path] = {}
    for d in protocol_dirs():
        for p in sorted(d.glob("*.toml")):
            seen.setdefault(p.stem, p)
    return [seen[k] for k in sorted(seen)]


def find_protocol(name_or_path: str | Path) -> Path:
    """A protocol name (looked up in ``protocol_dirs()``) or a path to a ``.toml`` file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(path, "", "no such protocol file")
        return path
    for d in protocol_dirs():
        candidate = d / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    known = [p.stem for p in list_protocols()]
    import difflib

    close = difflib.get_close_matches(str(name_or_path), known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
    raise ConfigError(str(name_or_path), "", f"unknown protocol{hint}")


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load, validate and return a protocol; any violation raises ``ProtocolError`` (one line)."""
    path = find_protocol(name_or_path)
    raw = read_toml(path)
    proto = dataclasses.replace(build(Protocol, raw, path), source=str(path))
    if proto.name != path.stem:
        raise ConfigError(path, "protocol.name", f"must equal the file name '{path.stem}', got {proto.name!r}")
    return proto
