"""Evaluate a transform defense: clean-quality cost, and every reference attack twice — transfer
(images made against the undefended system) and adaptive (the attack re-run against the defended one,
straight-through gradients) — per ranker and level; the worst case is the defense's score."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from aipbench.submission import Submission

__all__ = ["REFERENCE_ATTACKS", "evaluate_defense"]

REFERENCE_ATTACKS = ("insa", "expa", "c-sema", "taamr-fgsm", "taamr-pgd20")
SUBMISSIONS = Path(__file__).resolve().parents[2] / "submissions"


def _hr(ranker, images: np.ndarray, summary, n: int) -> np.ndarray:
    from aipbench.scoring import cold_item_metrics

    with torch.no_grad():
        return cold_item_metrics(ranker.score_images(ranker.all_users(), torch.from_numpy(images)), summary).hit_rate[n]


def _side(adv: np.ndarray, coop: np.ndarray, level: float) -> dict:
    from aipbench.scoring import significance

    return {"hr": float(adv.mean()), "delta": float((adv - coop).mean()), "test": significance(adv, coop, level)}


def evaluate_defense(
    sub: "Submission",
    *,
    protocol: str = "synthetic-v1",
    rankers: Sequence[str] | None = None,
    attacks: Sequence[str] = REFERENCE_ATTACKS,
    items: int = 100,
    levels: Sequence[int] | None = None,
    device: str = "cpu",
    home: Path | None = None,
    time_limit: float | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """The defense's results document (``kind: defense``). ``items`` cold items (the first of the
    protocol's seeded sample; the paper used 100) are attacked adaptively; ``levels`` overrides the
    submission's family levels."""
    from aipbench.attacks.sandbox import DEFAULT_TIME_LIMIT
    from aipbench.defenses.defended import defend
    from aipbench.defenses.transforms import load_defense
    from aipbench.harness import ImageSource, submission_sha256
    from aipbench.pipeline import load_base_sets, load_dataset, open_store
    from aipbench.protocol import load_protocol
    from aipbench.ranker_steps import RANKERS, load_ranker
    from aipbench.scoring import summarize_base_sets
    from aipbench.submission import load_submission

    began = time.perf_counter()
    proto = load_protocol(protocol)
    names = list(rankers) if rankers else RANKERS.names()
    attack_subs = {a: load_submission(SUBMISSIONS / a) for a in attacks}
    attack_hashes = {a: submission_sha256(asub.folder) for a, asub in attack_subs.items()}
    spec = sub.defense
    level_values = list(levels) if levels else list(spec.levels or ()) or [None]
    sub_hash = submission_sha256(sub.folder)
    store = open_store(proto, home)
    store.prepare(["candidates", *names], log=log)
    dataset, base = load_dataset(store), load_base_sets(store)
    subset = dataset.cold_items[: max(1, min(items, len(dataset.cold_items)))]
    coop = np.asarray(dataset.images[subset])
    n, alpha = proto.metrics.hit_ranks[0], proto.metrics.significance_level
    limit = time_limit or DEFAULT_TIME_LIMIT
    rows = []
    for name in names:
        ranker = load_ranker(store, name, device)
        plain = summarize_base_sets(ranker, base, proto.metrics.hit_ranks)
        coop_plain = _hr(ranker, coop, plain, n)
        transfer, undefended = {}, {}  # images made against the undefended ranker, and how they fare there
        for a, asub in attack_subs.items():
            src = ImageSource(asub, attack_hashes[a], store, dataset, asub.threat.epsilon, device, limit, log)
            transfer[a] = src.images(ranker)[0][np.isin(dataset.cold_items, subset)]
            undefended[a] = _side(_hr(ranker, transfer[a], plain, n), coop_plain, alpha)
        for level in level_values:
            params = {spec.parameter: level} if spec.parameter else {}
            defense = load_defense(sub.entry_file, sub.entry_class, **params)
            tag = f"{sub.submission.name}-{sub_hash[:12]}" + (f"-{level}" if level is not None else "")
            start = time.perf_counter()
            defended = defend(ranker, defense, dataset)
            summary = summarize_base_sets(defended, base, proto.metrics.hit_ranks)
            coop_def = _hr(defended, coop, summary, n)
            row = {
                "ranker": name, "level": level,
                "clean": {"undefended": {"test_auc": float(plain.test_auc.mean()), "test_hr": plain.test_hit_rate(n),
                                         "cooperative_hr": float(coop_plain.mean())},
                          "defended": {"test_auc": float(summary.test_auc.mean()), "test_hr": summary.test_hit_rate(n),
                                       "cooperative_hr": float(coop_def.mean())}},
                "attacks": {},
            }
            for a, asub in attack_subs.items():
                adaptive_src = ImageSource(asub, attack_hashes[a], store, dataset, asub.threat.epsilon,
                                           device, limit, log, items=subset, defense=defense, defense_tag=tag)
                adaptive = adaptive_src.images(defended)[0]
                row["attacks"][a] = {
                    "undefended": undefended[a],
                    "transfer": _side(_hr(defended, transfer[a], summary, n), coop_def, alpha),
                    "adaptive": _side(_hr(defended, adaptive, summary, n), coop_def, alpha),
                }
            worst = max((v[mode]["hr"], a, mode) for a, v in row["attacks"].items() for mode in ("transfer", "adaptive"))
            row["worst_case"] = {"hr": worst[0], "attack": worst[1], "mode": worst[2]}
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            log(f"{name} {spec.parameter or ''}={level}: clean test HR@{n} {row['clean']['undefended']['test_hr']:.4f} -> "
                f"{row['clean']['defended']['test_hr']:.4f}; worst adversarial HR@{n} {worst[0]:.4f} ({worst[1]}, {worst[2]})")
    return _document(sub, sub_hash, proto, store, rows, attacks, subset, n, alpha, device, began)


def _document(sub, sub_hash, proto, store, rows, attacks, subset, n, alpha, device, began) -> dict:
    import json

    from aipbench.harness import provenance
    from aipbench.results import seal

    info = sub.submission
    doc = {
        "schema_version": 1,
        "kind": "defense",
        **provenance(proto, store, device),
        "submission": {"name": info.name, "kind": info.kind, "type": sub.defense.type, "parameter": sub.defense.parameter,
                       "authors": list(info.authors), "description": info.description, "link": info.link,
                       "sha256": sub_hash},
        "attacks": list(attacks), "items": [int(i) for i in subset], "hit_rank": n, "significance_level": alpha,
        "timing": {"total_s": time.perf_counter() - began},
        "results": rows,
        "table8": _table8(rows, attacks),
    }
    return seal(json.loads(json.dumps(doc, allow_nan=False)))


def _table8(rows: list[dict], attacks) -> list[dict]:
    """Paper Table 8 per ranker, attack and mode: the weakest level (in the order given) at which the
    adversarial HR@N falls to the cooperative level under the same defense; null if none does."""
    out = []
    for ranker in dict.fromkeys(r["ranker"] for r in rows):
        mine = [r for r in rows if r["ranker"] == ranker]
        for a in attacks:
            for mode in ("transfer", "adaptive"):
                hit = next((r["level"] for r in mine
                            if r["attacks"][a][mode]["hr"] <= r["clean"]["defended"]["cooperative_hr"]), None)
                out.append({"ranker": ranker, "attack": a, "mode": mode, "level": hit})
    return out
