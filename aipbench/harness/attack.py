"""Evaluate an attack: run it against every ranker of a protocol (at each budget), score cooperative and
adversarial cold items over all users, and assemble the sealed results document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.base import Ranker
    from aipbench.results.document import Results
    from aipbench.scoring.metrics import ColdItemMetrics

__all__ = ["budgets", "evaluate_attack"]


def budgets(sub: "Submission", epsilons: Sequence[int] | None) -> list[int | None]:
    """The L∞ budgets to evaluate: the submission's own, or a sweep (bounded code submissions only)."""
    source = sub.folder / "submission.toml"
    if not epsilons:
        return [sub.threat.epsilon]
    if sub.threat.norm != "linf" or sub.entry is None:
        raise InputError(f"{source}: an epsilon sweep needs a code submission with norm = \"linf\"")
    bad = [e for e in epsilons if not 1 <= int(e) <= 255]
    if bad:
        raise InputError(f"{source}: epsilon {bad[0]} is out of range 1..255 (8-bit units)")
    return sorted({int(e) for e in epsilons})


def _score_row(ranker: "Ranker", prepared: "Prepared", before: "ColdItemMetrics", coop: np.ndarray, adv: np.ndarray,
               *, epsilon: int | None, target: str, timing: dict) -> tuple[dict, dict]:
    """One results row and its per-item columns; ``before``: the cooperative images' metrics."""
    from aipbench.scoring.image_quality import image_quality
    from aipbench.scoring.metrics import image_metrics, prediction_shift
    from aipbench.scoring.significance import significance

    protocol, summary = prepared.protocol, prepared.summary(ranker)
    ranks, level = prepared.hit_ranks, protocol.metrics.significance_level
    start = time.perf_counter()
    after = image_metrics(ranker, adv, summary)
    shift, shift_set = prediction_shift(after.mean_score, before.mean_score)
    quality = image_quality(adv, coop)
    k = lambda d: {str(n): float(d[n].mean()) for n in ranks}  # noqa: E731
    first = ranks[0]
    coop_hr = float(before.hit_rate[first].mean())
    row = {
        "ranker": ranker.name,
        "epsilon": epsilon,
        "attack_target": target,
        "n_items": int(len(coop)),
        "n_users": int(ranker.n_users),
        "clean": {"test_auc": float(summary.test_auc.mean()), "test_hr": {str(n): summary.test_hit_rate(n) for n in ranks}},
        "cooperative": {"hr": k(before.hit_rate), "availability": k(before.availability),
                        "mean_score": float(before.mean_score.mean())},
        "adversarial": {"hr": k(after.hit_rate), "availability": k(after.availability),
                        "mean_score": float(after.mean_score.mean())},
        "delta": {"hr": {str(n): float((after.hit_rate[n] - before.hit_rate[n]).mean()) for n in ranks},
                  "availability": {str(n): float((after.availability[n] - before.availability[n]).mean()) for n in ranks}},
        "hr_lift": float(after.hit_rate[first].mean()) / coop_hr if coop_hr > 0 else None,
        "prediction_shift": {"value": shift_set, "magnitude": abs(shift_set),
                             "direction": "up" if shift_set > 0 else "down" if shift_set < 0 else "none",
                             "test": significance(after.mean_score, before.mean_score, level)},
        "hr_test": significance(after.hit_rate[first], before.hit_rate[first], level),
        "availability_test": significance(after.availability[first], before.availability[first], level),
        "image_quality": quality.summary(),
        "timing": {**timing, "scoring_s": time.perf_counter() - start},
    }
    items = {
        "ranker": ranker.name, "epsilon": epsilon,
        **{f"cooperative_hr@{n}": before.hit_rate[n] for n in ranks},
        **{f"adversarial_hr@{n}": after.hit_rate[n] for n in ranks},
        **{f"cooperative_availability@{n}": before.availability[n] for n in ranks},
        **{f"adversarial_availability@{n}": after.availability[n] for n in ranks},
        "cooperative_mean_score": before.mean_score, "adversarial_mean_score": after.mean_score,
        "prediction_shift": shift, "linf": quality.linf, "psnr": quality.psnr, "ssim": quality.ssim,
    }
    return row, items


