"""The defended systems a defense submission yields, each scored like the undefended one: a transform
at each of its levels, the ranker a training defense trains, or the ranker behind a detector's gate."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["FALSE_ALARM_RATE", "Gate", "Variant", "cold_hits", "compare", "evaluated_levels", "fit_gate", "variants"]

# Detectors are scored at this rate of clean uploads flagged (the operating point).
FALSE_ALARM_RATE = 0.01
DETECTOR_ATTACKS = ("insa", "expa")  # whose images on training items the detector learns from


def cold_hits(ranker, images: np.ndarray, summary, n: int) -> np.ndarray:
    """Per image: the fraction of all users whose top-``n`` the image (as a cold item) enters."""
    from aipbench.scoring import cold_item_metrics

    with torch.no_grad():
        return cold_item_metrics(ranker.score_images(ranker.all_users(), torch.from_numpy(images)), summary).hit_rate[n]


def compare(adv: np.ndarray, coop: np.ndarray, level: float) -> dict:
    """Mean adversarial HR, its difference to cooperative, and the paired t-test."""
    from aipbench.scoring import significance

    return {"hr": float(adv.mean()), "delta": float((adv - coop).mean()), "test": significance(adv, coop, level)}


class Gate:
    """A fitted detector at its operating point: uploads scoring above ``threshold`` are rejected."""

    def __init__(self, detector, threshold: float, margin: float, false_alarms: float, info: dict, device: str) -> None:
        self.detector, self.threshold, self.margin = detector, threshold, margin
        self.false_alarms, self.info, self.device = false_alarms, info, device

    def accepts(self, images: np.ndarray) -> np.ndarray:
        from aipbench.defenses.detector import detector_scores

        return detector_scores(self.detector, images, device=self.device) <= self.threshold

    def wrap(self, model):
        from aipbench.defenses.detector import Penalized

        return Penalized(model, self.detector, self.threshold, self.margin)

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

    def accepted(self, images: np.ndarray) -> np.ndarray:
        return np.ones(len(images), bool) if self.gate is None else self.gate.accepts(images)

    def side(self, images: np.ndarray, summary, coop_hits: np.ndarray, n: int, alpha: float) -> dict:
        """Adversarial HR@n of ``images`` under this system (a rejected upload reaches nobody)."""
        accepted = self.accepted(images)
        out = compare(cold_hits(self.ranker, images, summary, n) * accepted, coop_hits, alpha)
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


def variants(sub, sub_hash: str, ranker, dataset, store, levels, gate: Gate | None, device: str,
             log: Callable[[str], None]) -> Iterator[Variant]:
    """The defended systems to score against ``ranker``, built one at a time."""
    from aipbench.defenses.defended import defend, with_image_model
    from aipbench.defenses.transforms import Transformed, load_defense

    spec, prefix = sub.defense, f"{sub.submission.name}-{sub_hash[:12]}"
    if spec.type == "transform":
        for level in evaluated_levels(spec, levels):
            defense = load_defense(sub.entry_file, sub.entry_class, **({spec.parameter: level} if spec.parameter else {}))
            defended = defend(ranker, defense, dataset)
            yield Variant(level, prefix + (f"-{level}" if level is not None else ""), defended, defended,
                          wrap=lambda m, d=defense: Transformed(m, d))
    elif spec.type == "training":
        from aipbench.defenses.training import state_sha256, train_defended

        start = time.perf_counter()
        trained = train_defended(load_defense(sub.entry_file, sub.entry_class), store, dataset, ranker, device)
        seconds, digest = time.perf_counter() - start, state_sha256(trained)
        log(f"{ranker.name}: trained the defended ranker in {seconds:.0f} s (state {digest[:12]})")
        yield Variant(None, f"{prefix}-{digest[:12]}", trained, trained,
                      extra={"defended_ranker": {"sha256": digest, "training_s": seconds}})
    else:
        yield Variant(None, f"{prefix}-{gate.info['sha256'][:12]}", ranker, with_image_model(ranker, gate.wrap),
                      wrap=gate.wrap, gate=gate)


def fit_gate(sub, store, dataset, names, device: str, time_limit: float, log: Callable[[str], None]) -> Gate:
    """Fit the submission's detector on catalog training items — clean, and attacked by INSA (each
    ranker) and EXPA (each image model), made by the reference submissions and kept in the run cache —
    and set its threshold to flag ``FALSE_ALARM_RATE`` of the cooperative cold images."""
    from aipbench.defenses.detector import DetectorContext, detector_scores, detector_training_items, threshold_at
    from aipbench.defenses.evaluate import SUBMISSIONS
    from aipbench.defenses.training import state_sha256
    from aipbench.defenses.transforms import load_defense
    from aipbench.harness import ImageSource, submission_sha256
    from aipbench.ranker_steps import load_extractor, load_ranker
    from aipbench.submission import load_submission

    detector = load_defense(sub.entry_file, sub.entry_class)
    seed = store.protocol.data.seed
    train = detector_training_items(dataset, int(getattr(detector, "training_items", 300)), seed)
    adversarial = {}
    for a in DETECTOR_ATTACKS:
        asub = load_submission(SUBMISSIONS / a)
        src = ImageSource(asub, submission_sha256(asub.folder), store, dataset, asub.threat.epsilon, device,
                          time_limit, log, items=train, subdir="detector-training")
        for name in names:
            images, target, _, _ = src.images(load_ranker(store, name, device))
            adversarial.setdefault(f"{a}/{target}", images)
    context = DetectorContext(cold_items=dataset.cold_items, train_items=train,
                              train_images=np.asarray(dataset.images[train]).copy(), adversarial=adversarial,
                              feature_extractor=load_extractor(store).to(device), seed=seed, device=device)
    start = time.perf_counter()
    detector.fit(context)
    if isinstance(detector, torch.nn.Module):
        detector.eval().requires_grad_(False)
    fit_s = time.perf_counter() - start
    clean = detector_scores(detector, np.asarray(dataset.images[dataset.cold_items]), device=device)
    threshold = threshold_at(clean, FALSE_ALARM_RATE)
    margin = 0.25 * max(threshold - float(np.median(clean)), 1e-3)  # aim a little inside the accepted side
    digest = state_sha256(detector) if isinstance(detector, torch.nn.Module) else submission_sha256(sub.folder)
    info = {"training_items": len(train), "training_sets": sorted(adversarial), "fit_s": fit_s, "sha256": digest}
    log(f"detector fitted on {len(train)} training items x {len(adversarial) + 1} image sets in {fit_s:.1f} s; "
        f"threshold {threshold:.3f} flags {float((clean > threshold).mean()):.2%} of the cooperative cold images")
    return Gate(detector, threshold, margin, float((clean > threshold).mean()), info, device)
