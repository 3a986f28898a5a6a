"""Evaluate an attack: run it against every ranker of a protocol (at each budget), score cooperative and
adversarial cold items over all users, and assemble the sealed results document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError
from aipbench.harness import distributed

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission
    from aipbench.protocol.schema import Protocol
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.base import Ranker
    from aipbench.results.document import Results
    from aipbench.results.rows import AttackRow
    from aipbench.scoring.intervals import Bootstrap
    from aipbench.scoring.metrics import ColdItemMetrics

__all__ = ["budgets", "evaluate_attack"]


def budgets(sub: "Submission", epsilons: Sequence[int] | None, protocol: "Protocol") -> list[int | None]:
    """The L∞ budgets to evaluate: the submission's own, or a sweep (bounded code submissions only); none
    may exceed the protocol's budget (``threat.epsilon``: a larger one is another threat model)."""
    source = sub.folder / "submission.toml"
    limit = protocol.threat.epsilon
    if sub.threat.norm == "linf" and sub.threat.epsilon > limit:
        raise InputError(f"{source}: threat.epsilon {sub.threat.epsilon} is above protocol '{protocol.name}''s budget "
                         f"of {limit} (8-bit units); declare at most {limit}")
    if not epsilons:
        return [sub.threat.epsilon]
    if sub.threat.norm != "linf" or sub.entry is None:
        raise InputError(f"{source}: an epsilon sweep needs a code submission with norm = \"linf\"")
    bad = [e for e in epsilons if not 1 <= int(e) <= 255]
    if bad:
        raise InputError(f"{source}: epsilon {bad[0]} is out of range 1..255 (8-bit units)")
    above = [e for e in epsilons if int(e) > limit]
    if above:
        raise InputError(f"--eps {above[0]} is above protocol '{protocol.name}''s budget of {limit} (8-bit units)")
    return sorted({int(e) for e in epsilons})


def _score_row(ranker: "Ranker", prepared: "Prepared", before: "ColdItemMetrics", coop: np.ndarray, adv: np.ndarray,
               *, epsilon: int | None, target: str, timing: dict, boot: "Bootstrap") -> tuple["AttackRow", dict]:
    """One typed results row (``aipbench.results.rows``) and its per-item columns; ``before``: the cooperative
    images' metrics. The harness computes; the row is assembled in ``results``."""
    from aipbench.results.rows import assemble_row
    from aipbench.scoring.image_quality import image_quality
    from aipbench.scoring.metrics import image_metrics, prediction_shift
    from aipbench.scoring.row_metrics import RowInputs

    protocol, summary = prepared.protocol, prepared.summary(ranker)
    ranks = tuple(prepared.hit_ranks)
    start = time.perf_counter()
    after = image_metrics(ranker, adv, summary)
    shift, shift_set = prediction_shift(after.mean_score, before.mean_score)
    inputs = RowInputs(before=before, after=after, quality=image_quality(adv, coop), ranks=ranks)
    scored = {"ranker": ranker.name, "epsilon": epsilon, "attack_target": target, "n_users": int(ranker.n_users),
              "clean": {"test_auc": float(summary.test_auc.mean()), "test_hr": {str(n): summary.test_hit_rate(n) for n in ranks}},
              "shift": shift, "shift_set": shift_set, "timing": timing}
    row, items = assemble_row(inputs, scored=scored, boot=boot, level=protocol.metrics.significance_level)
    row.timing = {**timing, "scoring_s": time.perf_counter() - start}
    return row, items


def _replica_spread(prepared: "Prepared", name: str, source, cold: np.ndarray, replicas: int, row: dict,
                    first: str) -> dict:
    """The attack against each replica of ``name`` (replica 1: the row's own ranker), scored on it: the
    per-replica HR@N, lift and ΔHR@N, their mean and standard deviation across replicas."""
    from aipbench.rankers.replicas import is_replicated, replica_seed
    from aipbench.scoring.metrics import image_metrics

    values = {"cooperative_hr": [row["cooperative"]["hr"][first]], "adversarial_hr": [row["adversarial"]["hr"][first]],
              "delta_hr": [row["delta"]["hr"][first]]}
    for r in range(2, replicas + 1):
        ranker = prepared.ranker(name, replica=r)
        coop = prepared.cooperative(ranker, cold).hit_rate[int(first)]
        adv = image_metrics(ranker, source.images(ranker)[0], prepared.summary(ranker)).hit_rate[int(first)]
        for key, v in (("cooperative_hr", coop.mean()), ("adversarial_hr", adv.mean()), ("delta_hr", (adv - coop).mean())):
            values[key].append(float(v))
    lifts = [a / c if c > 0 else None for a, c in zip(values["adversarial_hr"], values["cooperative_hr"])]
    train = prepared.protocol.rankers.section(name).train.seed if is_replicated(name) else None
    out = {"count": replicas, "seeds": [None if train is None else replica_seed(train, r) for r in range(1, replicas + 1)],
           **values, "hr_lift": lifts}
    for key in ("cooperative_hr", "adversarial_hr", "delta_hr", "hr_lift"):
        finite = [v for v in out[key] if v is not None]
        out.setdefault("mean", {})[key] = float(np.mean(finite)) if finite else None
        out.setdefault("sd", {})[key] = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return out


