"""Evaluate a defense — transform, training or detector: its clean-quality cost, and every reference
attack twice — transfer (images made against the undefended system) and adaptive (the attack re-run
against the defended one) — per ranker and level; the worst case is the defense's score."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from aipbench.harness import distributed

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.results.document import DefenseResults

__all__ = ["evaluate_defense"]


def evaluate_defense(sub: "Submission", prepared: "Prepared", *, time_limit: float, **options) -> "DefenseResults":
    """``_evaluate_defense`` with every call into the defense's own code (import, transform, train, fit,
    score) under ``time_limit`` and with one-line errors (``aipbench.defenses.guard``)."""
    from aipbench.defenses.guard import defense_time_limit
    from aipbench.harness.isolation.defense_worker import close_all

    try:
        with defense_time_limit(time_limit):
            return _evaluate_defense(sub, prepared, time_limit=time_limit, **options)
    finally:
        close_all()  # the defense's worker processes


def _evaluate_defense(
    sub: "Submission",
    prepared: "Prepared",
    *,
    rankers: Sequence[str],
    attacks: Sequence[str],
    items: int = 100,
    levels: Sequence[int] | None = None,
    time_limit: float,
    isolation: str = "sandbox",
    log: Callable[[str], None] = print,
) -> "DefenseResults":
    """The defense's results (document ``kind: defense``). ``items`` cold items (the protocol's subset;
    the paper used 100) are attacked adaptively by each reference attack of
    ``attacks``; ``levels`` overrides a transform family's levels. A training defense is evaluated on the
    ranker it ``defends`` only."""
    from aipbench.defenses.variants import probe, variants
    from aipbench.harness.checks import defense_flags
    from aipbench.harness.isolation.defense_worker import open_defense
    from aipbench.harness.gate import fit_gate
    from aipbench.harness.isolation.trust import sandbox_record
    from aipbench.harness.sources import ImageSource, make_all
    from aipbench.harness.submission import reference_submission
    from aipbench.hashing import folder_sha256
    from aipbench.results.document import DefenseResults, seal
    from aipbench.scoring.flags import DEFENSE_CHECKS
    from aipbench.scoring.intervals import Bootstrap
    from aipbench.scoring.metrics import cold_hits, compare

    began = time.perf_counter()
    proto, dataset = prepared.protocol, prepared.dataset
    spec = sub.defense

    def opener(params: dict, **where):  # the defense's code, in a worker process unless trusted (isolation "none")
        return open_defense(sub.entry_file, sub.entry_class, params, isolation=isolation, precision=prepared.precision,
                            **where)

    def own_family(payload: dict):  # a trained ranker of the defense's own family: served by its worker
        from aipbench.harness.isolation.ranker_worker import returned_ranker

        return returned_ranker(sub, payload, prepared, sandboxed=isolation == "sandbox", time_limit=time_limit, log=log)

    loaded = probe(sub, prepared, levels, opener=opener)  # broken defense code fails before any attack runs
    names = [spec.defends] if spec.type == "training" else list(rankers)
    attack_subs = {a: reference_submission(a, kind="attack") for a in attacks}
    attack_hashes = {a: folder_sha256(asub.folder) for a, asub in attack_subs.items()}
    sub_hash = folder_sha256(sub.folder)
    subset = prepared.cold_subset(items)
    coop = prepared.cooperative_images(subset)
    n, alpha = proto.metrics.hit_ranks[0], proto.metrics.significance_level
    boot = Bootstrap(len(subset), proto.data.seed)

    def source(a: str, **where) -> ImageSource:
        return ImageSource(attack_subs[a], attack_hashes[a], prepared, epsilon=attack_subs[a].threat.epsilon,
                           time_limit=time_limit, log=log, isolation=isolation, **where)

    gate = fit_gate(sub, prepared, names, time_limit=time_limit, isolation=isolation, log=log) \
        if spec.type == "detector" else None
    # the whole grid first — every ranker's transfer runs and every variant's adaptive runs, as one set of
    # shards over the ranks — then the scoring, from the images made
    plan, transfer_sources, adaptive_sources = [], {}, {}
    for name in names:
        ranker = prepared.ranker(name)
        # a training defense trains before any attack runs (a broken trainer fails in seconds)
        systems = list(variants(sub, ranker, prepared, sub_hash=sub_hash, levels=levels, gate=gate, log=log,
                                opener=opener, loaded=loaded, own_family=own_family))
        plan.append((name, ranker, systems))
        for a in attacks:
            transfer_sources[name, a] = source(a)
            for variant in systems:
                adaptive_sources[name, variant.tag, a] = source(a, items=subset, wrap=variant.wrap, reads=(sub.folder,),
                                                                 subdir=f"against-{variant.tag}")
    make_all([(transfer_sources[name, a], ranker) for name, ranker, _ in plan for a in attacks]
             + [(adaptive_sources[name, v.tag, a], v.attack_ranker) for name, _, systems in plan for v in systems
                for a in attacks])
    rows = []
    for name, ranker, systems in plan:
        plain = prepared.summary(ranker)
        coop_plain = prepared.cooperative(ranker, subset).hit_rate[n]
        transfer, undefended = {}, {}  # images made against the undefended ranker, and how they fare there
        for a in attacks:
            transfer[a] = transfer_sources[name, a].images(ranker)[0][np.isin(dataset.cold_items, subset)]
            undefended[a] = compare(cold_hits(ranker, transfer[a], plain, n=n), coop_plain, alpha, boot=boot)
        for variant in systems:
            start = time.perf_counter()
            summary = plain if variant.ranker is ranker else prepared.summarize(variant.ranker)
            coop_def = cold_hits(variant.ranker, coop, summary, n=n) * variant.accepted(coop)
            row = {
                "ranker": name, "level": variant.level,
                "clean": {"undefended": {"test_auc": float(plain.test_auc.mean()), "test_hr": plain.test_hit_rate(n),
                                         "cooperative_hr": float(coop_plain.mean()),
                                         "cooperative_hr_interval": boot.intervals({"c": coop_plain})["c"]},
                          "defended": {"test_auc": float(summary.test_auc.mean()), "test_hr": summary.test_hit_rate(n),
                                       "cooperative_hr": float(coop_def.mean()),
                                       "cooperative_hr_interval": boot.intervals({"c": coop_def})["c"]}},
                "attacks": {},
                **variant.extra,
            }
            hits = {}
            for a in attacks:
                images = adaptive_sources[name, variant.tag, a].images(variant.attack_ranker)[0]
                hits[a] = {mode: variant.hits(adv, summary, n=n)[0] for mode, adv in (("transfer", transfer[a]),
                                                                                     ("adaptive", images))}
                row["attacks"][a] = {"undefended": undefended[a],
                                     **{mode: variant.side(adv, summary, coop_hits=coop_def, n=n, alpha=alpha, boot=boot)
                                        for mode, adv in (("transfer", transfer[a]), ("adaptive", images))}}
            row["flags"] = defense_flags(row, hits, variant=variant, coop=coop, alpha=alpha,
                                         tolerance=proto.metrics.clean_tolerance)
            worst = max((v[mode]["hr"], a, mode) for a, v in row["attacks"].items() for mode in ("transfer", "adaptive"))
            row["worst_case"] = {"hr": worst[0], "attack": worst[1], "mode": worst[2]}
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            log(f"{name} {variant.label(spec)}: clean test HR@{n} {row['clean']['undefended']['test_hr']:.4f} -> "
                f"{row['clean']['defended']['test_hr']:.4f}; worst adversarial HR@{n} {worst[0]:.4f} ({worst[1]}, {worst[2]})")
    doc = _document(sub, sub_hash, prepared, rows, attacks, subset, began)
    doc["intervals"] = boot.describe()
    doc["sandbox"] = sandbox_record(isolation, code=True, time_limit=time_limit)  # the defense's own worker and the adaptive attacks
    doc["checks"] = [c for c in DEFENSE_CHECKS if (c != "randomized-transform" or spec.type == "transform")
                     and (c != "detector-false-alarms" or spec.type == "detector")]
    if gate is not None:
        doc["detector"] = gate.summary()
    return DefenseResults(seal(json.loads(json.dumps(doc, allow_nan=False))))


def _document(sub: "Submission", sub_hash: str, prepared: "Prepared", rows: list[dict], attacks: Sequence[str],
              subset: np.ndarray, began: float) -> dict:
    from aipbench.results.provenance import provenance

    proto, info = prepared.protocol, sub.submission
    n, alpha = proto.metrics.hit_ranks[0], proto.metrics.significance_level
    doc = {
        "schema_version": 1,
        "kind": "defense",
        **provenance(proto, prepared.hashes(), prepared.device),
        "submission": {"name": info.name, "kind": info.kind, "type": sub.defense.type, "parameter": sub.defense.parameter,
                       "defends": sub.defense.defends,
                       "authors": list(info.authors), "description": info.description, "link": info.link,
                       "sha256": sub_hash},
        "attacks": list(attacks), "items": [int(i) for i in subset], "hit_rank": n, "significance_level": alpha,
        "timing": {"total_s": time.perf_counter() - began, "ranks": distributed.world().size},
        "shard_items": distributed.shard_items(),
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
