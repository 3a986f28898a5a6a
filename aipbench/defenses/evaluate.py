"""Evaluate a defense — transform, training or detector: its clean-quality cost, and every reference
attack twice — transfer (images made against the undefended system) and adaptive (the attack re-run
against the defended one) — per ranker and level; the worst case is the defense's score."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.defenses.variants import cold_hits, compare, fit_gate, variants
from aipbench.protocol import DEFAULT_PROTOCOL
from aipbench.results import seal

if TYPE_CHECKING:
    from aipbench.submission import Submission

__all__ = ["REFERENCE_ATTACKS", "evaluate_defense"]

REFERENCE_ATTACKS = ("insa", "expa", "c-sema", "taamr-fgsm", "taamr-pgd20")
SUBMISSIONS = Path(__file__).resolve().parents[2] / "submissions"


def evaluate_defense(
    sub: "Submission",
    *,
    protocol: str = DEFAULT_PROTOCOL,
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
    protocol's seeded sample; the paper used 100) are attacked adaptively; ``levels`` overrides a
    transform family's levels. A training defense is evaluated on the ranker it ``defends`` only."""
    from aipbench.attacks.grants import CONTEXT_ARTIFACTS
    from aipbench.attacks.sandbox import DEFAULT_TIME_LIMIT
    from aipbench.errors import InputError
    from aipbench.harness import ImageSource, submission_sha256
    from aipbench.pipeline import load_base_sets, load_dataset, open_store
    from aipbench.protocol import load_protocol
    from aipbench.ranker_steps import RANKERS, load_ranker
    from aipbench.scoring import summarize_base_sets
    from aipbench.submission import load_submission

    began = time.perf_counter()
    proto = load_protocol(protocol)
    spec = sub.defense
    names = list(rankers) if rankers else RANKERS.names()
    if spec.type == "training":
        if spec.defends not in names:
            raise InputError(f"{sub.folder / 'submission.toml'}: defends = {spec.defends!r} is not among the "
                             f"rankers evaluated ({', '.join(names)})")
        names = [spec.defends]
    attack_subs = {a: load_submission(SUBMISSIONS / a) for a in attacks}
    attack_hashes = {a: submission_sha256(asub.folder) for a, asub in attack_subs.items()}
    sub_hash = submission_sha256(sub.folder)
    store = open_store(proto, home)
    store.prepare(["candidates", *CONTEXT_ARTIFACTS, *names], log=log)
    dataset, base = load_dataset(store), load_base_sets(store)
    subset = dataset.cold_items[: max(1, min(items, len(dataset.cold_items)))]
    coop = np.asarray(dataset.images[subset])
    n, alpha = proto.metrics.hit_ranks[0], proto.metrics.significance_level
    limit = time_limit or DEFAULT_TIME_LIMIT
    gate = None
    if spec.type == "detector":
        gate = fit_gate(sub, store, dataset, names, device, limit, log)
    rows = []
    for name in names:
        ranker = load_ranker(store, name, device)
        plain = summarize_base_sets(ranker, base, proto.metrics.hit_ranks)
        coop_plain = cold_hits(ranker, coop, plain, n)
        transfer, undefended = {}, {}  # images made against the undefended ranker, and how they fare there
        for a, asub in attack_subs.items():
            src = ImageSource(asub, attack_hashes[a], store, dataset, asub.threat.epsilon, device, limit, log)
            transfer[a] = src.images(ranker)[0][np.isin(dataset.cold_items, subset)]
            undefended[a] = compare(cold_hits(ranker, transfer[a], plain, n), coop_plain, alpha)
        for variant in variants(sub, sub_hash, ranker, dataset, store, levels, gate, device, log):
            start = time.perf_counter()
            summary = plain if variant.ranker is ranker else summarize_base_sets(variant.ranker, base, proto.metrics.hit_ranks)
            coop_def = cold_hits(variant.ranker, coop, summary, n) * variant.accepted(coop)
            row = {
                "ranker": name, "level": variant.level,
                "clean": {"undefended": {"test_auc": float(plain.test_auc.mean()), "test_hr": plain.test_hit_rate(n),
                                         "cooperative_hr": float(coop_plain.mean())},
                          "defended": {"test_auc": float(summary.test_auc.mean()), "test_hr": summary.test_hit_rate(n),
                                       "cooperative_hr": float(coop_def.mean())}},
                "attacks": {},
                **variant.extra,
            }
            for a, asub in attack_subs.items():
                adaptive_src = ImageSource(asub, attack_hashes[a], store, dataset, asub.threat.epsilon, device, limit,
                                           log, items=subset, wrap=variant.wrap, subdir=f"against-{variant.tag}")
                adaptive = adaptive_src.images(variant.attack_ranker)[0]
                row["attacks"][a] = {"undefended": undefended[a],
                                     **{mode: variant.side(images, summary, coop_def, n, alpha)
                                        for mode, images in (("transfer", transfer[a]), ("adaptive", adaptive))}}
            worst = max((v[mode]["hr"], a, mode) for a, v in row["attacks"].items() for mode in ("transfer", "adaptive"))
            row["worst_case"] = {"hr": worst[0], "attack": worst[1], "mode": worst[2]}
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            log(f"{name} {variant.label(spec)}: clean test HR@{n} {row['clean']['undefended']['test_hr']:.4f} -> "
                f"{row['clean']['defended']['test_hr']:.4f}; worst adversarial HR@{n} {worst[0]:.4f} ({worst[1]}, {worst[2]})")
    doc = _document(sub, sub_hash, proto, store, rows, attacks, subset, n, alpha, device, began)
    if gate is not None:
        doc["detector"] = gate.summary()
    return seal(json.loads(json.dumps(doc, allow_nan=False)))


def _document(sub, sub_hash, proto, store, rows, attacks, subset, n, alpha, device, began) -> dict:
    from aipbench.harness import provenance

    info = sub.submission
    doc = {
        "schema_version": 1,
        "kind": "defense",
        **provenance(proto, store.hashes(), device),
        "submission": {"name": info.name, "kind": info.kind, "type": sub.defense.type, "parameter": sub.defense.parameter,
                       "defends": sub.defense.defends,
                       "authors": list(info.authors), "description": info.description, "link": info.link,
                       "sha256": sub_hash},
        "attacks": list(attacks), "items": [int(i) for i in subset], "hit_rank": n, "significance_level": alpha,
        "timing": {"total_s": time.perf_counter() - began},
        "results": rows,
        "table8": _table8(rows, attacks) if sub.defense.parameter else [],
    }
    return doc


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
