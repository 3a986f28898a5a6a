"""The protocol's schema: frozen dataclasses, one per section of a protocol file, and its canonical hash."""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal

from aipbench.hashing import canonical_json, canonical_sha256
from aipbench.protocol.config import NON_NEGATIVE, POSITIVE, SEED, Range, field_with, to_dict
from aipbench.protocol.rankers import RankersConfig

__all__ = [
    "BPRConfig",
    "ComputeConfig",
    "DataConfig",
    "FileDataConfig",
    "MetricsConfig",
    "Protocol",
    "ProtocolInfo",
    "SplitConfig",
    "SyntheticConfig",
    "ThreatConfig",
]

_POS, _NONNEG, _SEED, _f = POSITIVE, NON_NEGATIVE, SEED, field_with


def _check_sha256(value: str | None, what: str) -> None:
    if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
        raise ValueError(f"{what} must be 64 lowercase hex digits")


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
    """A real data set distributed as a DVBPR-style ``.npy`` file. Nobody publishes its SHA-256, so the
    protocol pins what is published — the counts of the paper's Table 2 — and the importer checks them:
    ``users`` = usernum, ``items`` = itemnum, ``interactions`` = every record of user_train +
    user_validation + user_test as the file has them, before any clean-up (DVBPR counts "actions" so).
    ``sha256``, once known, pins the file itself too."""

    name: str
    users: int = _f(Range(1))
    items: int = _f(Range(1))
    interactions: int = _f(Range(1))
    sha256: str | None = None

    def __post_init__(self) -> None:
        _check_sha256(self.sha256, "sha256")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and the image size every stage sees."""

    source: Literal["synthetic", "dvbpr-npy"]
    image_size: int = _f(Range(64, 512))  # AlexNet-style pooling needs >= 63 px
    n_cold_items: int = _f(Range(1))
    seed: int = _f(_SEED)
    synthetic: SyntheticConfig | None = None
    file: FileDataConfig | None = None
    # How a synthetic catalog's photos are kept: "raw" (absent: one uint8 array) or "packed-jpeg" (each
    # photo a JPEG of ``jpeg_quality``, packed end to end as the real data sets are; decoded where a step
    # needs pixels). The photos are rendered in parallel processes either way they are packed.
    image_store: Literal["raw", "packed-jpeg"] | None = None
    jpeg_quality: int | None = field(default=None, metadata={"range": Range(50, 100)})

    def __post_init__(self) -> None:
        if (self.image_store == "packed-jpeg") != (self.jpeg_quality is not None):
            raise ValueError("image_store 'packed-jpeg' takes a jpeg_quality, and only it does")
        if self.image_store is not None and self.source != "synthetic":
            raise ValueError("image_store is for synthetic catalogs (a real data set keeps its JPEGs as distributed)")
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
    # Cold items — "uniform-among-uninteracted": a seeded uniform sample among the items that appear in no
    # interaction at all; "listed": the ids in ``cold_items_file`` (one a line, '#' comments; relative to the
    # protocol file's folder), pinned by ``cold_items_sha256``; none of them may appear in an interaction.
    cold_rule: Literal["uniform-among-uninteracted", "listed"]
    # Hook: the item with the most training interactions; ties go to the lowest item id.
    hook_rule: Literal["most-train-interactions"]
    seed: int = _f(_SEED)
    cold_items_file: str | None = None
    cold_items_sha256: str | None = None

    def __post_init__(self) -> None:
        listed = self.cold_items_file is not None and self.cold_items_sha256 is not None
        if (self.cold_rule == "listed") != listed or (self.cold_items_file is None) != (self.cold_items_sha256 is None):
            raise ValueError("cold_rule 'listed' takes cold_items_file and cold_items_sha256; other rules take neither")
        _check_sha256(self.cold_items_sha256, "cold_items_sha256")


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
    # Candidate set: the top-n_candidates catalog items by BPR score, then the user's test item.
    n_candidates: int = _f(Range(1))
    # Which catalog items may be candidates. "unseen-catalog" (absent): those the user has not trained on,
    # never the test item (added once, after). "all-items": every catalog item, the user's own training
    # items and test item included (the test item then may appear twice) — how the paper's numbers were
    # measured (the AIP reference code, gen_candidate_set.py: np.argsort(-scores)[:, :1000] over all items).
    # Cold items are never candidates (the reference code ranks their untrained factors too; BPR's
    # negatives push those below every candidate, so no reported number depends on it).
    candidate_rule: Literal["unseen-catalog", "all-items"] | None = None


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
    # The cold items of a subset (Tables 6 and 8, figures, `evaluate --items N`): "first" (absent) — the N
    # lowest cold item ids; "seeded-random" — the first N of a permutation of the cold items seeded by
    # split.seed (so a smaller subset lies inside a larger one), evaluated in id order.
    subset_rule: Literal["first", "seeded-random"] | None = None
    # A defense's clean-quality cost that raises the "clean-cost" flag: the defended clean test HR@N more
    # than this fraction below the undefended (absent: 0.10), or the test AUC more than 0.01 below.
    clean_tolerance: float | None = field(default=None, metadata={"range": Range(0, 1)})


@dataclasses.dataclass(frozen=True)
class ComputeConfig:
    """How a GPU may compute (the CPU always computes in float32): "fp32"; "tf32" (TensorFloat-32 matrix
    products and convolutions, Ampere and later); "bf16" (TF32, and bfloat16 autocast in the CNNs' training forward passes; attacks and scoring stay
    TF32)."""

    precision: Literal["fp32", "tf32", "bf16"]


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
    compute: ComputeConfig | None = None  # absent: float32 everywhere
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
        return canonical_json(self.canonical())

    @property
    def sha256(self) -> str:
        return canonical_sha256(self.canonical())

    @property
    def hash12(self) -> str:
        return self.sha256[:12]