def evaluate_attack(
    sub: "Submission",
    prepared: "Prepared",
    *,
    rankers: Sequence[str],
    epsilons: Sequence[int] | None = None,
    items: int | None = None,
    time_limit: float,
    isolation: str = "process",
    log: Callable[[str], None] = print,
) -> "Results":
    """The attack's results on ``prepared`` against ``rankers``; with ``epsilons``, a bounded code
    submission is run and scored at each budget (the ε sweep: one row per ranker and ε). ``items`` limits
    the evaluation to the first cold items of the protocol's seeded sample (the paper's Table 6 used 100)."""
    import pandas as pd

    from aipbench.harness.sources import ImageSource
    from aipbench.hashing import folder_sha256
    from aipbench.results.document import SCHEMA_VERSION, Results, seal, validate_results
    from aipbench.results.provenance import provenance
    from aipbench.results.thumbnails import example_sheet

    began = time.perf_counter()
    proto, dataset = prepared.protocol, prepared.dataset
    sub_hash = folder_sha256(sub.folder)
    if items is not None and items >= len(dataset.cold_items):
        items = None  # all of them: the full run's cache applies
    cold = dataset.cold_items if items is None else dataset.cold_items[: max(1, items)]
    coop = np.asarray(dataset.images[cold])
    subset = {} if items is None else {"items": cold, "subdir": "subset"}
    sources = [ImageSource(sub, sub_hash, prepared, epsilon=eps, time_limit=time_limit, log=log, isolation=isolation,
                           **subset) for eps in budgets(sub, epsilons)]
    first = str(proto.metrics.hit_ranks[0])

    rows, per_item = [], []
    n_examples = min(4, len(coop))
    examples = {"cooperative": coop[:n_examples]}  # the leaderboard's thumbnails, one row per attack run
    for name in rankers:
        ranker = prepared.ranker(name)
        before = prepared.cooperative(ranker, cold)  # once per ranker, for every ε
        for source in sources:
            adv, target, attack_s, reused = source.images(ranker)
            row, cols = _score_row(ranker, prepared, before, coop, adv, epsilon=source.epsilon, target=target,
                                   timing={"attack_s": attack_s, "reused": reused})
            rows.append(row)
            per_item.append(pd.DataFrame({"item": cold, **cols}))
            label = target if source.epsilon is None or len(sources) == 1 else f"{target} eps={source.epsilon}"
            examples.setdefault(label, adv[:n_examples])
            log(f"{name}{'' if source.epsilon is None else f' eps={source.epsilon}'}: HR@{first} "
                f"{row['cooperative']['hr'][first]:.4f} -> {row['adversarial']['hr'][first]:.4f}")

    info = sub.submission
    document = {
        "schema_version": SCHEMA_VERSION,
        **provenance(proto, prepared.hashes(), prepared.device),
        "submission": {"name": info.name, "kind": info.kind, "knowledge": info.knowledge,
                       "threat": {"norm": sub.threat.norm, "epsilon": sub.threat.epsilon},
                       "authors": list(info.authors), "description": info.description, "link": info.link,
                       "source": "code" if sub.entry else "images", "sha256": sub_hash},
        "seed": proto.data.seed,
        "hit_ranks": list(proto.metrics.hit_ranks),
        "significance_level": proto.metrics.significance_level,
        "timing": {"total_s": time.perf_counter() - began},
        "results": rows,
        "examples": {"items": [int(i) for i in cold[:n_examples]], "rows": list(examples)},
    }
    document = seal(json.loads(json.dumps(document, allow_nan=False)))  # plain JSON types, then its own hash
    validate_results(document, "results")
    return Results(document, pd.concat(per_item, ignore_index=True), example_sheet(list(examples.values())))
