"""``aipbench.evaluate``: one entry point for attacks and defenses — prepare the protocol, run the
submission against its rankers, score it, return (and write) its typed results."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError
from aipbench.protocol import DEFAULT_PROTOCOL

if TYPE_CHECKING:
    from aipbench.harness.isolation.limits import Limits
    from aipbench.harness.submission import Submission
    from aipbench.results.document import DefenseResults, RankerResults, Results

__all__ = ["DEFAULT_ISOLATION", "DEFENSE_ITEMS", "evaluate"]

DEFAULT_ISOLATION = "sandbox"  # where attack code runs unless the caller says (aipbench.harness.isolation)
DEFENSE_ITEMS = 100  # cold items a defense is evaluated on by default (the paper's subset for Tables 6, 8)


def evaluate(
    submission: "str | Path | Submission",
    *,
    protocol: str | Path = DEFAULT_PROTOCOL,
    rankers: Sequence[str] | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    home: Path | None = None,
    time_limit: float | None = None,
    epsilons: Sequence[int] | None = None,
    items: int | None = None,
    levels: Sequence[int] | None = None,
    attacks: Sequence[str] | None = None,
    isolation: str | None = None,
    replicas: int = 1,
    check_determinism: bool = True,
    limits: "Limits | None" = None,
    log: Callable[[str], None] = print,
) -> "Results | DefenseResults | RankerResults":
    """Evaluate an attack, a defense or a ranker on ``protocol``, preparing what its cache lacks, against ``rankers``
    (default: all four), on ``device`` (``auto``: CUDA where present). Attacks: ``epsilons`` sweeps a bounded
    code submission's budget (none above the protocol's); ``items`` limits the cold items to the protocol's
    subset of that many (default: all). Defenses: scored against
    the reference ``attacks`` (default: all five), transfer and adaptive, on ``items`` cold items (default
    100), at ``levels`` of a transform family (default: its own). ``isolation``: ``"sandbox"`` (a child
    process per attack run in a bubblewrap sandbox; the default), ``"process"`` (the same child, unsandboxed:
    ``--unsandboxed``) or ``"none"`` (in this process: the repository's reference submissions only, recognised
    by their folders' hashes); ``limits``: the resource limits of every child (default: ``default_limits()``).
    Rankers (``kind = "ranker"``): trained in their sandbox and judged by the reference ``attacks`` (default: all
    of ``harness.ranker.RANKER_SUITE``), bounded ones at ``epsilons`` (default: the protocol's sweep).
    ``replicas`` (attacks): also attack and score that many replicas of each ranker (other training seeds,
    built if missing) and report their spread; ``check_determinism``: run a code attack twice more on 10
    items (a reliability flag). Writes the results to ``out`` if given; a failed evaluation raises and writes nothing."""
    from aipbench.attacks.grants import CONTEXT_ARTIFACTS
    from aipbench.harness.isolation.attack_run import DEFAULT_TIME_LIMIT
    from aipbench.harness.isolation.limits import using_limits
    from aipbench.harness.isolation.trust import ISOLATIONS, check_in_process
    from aipbench.harness.submission import load_submission
    from aipbench.pipeline.prepared import Prepared
    from aipbench.rankers.registry import ranker_names, ranker_spec

    from aipbench.protocol import load_protocol
    from aipbench.protocol.schema import Protocol

    sub = submission if not isinstance(submission, (str, Path)) else load_submission(submission)
    proto = protocol if isinstance(protocol, Protocol) else load_protocol(protocol)
    source = sub.folder / "submission.toml"
    kind = sub.submission.kind
    if kind == "ranker" and rankers:
        raise InputError(f"{source}: a ranker submission is the ranker evaluated; --rankers names the protocol's")
    names = [] if kind == "ranker" else list(rankers) if rankers else ranker_names(proto)
    for name in names:  # unknown names, and rankers the protocol has none of, fail before any work
        if not ranker_spec(name).in_protocol(proto):
            raise InputError(f"ranker {name!r}: protocol {proto.name} has no [rankers.{name}] section (its rankers: "
                             f"{', '.join(ranker_names(proto))})")
    isolation = isolation or DEFAULT_ISOLATION
    if isolation not in ISOLATIONS:
        raise InputError(f"isolation {isolation!r} is not one of {', '.join(ISOLATIONS)}")
    if isolation == "none":  # a reference submission by content, or refused before any work
        check_in_process(sub.folder)
    if kind in ("attack", "ranker") and levels:
        raise InputError(f"{source}: levels are for defense families; this is {'an' if kind == 'attack' else 'a'} {kind}")
    if sub.submission.kind == "defense" and epsilons:
        raise InputError(f"{source}: an epsilon sweep is for attacks; this is a defense")
    from aipbench.rankers.replicas import MAX_REPLICAS

    if not 1 <= replicas <= MAX_REPLICAS:
        raise InputError(f"replicas must be in 1..{MAX_REPLICAS}, got {replicas}")
    if kind != "attack" and replicas > 1:
        raise InputError(f"{source}: replicas are for attacks (their rankers' other training seeds)")
    if sub.submission.kind == "attack" and attacks:
        raise InputError(f"{source}: reference attacks are what a defense is scored against; this is an attack")
    from aipbench.harness.submission import REFERENCE_ATTACKS, reference_submissions

    known = reference_submissions("attack")
    for name in attacks or ():
        known.get(name)  # an unknown reference attack fails before any work
    if sub.submission.kind == "attack":
        from aipbench.harness.attack import budgets

        budgets(sub, epsilons, proto)  # a bad sweep or a budget above the protocol's fails before any work
    bad = [e for e in epsilons or () if kind == "ranker" and not 1 <= int(e) <= proto.threat.epsilon]
    if bad:
        raise InputError(f"--eps {bad[0]} is outside 1..{proto.threat.epsilon}, protocol '{proto.name}''s budgets")
    if out is not None:
        _check_out(Path(out))
        if Path(out).parent.name == proto.name and Path(out).stem != sub.submission.name:
            # the leaderboard's layout, <protocol>/<name>.json: refused now, not when the entry is filed
            raise InputError(f"{out}: a results folder of {proto.name} holds <submission name>.json; write it as "
                             f"{Path(out).with_name(sub.submission.name + '.json')}")
    if sub.submission.kind == "defense" and sub.defense.type == "training":
        if sub.defense.defends not in names:
            raise InputError(f"{source}: defends = {sub.defense.defends!r} is not among the rankers evaluated "
                             f"({', '.join(names)})")
        names = [sub.defense.defends]  # only the ranker it replaces is prepared and scored
    world, device = _join(sub, proto, device, dict(rankers=names, epsilons=epsilons, items=items, levels=levels,
                                                   attacks=attacks, isolation=isolation, replicas=replicas,
                                                   time_limit=time_limit, check_determinism=check_determinism))
    if world.rank != 0:  # every rank runs the evaluation; rank 0 speaks and writes
        log, out = (lambda _line: None), None
    prepared = Prepared(proto, home=home, device=device, needs=[*CONTEXT_ARTIFACTS, *names], log=log)
    from aipbench.harness import distributed

    distributed.check_same({"artifacts": prepared.hashes()})  # per-node caches must hold the same bytes
    limit = time_limit or DEFAULT_TIME_LIMIT
    with using_limits(limits):
        if sub.submission.kind == "attack":
            from aipbench.harness.attack import evaluate_attack

            results = evaluate_attack(sub, prepared, rankers=names, epsilons=epsilons, items=items, time_limit=limit,
                                      isolation=isolation, replicas=replicas, check_determinism=check_determinism,
                                      log=log)
        elif kind == "ranker":
            from aipbench.harness.ranker import attack_names, evaluate_ranker

            results = evaluate_ranker(sub, prepared, attacks=attack_names(attacks), epsilons=epsilons, items=items,
                                      time_limit=limit, isolation=isolation, log=log)
        else:
            from aipbench.harness.defense import evaluate_defense

            results = evaluate_defense(sub, prepared, rankers=names, attacks=list(attacks or REFERENCE_ATTACKS),
                                       items=DEFENSE_ITEMS if items is None else items, levels=levels,
                                       time_limit=limit, isolation=isolation, log=log)
    if out is not None:
        results.write(out)
    return results


def _join(sub: "Submission", proto, device: str, arguments: dict):
    """Under torchrun: join the job and refuse to start unless every rank runs the same thing."""
    import platform

    import torch

    from aipbench import __version__
    from aipbench.harness import distributed
    from aipbench.hashing import folder_sha256

    world, device = distributed.join(device)
    distributed.check_same({"aipbench": __version__, "protocol": proto.sha256, "submission": folder_sha256(sub.folder),
                            "arguments": arguments, "device": device.split(":")[0], "torch": torch.__version__,
                            "python": platform.python_version(), "threads": torch.get_num_threads(),
                            "shard_items": distributed.shard_items()})
    return world, device


def _check_out(out: Path) -> None:
    """Refuse an output path that cannot be written before any work is done."""
    if out.exists() and not out.is_file():
        raise InputError(f"{out}: --out names a folder or something that is not a file; give a .json file path")
    if out.suffix != ".json":
        raise InputError(f"{out}: --out must name a .json file (the CSV and PNG are written beside it)")
    parent = out.parent.resolve()
    while not parent.exists():  # the first folder that exists must be one this process can write into
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{out}: --out lies under {parent}, which is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{out}: --out cannot be written ({parent} is not writable)")
