"""Protocol sections for the visual feature extractor and the second-stage rankers: ``[rankers.<name>]``, one
per ranker the protocol trains. The sections a protocol may hold are those registered in ``SECTIONS``: the
paper's three trained rankers' here, any other ranker's by its own module (``aipbench.rankers.spec``); a
protocol without a ranker's section has no such ranker, so adding one changes no protocol file and no hash."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import field
from typing import Any, Literal

from aipbench.protocol.config import NON_NEGATIVE, POSITIVE, SEED, Range, field_with
from aipbench.registry import Registry

__all__ = [
    "AMRConfig",
    "DVBPRConfig",
    "ExtractorConfig",
    "PretrainConfig",
    "RankersConfig",
    "SECTIONS",
    "TrainConfig",
    "VBPRConfig",
]

_POS, _NONNEG, _SEED, _f = POSITIVE, NON_NEGATIVE, SEED, field_with


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Pre-training of a synthetic protocol's extractor: a classifier over visual attributes, trained on
    a generated image set disjoint from the catalog (its own seed), then frozen."""

    n_images: int = _f(Range(10))
    epochs: int = _f(Range(1))
    batch_size: int = _f(Range(1))
    learning_rate: float = _f(_POS)
    weight_decay: float = _f(_NONNEG)
    seed: int = _f(_SEED)
    # Extra targets that keep Φ sensitive to more than the class attributes, as ImageNet features are:
    # the renderer's ten nuisance draws per image (rotation, scale, shift x/y, tone, tint r/g/b, pattern
    # phase, background level), each cut into ``nuisance_bins`` equal ranges and classified, with loss
    # weight ``nuisance_weight`` per draw. Absent (synthetic-v1): the class attributes alone.
    nuisance_weight: float | None = field(default=None, metadata={"range": _POS})
    nuisance_bins: int | None = field(default=None, metadata={"range": Range(2)})

    def __post_init__(self) -> None:
        if (self.nuisance_weight is None) != (self.nuisance_bins is None):
            raise ValueError("nuisance_weight and nuisance_bins go together")


