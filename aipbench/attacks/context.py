"""What an attack may see: a context that grants exactly its knowledge level (docs/attacks.md, knowledge levels)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aipbench.progress import report, require

__all__ = ["GRANTS", "KNOWLEDGE_LEVELS", "PUBLIC", "PUBLIC_DOCS", "AttackContext", "KnowledgeError", "context_table",
           "level_grants", "levels_granting"]

KNOWLEDGE_LEVELS = ("insider", "expert", "semantic", "classifier", "blackbox")

# Everyone sees the cold items they attack and the public catalog (the platform's web site); the
# attack's budget, seed and device come from the harness.
PUBLIC = ("cold_items", "cold_images", "catalog_images", "epsilon", "seed", "device", "image_size")

# What each level adds (docs/attacks.md's table). The insider, inside the platform, has everything.
GRANTS: dict[str, frozenset[str]] = {
    "insider": frozenset({"ranker", "user_embeddings", "feature_extractor", "training_interactions",
                          "hook_item", "hook_image", "image_model", "image_model_name", "classifier",
                          "popular_class"}),
    "expert": frozenset({"image_model", "image_model_name", "hook_item", "hook_image"}),
    "semantic": frozenset({"hook_item", "hook_image"}),
    "classifier": frozenset({"classifier", "popular_class"}),
    # No model at all: the ranks a query image would reach in the lists of a few accounts the merchant
    # controls, counted against a budget (aipbench.attacks.oracle; Cohen et al., WSDM '21).
    "blackbox": frozenset({"oracle"}),
}

_DOCS = {
    "ranker": "the trained ranker (aipbench.rankers.base.Ranker): encode, item_side, user_side, score_images",
    "user_embeddings": "every user's side of the ranker's score (Side: vectors and biases)",
    "feature_extractor": "the pre-trained visual feature extractor Φ (pixels → features)",
    "training_interactions": "(user, item) training pairs, an int64 array of shape (n, 2)",
    "hook_item": "id of the hook item (the catalog item with the most training interactions)",
    "hook_image": "the hook item's uint8 image (3×H×W)",
    "image_model": "the ranker's image model: Φ for AlexRank/VBPR/AMR, the CNN Φ_e for DVBPR",
    "image_model_name": "which image model that is: 'extractor' (the protocol's Φ) or 'dvbpr' (a network the ranker trained itself, as DVBPR's Φ_e)",
    "classifier": "the pre-trained classifier: uint8 or [0, 1] images → class logits",
    "popular_class": "the class with the most training interactions (TAaMR's target)",
    "oracle": "query(images) -> each image's rank in the probe users' lists, against a budget of queried images",
}


# What every context has, whatever the level.
PUBLIC_DOCS = {
    "cold_items": "the ids of the cold items attacked (int64, N)",
    "cold_images": "their uint8 images (N×3×H×W), aligned with cold_items; return yours in this order",
    "catalog_images": "every catalog item's image, indexed by item id (the platform's public web site)",
    "epsilon": "the L∞ budget in 8-bit units (None for an unbounded threat model)",
    "seed": "the protocol's data seed",
    "device": "the torch device to compute on",
    "image_size": "the protocol's image side in pixels",
    "knowledge": "the attack's knowledge level",
    "n_items": "len(cold_items)",
    "available()": "the names this context grants",
    "item_rng(item)": "a random generator seeded by (seed, item): the same draws however the items are split",
    "progress(done, total)": "report how far the attack is (any unit); the harness shows a live bar with an estimate",
}


def level_grants(level: str) -> list[tuple[str, str]]:
    """(name, what it is) for everything a ``level`` context grants beyond the public fields, in ``_DOCS`` order."""
    if level not in KNOWLEDGE_LEVELS:
        from aipbench.errors import InputError
        from aipbench.registry import suggestion

        raise InputError(f"unknown knowledge level {level!r}{suggestion(level, KNOWLEDGE_LEVELS)}")
    return [(name, doc) for name, doc in _DOCS.items() if name in GRANTS[level]]


def context_table() -> str:
    """docs/attacks.md's table of what each level's context holds, made from ``GRANTS`` (so the two agree)."""
    lines = ["| granted | what it is | " + " | ".join(KNOWLEDGE_LEVELS) + " |",
             "|---|---|" + "---|" * len(KNOWLEDGE_LEVELS)]
    lines += [f"| `{name}` | {doc} | " + " | ".join("✓" if name in GRANTS[level] else "" for level in KNOWLEDGE_LEVELS)
              + " |" for name, doc in _DOCS.items()]
    lines += ["", "| every context has | what it is |", "|---|---|"]
    lines += [f"| `{name}` | {doc} |" for name, doc in PUBLIC_DOCS.items()]
    return "\n".join(lines) + "\n"


class KnowledgeError(PermissionError):
    """An attack asked for something its knowledge level does not grant."""


def levels_granting(name: str) -> list[str]:
    return [level for level in KNOWLEDGE_LEVELS if name in GRANTS[level]]


class AttackContext:
    """The harness's hand-over to an attack. Public fields are attributes; everything else is a
    property that exists only if the attack's knowledge level grants it — the context is built with
    nothing more, so what a level does not grant cannot be reached through it.

    ``cold_images`` (uint8, N×3×H×W) are aligned with ``cold_items``; an attack returns its images in
    the same order. ``epsilon`` is the L∞ budget in 8-bit units (None for unbounded threat models).
    """

    def __init__(self, knowledge: str, *, public: dict[str, Any], granted: dict[str, Any]) -> None:
        if knowledge not in KNOWLEDGE_LEVELS:
            raise ValueError(f"unknown knowledge level {knowledge!r}")
        missing = set(PUBLIC) - set(public)
        extra = set(granted) - GRANTS[knowledge]
        if missing or extra:
            raise ValueError(f"context for {knowledge}: missing public {sorted(missing)}, ungranted {sorted(extra)}")
        self.knowledge = knowledge
        self._public = dict(public)
        self._granted = dict(granted)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._public:
            return self._public[name]
        if name in self._granted:
            return self._granted[name]
        if name in _DOCS:
            who = " and ".join(levels_granting(name))
            raise KnowledgeError(f"{name} is not available to {self.knowledge} attacks (granted to: {who})")
        raise AttributeError(f"an attack context has no {name!r}; it offers {sorted(self.available())}")

    def __reduce__(self):  # pickles through the constructor (which validates), not through __getattr__
        return (_restore, (self.knowledge, self._public, self._granted))

    def available(self) -> list[str]:
        """Names this context grants (public fields included)."""
        return sorted([*self._public, *self._granted])

    def __repr__(self) -> str:
        return f"AttackContext({self.knowledge}, {len(self.cold_items)} cold items, grants {sorted(self._granted)})"

    @property
    def n_items(self) -> int:
        """How many cold items the attack gets: ``len(cold_items)``."""
        return int(np.asarray(self.cold_items).shape[0])

    def progress(self, done: float, total: float) -> None:
        """Report how far the attack is — ``done`` of ``total`` in any unit (items, steps, queries) — as often as
        it likes: the harness shows one live bar per run with a count and an estimate of the time left
        (``AIPBENCH_PROGRESS=0`` hides it); a report costs nothing when nobody listens."""
        report(*require(done, total))

    def item_rng(self, item: int) -> np.random.Generator:
        """A random generator for one cold item, seeded by (the protocol's seed, the item's id): an attack
        that draws its randomness from it gives each item the same draws however the harness splits the
        cold items (into batches, processes or machines)."""
        return np.random.default_rng([int(self.seed), int(item)])


def _restore(knowledge: str, public: dict, granted: dict) -> AttackContext:
    return AttackContext(knowledge, public=public, granted=granted)