def evaluate_attack(
    sub: "Submission",
    prepared: "Prepared",
    *,
    rankers: Sequence[str],
    epsilons: Sequence[int] | None = None,
    items: "int | Sequence[int] | None" = None,
    replicas: int = 1,
    check_determinism: bool = True,
    time_limit: float,
    isolation: str = "sandbox",
    log: Callable[[str], None] = print,
) -> "Results":
    """The attack's results on ``prepared`` against ``rankers``; with ``epsilons``, a bounded code
    submission is run and scored at each budget (the ε sweep: one row per ranker and ε). ``items`` limits
    the evaluation to the protocol's subset of that many cold items (the paper's Table 6 used 100), or, a
    sequence, to those cold items (what ``aipbench verify`` re-runs).
    ``replicas`` > 1 also attacks and scores replicas 2.. of every ranker (other training seeds) and reports
    their spread beside the primary ranker's row. ``check_determinism`` runs a code submission twice more
    on 10 items per attack target (the reliability check; the regression suite leaves it to its own tests)."""
    import pandas as pd

    from aipbench.harness.checks import NoiseFloor, determinism_flag
    from aipbench.harness.isolation.trust import sandbox_record
    from aipbench.harness.sources import ImageSource, make_all
    from aipbench.hashing import folder_sha256
    from aipbench.results.document import SCHEMA_VERSION, Results, beside_files, seal, validate_results
    from aipbench.scoring.flags import ATTACK_CHECKS, noise_floor
    from aipbench.scoring.intervals import Bootstrap
    from aipbench.results.provenance import provenance
    from aipbench.results.thumbnails import example_sheet

    began = time.perf_counter()
    proto, dataset = prepared.protocol, prepared.dataset
    sub_hash = folder_sha256(sub.folder)
    if items is not None and not isinstance(items, (int, np.integer)):  # named cold items (``aipbench verify``)
        cold = np.unique(np.asarray(items, dtype=np.int64))
        strangers = np.setdiff1d(cold, dataset.cold_items)
        if strangers.size or not cold.size:
            raise InputError(f"items must be cold items of {proto.name}; {strangers[:5].tolist() or 'none given'} "
                             "are not")
    else:
        if items is not None and items >= len(dataset.cold_items):
            items = None  # all of them: the full run's cache applies
        cold = prepared.cold_subset(items)
    coop = prepared.cooperative_images(cold)  # verified, in memory, before any attack runs
    subset = {} if len(cold) == len(dataset.cold_items) else {"items": cold, "subdir": "subset"}
    sources = [ImageSource(sub, sub_hash, prepared, epsilon=eps, time_limit=time_limit, log=log, isolation=isolation,
                           **subset) for eps in budgets(sub, epsilons, proto)]
    first = str(proto.metrics.hit_ranks[0])
    boot = Bootstrap(len(cold), proto.data.seed)
    noise = NoiseFloor(prepared, cold, log=log)
    checked_determinism: dict[str, dict | None] = {}  # attack target -> its flag (None: the same images twice)

    make_all([(source, prepared.ranker(name)) for name in rankers for source in sources])  # the grid, over ranks
    rows, per_item = [], []
    n_examples = min(4, len(coop))
    examples = {"cooperative": coop[:n_examples]}  # the leaderboard's thumbnails, one row per attack run
    for name in rankers:
        ranker = prepared.ranker(name)
        before = prepared.cooperative(ranker, cold)  # once per ranker, for every ε
        for source in sources:
            adv, target, attack_s, reused = source.images(ranker)
            row, cols = _score_row(ranker, prepared, before, coop, adv, epsilon=source.epsilon, target=target,
                                   timing={"attack_s": attack_s, "reused": reused}, boot=boot)
            if target in source.queries:  # a black-box attack: its oracle's budget and what it used
                from aipbench.attacks.oracle import PROBE_USERS, QUERIES_PER_ITEM

                row.oracle = {"response": "rank", "probe_users": min(PROBE_USERS, dataset.n_users),
                              "budget": QUERIES_PER_ITEM * len(cold), "queries": source.queries[target]}
            if not noise.is_the_control(sub_hash):  # the protocol's noise floor, beside every attack row
                floor = noise.compare(ranker, source.epsilon or proto.threat.epsilon, before.hit_rate[int(first)])
                row.noise_floor = {"hr": floor["hr"], "delta": floor["delta"], "p": floor["test"]["p"],
                                   "significant": floor["test"]["significant"]}
                row.flags += [f for f in (noise_floor(floor, row.cooperative["hr"][first]),) if f]
            if check_determinism and sub.entry is not None and source is sources[0] and target not in checked_determinism:
                checked_determinism[target] = determinism_flag(
                    sub, sub_hash=sub_hash, prepared=prepared, ranker=ranker, epsilon=source.epsilon, items=cold,
                    time_limit=time_limit, isolation=isolation, log=log)
            if checked_determinism.get(target):
                row.flags.append(checked_determinism[target])
            if replicas > 1:
                row.replicas = _replica_spread(prepared, name, source, cold, replicas, row.to_dict(), first)
            row = row.to_dict()
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
        "timing": {"total_s": time.perf_counter() - began, "ranks": distributed.world().size},
        "shard_items": distributed.shard_items(),
        "sandbox": sandbox_record(isolation, code=sub.entry is not None, time_limit=time_limit),
        "intervals": boot.describe(),
        "checks": [c for c in ATTACK_CHECKS if (c != "nondeterministic" or (sub.entry is not None and check_determinism))
                   and (c != "noise-floor" or not noise.is_the_control(sub_hash))],
        "results": rows,
        "examples": {"items": [int(i) for i in cold[:n_examples]], "rows": list(examples)},
    }
    per_item, sheet = pd.concat(per_item, ignore_index=True), example_sheet(list(examples.values()))
    document["files"] = beside_files(per_item, sheet)  # the CSV and the sheet are sealed with the numbers
    document = seal(json.loads(json.dumps(document, allow_nan=False)))  # plain JSON types, then its own hash
    validate_results(document, "results")
    return Results(document, per_item, sheet)
