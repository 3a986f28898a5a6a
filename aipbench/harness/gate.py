"""Fit a detector defense at the upload gate: on catalog training items only — clean, and attacked by the
reference INSA (each ranker) and EXPA (each image model) — at its 1 % false-alarm operating point."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from aipbench.defenses.variants import FALSE_ALARM_RATE, Gate

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared

__all__ = ["DETECTOR_ATTACKS", "fit_gate"]

DETECTOR_ATTACKS = ("insa", "expa")  # whose images on training items the detector learns from


def fit_gate(sub: "Submission", prepared: "Prepared", names: Sequence[str], *, time_limit: float,
             isolation: str = "sandbox", log: Callable[[str], None]) -> Gate:
    """Fit the submission's detector on catalog training items — clean, and attacked by INSA (each
    ranker) and EXPA (each image model), made by the reference submissions and kept in the run cache —
    and set its threshold to flag ``FALSE_ALARM_RATE`` of the cooperative cold images."""
    from aipbench.defenses.guard import call_defense
    from aipbench.defenses.detector import DetectorContext, detector_scores, detector_training_items, threshold_at
    from aipbench.defenses.transforms import in_worker
    from aipbench.harness.isolation.defense_worker import open_defense
    from aipbench.harness.isolation.returns import checked_training_items
    from aipbench.harness.sources import ImageSource
    from aipbench.harness.submission import reference_submission
    from aipbench.hashing import folder_sha256, state_sha256
    from aipbench.pipeline.loaders import load_extractor

    dataset, device = prepared.dataset, prepared.device
    detector = open_defense(sub.entry_file, sub.entry_class, isolation=isolation, precision=prepared.precision)
    seed = prepared.protocol.data.seed
    pool = dataset.n_items - len(dataset.cold_items) - 1  # catalog items besides the cold and hook items
    asked = checked_training_items(getattr(detector, "training_items", 300), source=str(sub.entry_file),
                                   available=pool)
    train = detector_training_items(dataset, asked, seed)
    adversarial = {}
    for a in DETECTOR_ATTACKS:
        asub = reference_submission(a, kind="attack")
        src = ImageSource(asub, folder_sha256(asub.folder), prepared, epsilon=asub.threat.epsilon,
                          time_limit=time_limit, log=log, items=train, subdir="detector-training", isolation=isolation)
        for name in names:
            images, target, _, _ = src.images(prepared.ranker(name))
            adversarial.setdefault(f"{a}/{target}", images)
    context = DetectorContext(cold_items=dataset.cold_items, train_items=train,
                              train_images=np.asarray(dataset.images[train]).copy(), adversarial=adversarial,
                              feature_extractor=load_extractor(prepared.store).to(device), seed=seed, device=device)
    start = time.perf_counter()
    call_defense(detector, "fit", context)
    if isinstance(detector, torch.nn.Module):  # in this process; a worker does this itself
        detector.eval().requires_grad_(False)
    fit_s = time.perf_counter() - start
    clean = detector_scores(detector, prepared.cooperative_images(dataset.cold_items), device=device)
    threshold = threshold_at(clean, FALSE_ALARM_RATE)
    margin = 0.25 * max(threshold - float(np.median(clean)), 1e-3)  # aim a little inside the accepted side
    if in_worker(detector):  # it hashes its own state
        digest = detector.state_sha256() or folder_sha256(sub.folder)
    else:
        digest = state_sha256(detector) if isinstance(detector, torch.nn.Module) else folder_sha256(sub.folder)
    info = {"training_items": len(train), "training_sets": sorted(adversarial), "fit_s": fit_s, "sha256": digest}
    false_alarms = float((clean > threshold).mean())
    # the operating point's rate on other clean images: the catalog's test items (a seeded sample of at most 2,000)
    catalog = np.unique(dataset.test_items)
    catalog = np.sort(np.random.default_rng([seed, 0xFA15E]).choice(catalog, min(2000, catalog.size), replace=False))
    info["catalog_false_alarm_rate"] = float((detector_scores(detector, np.asarray(dataset.images[catalog]),
                                                              device=device) > threshold).mean())
    info["catalog_items"] = int(catalog.size)
    log(f"detector fitted on {len(train)} training items x {len(adversarial) + 1} image sets in {fit_s:.1f} s; "
        f"threshold {threshold:.3f} flags {false_alarms:.2%} of the cooperative cold images")
    return Gate(detector=detector, threshold=threshold, margin=margin, false_alarms=false_alarms, info=info,
                device=device)
