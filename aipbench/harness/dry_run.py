"""A submission run end to end on the `tiny` protocol on a few cold items (``aipbench submission check
--dry-run``): the same harness, sandbox and checks as ``evaluate``, in seconds, with nothing written but the
tiny protocol's cache — so a typo or a wrong shape shows before a 16-minute prepare."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aipbench.harness.submission import Submission

__all__ = ["DRY_RUN_ATTACKS", "DRY_RUN_ITEMS", "DRY_RUN_PROTOCOL", "dry_run"]

DRY_RUN_PROTOCOL = "tiny"
DRY_RUN_ITEMS = 8  # cold items of the protocol's subset
# The reference attack a defense or a ranker is tried against: a ranker meets the paper's strongest (INSA); a
# defense meets TAaMR's one-step FGSM, which runs once for every ranker (it attacks the classifier), so a
# defense's transfer and adaptive paths both run in seconds (its evaluation meets every reference attack).
DRY_RUN_ATTACKS = {"defense": "taamr-fgsm", "ranker": "insa"}


def dry_run(sub: "Submission", *, sandboxed: bool = True, time_limit: float = 300.0,
            log: Callable[[str], None] = print):
    """``sub`` evaluated on ``tiny`` (prepared on demand, about 15 s once) on ``DRY_RUN_ITEMS`` cold items: an
    attack against every ranker at its own budget; a defense at its first level against TAaMR's FGSM, transferred
    and adaptive; a ranker trained and attacked by INSA at the protocol's budget. The results, written nowhere."""
    from aipbench.harness.evaluate import evaluate
    from aipbench.protocol import load_protocol

    proto = load_protocol(DRY_RUN_PROTOCOL)
    kind = sub.submission.kind
    options = {"items": DRY_RUN_ITEMS, "check_determinism": False, "time_limit": time_limit}
    if kind != "attack":
        options["attacks"] = [DRY_RUN_ATTACKS[kind]]
    if kind == "ranker":
        options["epsilons"] = [proto.threat.epsilon]
    if kind == "defense" and sub.defense.levels:
        options["levels"] = [sub.defense.levels[0]]
    with tempfile.TemporaryDirectory(prefix="aipbench-dry-run-") as scratch:
        return evaluate(sub, protocol=proto, device="cpu", out=Path(scratch) / f"{sub.submission.name}.json",
                        isolation=None if sandboxed else "process", log=log, **options)
