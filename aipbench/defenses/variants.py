"""The defended systems a defense submission yields, each scored like the undefended one: a transform
at each of its levels, the ranker a training defense trains, or the ranker behind a detector's gate."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aipbench.scoring.metrics import cold_hits, compare

if TYPE_CHECKING:
    from aipbench.pipeline.prepared import Prepared

__all__ = ["FALSE_ALARM_RATE", "Gate", "Variant", "evaluated_levels", "probe", "variants"]

# Detectors are scored at this rate of clean uploads flagged (the operating point).
FALSE_ALARM_RATE = 0.01


@dataclasses.dataclass
class Gate:
    """A fitted detector at its operating point: uploads scoring above ``threshold`` are rejected;
    ``margin`` is how far inside the accepted side an adaptive attack aims."""

    detector: Any
    threshold: float
    margin: float
    false_alarms: float
    info: dict
    device: str

    def accepts(self, images: np.ndarray) -> np.ndarray:
        from aipbench.defenses.detector import detector_scores

        return detector_scores(self.detector, images, device=self.device) <= self.threshold

    def wrap(self, model):
        from aipbench.defenses.detector import Penalized

        return Penalized(model, self.detector, threshold=self.threshold, margin=self.margin)

    def summary(self) -> dict:
        return {"false_alarm_rate": FALSE_ALARM_RATE, "threshold": self.threshold,
                "measured_false_alarm_rate": self.false_alarms, **self.info}


@dataclasses.dataclass
class Variant:
    """One defended system: ``ranker`` scores every image; adaptive attacks are given ``attack_ranker``
    (and ``wrap`` puts image models they load themselves behind the defense); ``gate`` rejects uploads."""

    level: int | None
    tag: str  # the run-cache folder of this system's adaptive images
    ranker: Any
    attack_ranker: Any
    wrap: Callable | None = None
    gate: Gate | None = None
    extra: dict = dataclasses.field(default_factory=dict)  # added to the results row
    randomized: tuple[int, int, int] | None = None  # (differing, probed, EOT draws) of a randomized transform

    def accepted(self, images: np.ndarray) -> np.ndarray:
        return np.ones(len(images), bool) if self.gate is None else self.gate.accepts(images)

    def hits(self, images: np.ndarray, summary, *, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Per image: HR@n under this system (a rejected upload reaches nobody), and whether it was accepted."""
        accepted = self.accepted(images)
        return cold_hits(self.ranker, images, summary, n=n) * accepted, accepted

    def side(self, images: np.ndarray, summary, *, coop_hits: np.ndarray, n: int, alpha: float, boot=None) -> dict:
        """Adversarial HR@n of ``images`` under this system, compared with ``coop_hits`` (with intervals)."""
        hits, accepted = self.hits(images, summary, n=n)
        out = compare(hits, coop_hits, alpha, boot=boot)
        if self.gate is not None:
            out["detection_rate"] = float(1 - accepted.mean())
        return out

    def label(self, spec) -> str:
        if spec.type == "transform":
            return f"{spec.parameter}={self.level}" if spec.parameter else "transform"
        return "trained defense" if spec.type == "training" else f"detector at {FALSE_ALARM_RATE:.0%} false alarms"


def evaluated_levels(spec, levels=None) -> list:
    """The levels a defense is evaluated at: ``levels`` if given, else a transform family's own, else
    the single level ``None`` (a plain transform, a training defense or a detector)."""
    return list(levels or spec.levels or [None])


def probe(sub, prepared: "Prepared", levels: Sequence[int] | None = None, *, opener: Callable) -> dict:
    """Load the defense (and, for a transform, apply it to two cooperative images at each level) before any
    attack runs, so that broken defense code fails in seconds with its one-line error. ``opener(params)``
    loads the defense where its code runs (``harness.isolation.defense_worker.open_defense``); a transform's defenses
    in worker processes are returned by level, for ``variants`` to use for every ranker."""
    from aipbench.defenses.transforms import apply_transform, in_worker

    spec, loaded = sub.defense, {}
    for level in evaluated_levels(spec, levels) if spec.type == "transform" else [None]:
        defense = opener({spec.parameter: level} if spec.parameter else {})
        if spec.type == "transform":
            apply_transform(defense, prepared.cooperative_images(prepared.cold_subset(2)))
            if in_worker(defense):
                loaded[level] = defense
        elif in_worker(defense):  # a training defense or detector: its own worker where it runs
            defense.close()
    return loaded


def variants(sub, ranker, prepared: "Prepared", *, sub_hash: str, levels: Sequence[int] | None, gate: Gate | None,
             log: Callable[[str], None], opener: Callable, loaded: dict | None = None,
             own_family: Callable | None = None) -> Iterator[Variant]:
    """The defended systems to score against ``ranker``, built one at a time; ``opener`` and ``loaded`` as
    for ``probe`` (a training defense's opener also takes the data set its worker may read); ``own_family``
    serves a trained ranker of the defense's own family (``aipbench.defenses.training.rebuild_ranker``)."""
    from aipbench.defenses.defended import defend
    from aipbench.defenses.transforms import Transformed, in_worker

    spec, prefix = sub.defense, f"{sub.submission.name}-{sub_hash[:12]}"
    if spec.type == "transform":
        from aipbench.defenses.transforms import EOT, EOT_SAMPLES, is_randomized

        probe = np.asarray(prepared.dataset.images[prepared.cold_subset(16)])
        for level in evaluated_levels(spec, levels):
            if loaded and level in loaded:  # a worker process per level, shared by the rankers
                defense = loaded[level]
            else:
                defense = opener({spec.parameter: level} if spec.parameter else {})
            defended = defend(ranker, defense, prepared.dataset)
            tag = prefix + (f"-{level}" if level is not None else "")
            differing = is_randomized(defense, probe)
            if not differing:
                yield Variant(level, tag, defended, defended, wrap=lambda m, d=defense: Transformed(m, d))
                continue
            # a randomized transform: adaptive attacks optimize its expectation (EOT), flagged in the results
            yield Variant(level, f"{tag}-eot{EOT_SAMPLES}", defended, defended.with_image_model(EOT),
                          wrap=lambda m, d=defense: EOT(Transformed(m, d)),
                          randomized=(differing, len(probe), EOT_SAMPLES))
    elif spec.type == "training":
        from aipbench.defenses.training import train_defended
        from aipbench.hashing import state_sha256

        start = time.perf_counter()
        trainer = opener({}, dataset=prepared.dataset)
        try:
            trained = train_defended(trainer, store=prepared.store, dataset=prepared.dataset, undefended=ranker,
                                     device=prepared.device, own_family=own_family)
        finally:
            if in_worker(trainer):
                trainer.close()
        seconds = time.perf_counter() - start
        digest = getattr(trained, "checkpoint_sha256", None) or state_sha256(trained)  # its own family: its checkpoint
        log(f"{ranker.name}: trained the defended ranker in {seconds:.0f} s (state {digest[:12]})")
        yield Variant(None, f"{prefix}-{digest[:12]}", trained, trained,
                      extra={"defended_ranker": {"sha256": digest, "training_s": seconds}})
    else:
        yield Variant(None, f"{prefix}-{gate.info['sha256'][:12]}", ranker, ranker.with_image_model(gate.wrap),
                      wrap=gate.wrap, gate=gate)
