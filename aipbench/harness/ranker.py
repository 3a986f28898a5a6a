"""Evaluate a ranker submission: train it (or reuse its training) in its sandbox, measure its clean quality, and
run every reference attack against it — each at the protocol's ε sweep where it has a budget, each in its own
sandbox (an insider's and an expert's context rebuild the submission's class there) — into one robustness
document, whose worst case over the attacks of each knowledge level is the ranker's robustness."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from aipbench.errors import InputError

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.results.document import RankerResults

__all__ = ["CONTROLS", "QUERY_ITEMS", "RANKER_SUITE", "attack_names", "evaluate_ranker", "robustness"]

# Every reference attack, in the paper's order, then the black-box attack and the controls.
RANKER_SUITE = ("insa", "expa", "c-sema", "taamr-fgsm", "taamr-pgd20", "nes", "hook-copy", "noise")
CONTROLS = ("noise", "hook-copy")  # shown, never a robustness score's worst case
QUERY_ITEMS = 100  # cold items a query attack (its 1,000 queries per item) runs on at most: the protocol's subset


def evaluate_ranker(sub: "Submission", prepared: "Prepared", *, attacks: Sequence[str], epsilons: Sequence[int] | None,
                    items: int | None, time_limit: float, isolation: str,
                    log: Callable[[str], None] = print) -> "RankerResults":
    """The robustness document of the ranker submission ``sub`` on ``prepared``: ``attacks`` (reference attack
    names), bounded ones at ``epsilons`` (default: the protocol's sweep), on ``items`` cold items (the protocol's
    subset; default all; a query attack on at most ``QUERY_ITEMS``)."""
    import pandas as pd

    from aipbench.harness.attack import evaluate_attack
    from aipbench.harness.isolation.ranker_worker import submitted_ranker
    from aipbench.harness.isolation.trust import sandbox_record
    from aipbench.harness.submission import reference_submission
    from aipbench.hashing import folder_sha256
    from aipbench.results.document import SCHEMA_VERSION, RankerResults, beside_files, seal, validate_results
    from aipbench.results.provenance import provenance

    if isolation == "none":
        raise InputError(f"{sub.folder}: a ranker submission's code runs in its sandbox only (every attack's context "
                         "rebuilds it), never in the harness's process")
    began, proto = time.perf_counter(), prepared.protocol
    sub_hash = folder_sha256(sub.folder)
    ranker, training = submitted_ranker(sub, sub_hash, prepared, sandboxed=isolation == "sandbox",
                                        time_limit=time_limit, log=log)
    try:
        prepared.adopt(ranker)
        summary = prepared.summary(ranker)
        ranks = prepared.hit_ranks
        clean = {"test_auc": float(summary.test_auc.mean()), "test_hr": {str(n): summary.test_hit_rate(n) for n in ranks}}
        log(f"{ranker.name}: clean test AUC {clean['test_auc']:.4f}, HR@{ranks[0]} {clean['test_hr'][str(ranks[0])]:.4f}")
        results, per_item = {}, []
        for name in attacks:
            asub = reference_submission(name, kind="attack")
            bounded = asub.threat.norm == "linf" and asub.entry is not None
            sweep = (list(epsilons) if epsilons else list(proto.threat.epsilon_sweep)) if bounded else None
            n = min(items or QUERY_ITEMS, QUERY_ITEMS) if asub.submission.knowledge == "blackbox" else items
            judged = evaluate_attack(asub, prepared, rankers=[ranker.name], epsilons=sweep, items=n,
                                     time_limit=time_limit, isolation=isolation, check_determinism=False, log=log)
            doc = judged.document
            results[name] = {"knowledge": asub.submission.knowledge, "control": name in CONTROLS,
                             "threat": doc["submission"]["threat"], "sha256": doc["submission"]["sha256"],
                             "items": doc["results"][0]["n_items"], "intervals": doc["intervals"],
                             "results": doc["results"]}
            per_item.append(judged.per_item.assign(attack=name))
        document = {
            "schema_version": SCHEMA_VERSION, "kind": "ranker",
            **provenance(proto, prepared.hashes(), prepared.device),
            "submission": {"name": sub.submission.name, "kind": "ranker", "authors": list(sub.submission.authors),
                           "description": sub.submission.description, "link": sub.submission.link, "source": "code",
                           "sha256": sub_hash},
            "ranker": {"instance": ranker.instance, "image_model": ranker.image_model_name,
                       "representation_dim": int(ranker.catalog.shape[1]), "side_dim": int(ranker.user_side(
                           ranker.all_users()[:1]).vec.shape[1]), "checkpoint_sha256": training["sha256"],
                       "trained_s": training["trained_s"], "reused": training["reused"]},
            "seed": proto.data.seed, "hit_ranks": list(ranks), "significance_level": proto.metrics.significance_level,
            "clean": clean, "attacks": results, "robustness": robustness(results, proto.threat.epsilon, str(ranks[0])),
            "timing": {"total_s": time.perf_counter() - began},
            "sandbox": sandbox_record(isolation, code=True, time_limit=time_limit),
        }
        items = pd.concat(per_item, ignore_index=True)
        items = items[["attack"] + [c for c in items.columns if c != "attack"]]
        document["files"] = beside_files(items, None)
    finally:
        ranker.close()
    document = seal(json.loads(json.dumps(document, allow_nan=False)))
    validate_results(document, "ranker")
    return RankerResults(document, items)


def robustness(results: dict, epsilon: int, n: str) -> dict:
    """Per knowledge level, the attack (at the protocol's budget, or its own unbounded threat) that reaches the
    highest adversarial HR@n, controls aside; and the worst of them all: the ranker's robustness."""
    levels: dict[str, dict] = {}
    for name, attack in results.items():
        if attack["control"]:
            continue
        rows = [r for r in attack["results"] if r["epsilon"] in (None, epsilon)] or attack["results"]
        row = max(rows, key=lambda r: r["adversarial"]["hr"][n])
        case = {"attack": name, "epsilon": row["epsilon"], "hr": row["adversarial"]["hr"][n],
                "cooperative_hr": row["cooperative"]["hr"][n], "lift": row["hr_lift"]}
        if attack["knowledge"] not in levels or case["hr"] > levels[attack["knowledge"]]["hr"]:
            levels[attack["knowledge"]] = case
    worst = max(levels.values(), key=lambda c: c["hr"]) if levels else None
    return {"hit_rank": int(n), "epsilon": epsilon, "by_knowledge": levels, "worst_case": worst,
            "score": None if worst is None else worst["hr"]}


def attack_names(names: Sequence[str] | None) -> list[str]:
    """The reference attacks a ranker is judged by (default: all of ``RANKER_SUITE``), unknown ones refused."""
    from aipbench.harness.submission import reference_submissions

    known = reference_submissions("attack")
    chosen = list(names or RANKER_SUITE)
    for name in chosen:
        known.get(name)
    return chosen