@dataclasses.dataclass(frozen=True)
class ExtractorConfig:
    """Φ: the pre-trained feature extractor; features are the fc7 activations after ReLU."""

    # "torchvision-alexnet": torchvision's AlexNet with its ImageNet weights (IMAGENET1K_V1), handed over
    # offline with `aipbench data weights FILE` and checked by torchvision's hash rule (where the file is
    # is no part of the protocol). "alexnet-style": the same layer layout with the widths below,
    # pre-trained on generated images (synthetic protocols).
    kind: Literal["torchvision-alexnet", "alexnet-style"]
    conv_widths: tuple[int, ...] = _f(Range(1))
    fc_width: int = _f(Range(1))
    batch_size: int = _f(Range(1))
    pretrain: PretrainConfig | None = None

    def __post_init__(self) -> None:
        if len(self.conv_widths) != 5:
            raise ValueError("conv_widths must list the 5 convolution widths")
        if self.kind == "alexnet-style" and self.pretrain is None:
            raise ValueError("kind 'alexnet-style' needs a [rankers.extractor.pretrain] table")
        if self.kind == "torchvision-alexnet" and (self.conv_widths != (64, 192, 384, 256, 256) or self.fc_width != 4096):
            raise ValueError("torchvision-alexnet has conv_widths [64, 192, 384, 256, 256] and fc_width 4096")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by the trained rankers (BPR loss of Eq. 4, Adam)."""

    learning_rate: float = _f(_POS)
    weight_decay: float = _f(_NONNEG)
    epochs: int = _f(Range(1))
    batch_size: int = _f(Range(1))
    seed: int = _f(_SEED)
    # Adam's rate for the per-user parameters (γ_u, θ_u), which get only a few updates per epoch on
    # sparse data (about 5 training items per user); absent: ``learning_rate``.
    user_learning_rate: float | None = field(default=None, metadata={"range": _POS})


@dataclasses.dataclass(frozen=True)
class VBPRConfig:
    """VBPR (Eq. 2): ``factors`` = length of γ, ``embedding_length`` = length of θ (rows of E)."""

    factors: int = _f(Range(1))
    embedding_length: int = _f(Range(1))
    visual_bias: bool
    train: TrainConfig


@dataclasses.dataclass(frozen=True)
class AMRConfig:
    """AMR (Eq. 10–11): VBPR trained with on-the-fly adversarial perturbations of its embeddings."""

    factors: int = _f(Range(1))
    embedding_length: int = _f(Range(1))
    visual_bias: bool
    # "vbpr": start from the trained VBPR checkpoint (as AMR's authors do), then train adversarially.
    init: Literal["vbpr", "random"]
    # Which embeddings receive the perturbation Δ (the fast-gradient direction of the BPR loss): "user" =
    # γ_u and θ_u, "user_gamma" = γ_u only, "item" = γ_i, "visual" = the projected visual embedding E·Φ(x_i).
    perturb: tuple[Literal["user", "user_gamma", "item", "visual"], ...]
    adv_epsilon: float = _f(_POS)
    adv_weight: float = _f(_NONNEG)
    train: TrainConfig
    # Δ's size: "row" (absent) — each row of g scaled to L2 norm ``adv_epsilon`` (AMR as He et al. define
    # it); "batch" — g scaled by the Frobenius norm of the whole batch's gradient, so a row gets about
    # adv_epsilon / sqrt(batch_size) (the AIP reference code, train/AMR.py).
    adv_norm: Literal["row", "batch"] | None = None

    def __post_init__(self) -> None:
        if "user" in self.perturb and "user_gamma" in self.perturb:
            raise ValueError("perturb 'user' already includes γ_u ('user_gamma'); name one of them")


@dataclasses.dataclass(frozen=True)
class DVBPRConfig:
    """DVBPR (Eq. 5): a CNN-F trained end to end with the BPR loss; dropout only in training."""

    embedding_length: int = _f(Range(1))
    conv_widths: tuple[int, ...] = _f(Range(1))
    fc_widths: tuple[int, ...] = _f(Range(1))
    local_response_norm: bool  # CNN-F's LRN after conv1 and conv2 (the paper's model has it)
    dropout: float = _f(Range(0, 1))
    train: TrainConfig

    def __post_init__(self) -> None:
        if len(self.conv_widths) != 5 or len(self.fc_widths) != 2:
            raise ValueError("CNN-F has 5 convolution widths and 2 fully-connected widths")


SECTIONS: Registry[type] = Registry("ranker section")  # [rankers.<name>] → its frozen dataclass
SECTIONS.register("vbpr")(VBPRConfig)
SECTIONS.register("dvbpr")(DVBPRConfig)
SECTIONS.register("amr")(AMRConfig)


def _known_sections(wanted: set[str]) -> dict[str, type]:
    """The sections a protocol may hold. A ranker beyond the paper's registers its section as its module is
    imported: a protocol that names one loads aipbench's ranker registry (which imports every ranker module)."""
    if any(name not in SECTIONS for name in wanted):
        importlib.import_module("aipbench.rankers.registry")  # by name: the rankers come after the protocol
    return {name: SECTIONS.get(name) for name in SECTIONS}


@dataclasses.dataclass(frozen=True)
class RankersConfig:
    """The extractor Φ and a section per trained ranker of the protocol (``protocol.rankers.vbpr``)."""

    extractor: ExtractorConfig
    sections: tuple[tuple[str, Any], ...] = field(default=(), metadata={"sections": _known_sections})

    def section(self, name: str) -> Any | None:
        """The ranker ``name``'s section, or None where the protocol has none."""
        return dict(self.sections).get(name)

    def __getattr__(self, name: str) -> Any:  # protocol.rankers.<name>: a section the protocol holds
        if not name.startswith("_"):
            for key, value in object.__getattribute__(self, "sections"):
                if key == name:
                    return value
        raise AttributeError(f"the protocol has no [rankers.{name}] section")
