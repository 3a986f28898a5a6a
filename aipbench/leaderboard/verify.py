"""``aipbench verify``: re-run an attack entry's submission on a seeded random subset of its cold items, on every
ranker it reports, and compare item by item with what it claims."""

from __future__ import annotations

import datetime
import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError
from aipbench.leaderboard.rederive import ABS_TOLERANCE, REL_TOLERANCE

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TOLERANCE", "entry_runs", "open_entry", "verify_entry"]

# Per item and ranker, |claimed − measured|. The cooperative images are the protocol's: their hit rates must
# agree to the CSV's 6 significant digits. An attack re-run on other items in its batch may differ in the
# last bits of a convolution (another batch size, another kernel), so a pixel may round to the next level
# and a few users may change their mind: 1 % of the users per item allows that and catches any edited number.
TOLERANCE = {"cooperative": 1e-5, "adversarial": 0.01}


def verify_entry(path: str | Path, *, items: int, seed: int | None = None, submission: str | Path | None = None,
                 home: Path | None = None, device: str = "auto", isolation: str | None = None, by: str | None = None,
                 record: str | Path | None = None, log: Callable[[str], None] = print) -> dict:
    """The verification record of the attack entry at ``path`` (written to ``record``, default
    ``<protocol>/verifications/<name>.json`` beside the entry): the document's rows against its own per-item
    CSV, then ``items`` cold items drawn with ``seed`` (random if None; recorded) from the set it evaluated as
    the protocol defines it (never from its own file: an item it left out is drawn as well), re-attacked by ``submission`` (default: the checkout's ``submissions/<name>``, whose hash must be the
    entry's) on the entry's rankers and budgets in this cache (whose artifacts must be the entry's), each
    item's HR@N within ``TOLERANCE``."""

    from aipbench import __version__
    from aipbench.harness.evaluate import evaluate
    from aipbench.leaderboard.rederive import row_problems
    from aipbench.leaderboard.status import verification_path
    from aipbench.results.document import write_all
    from aipbench.results.provenance import git_commit

    path = Path(path)
    doc, claimed, folder = open_entry(path, submission)
    _on_reference_build(doc, home)
    n_list = [str(n) for n in doc["hit_ranks"]]
    problems = row_problems(doc, claimed)
    universe = _evaluated(path, doc, home=home, log=log)  # the protocol's set: items the CSV left out are drawn too
    if not 1 <= items <= len(universe):
        raise InputError(f"--items must be in 1..{len(universe)} (the cold items the entry evaluated), got {items}")
    seed = int.from_bytes(os.urandom(4), "little") if seed is None else int(seed)
    chosen = np.sort(np.random.default_rng([seed, 0x766572696679]).choice(universe, size=items, replace=False))
    rankers, sweep, own = entry_runs(doc)
    log(f"verifying {path}: {items} of {len(universe)} cold items (seed {seed}) on {', '.join(rankers)}")
    fresh = evaluate(folder, protocol=doc["protocol"]["name"], rankers=rankers, epsilons=sweep, items=chosen.tolist(),
                     home=home, device=device, isolation=isolation, check_determinism=False, log=log)
    for step, files in sorted(doc["artifacts"].items()):
        mine = fresh.document["artifacts"].get(step)
        if mine is not None and mine != files:
            raise InputError(f"{path}: this cache's {step!r} is not the build the entry used (other SHA-256); verify "
                             "compares like with like: prepare the protocol from the same data files")
    differences, max_gap = _compare(claimed, fresh.per_item, chosen, n_list)
    passed = not problems and not differences
    result = {
        "entry": path.name, "entry_sha256": doc["sha256"], "protocol": doc["protocol"], "passed": passed,
        "verified_by": by or getpass.getuser(), "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": seed, "items": [int(i) for i in chosen], "rankers": rankers, "epsilons": sweep or [own],
        "tolerance": {"per_item_hr": TOLERANCE, "self_consistency": {"absolute": ABS_TOLERANCE,
                                                                       "relative": REL_TOLERANCE}},
        "self_consistency": problems, "n_differences": len(differences), "differences": differences[:200],
        "max_difference": max_gap,
        "aipbench": {"version": __version__, "git_commit": git_commit()}, "environment": fresh.document["environment"],
        "measured_sha256": fresh.document["sha256"],
    }
    out = Path(record) if record is not None else verification_path(path)
    write_all({out: lambda p: p.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")})
    return result | {"record": str(out)}


def open_entry(path: Path, submission: str | Path | None) -> tuple[dict, "pd.DataFrame", Path]:
    """An attack entry to re-run: its document and per-item CSV (checked as ``load_entries`` checks them), and
    its submission folder (default: the checkout's ``submissions/<name>``), whose hash must be the entry's."""
    from aipbench.hashing import folder_sha256
    from aipbench.leaderboard.entries import check_document, read_items_csv
    from aipbench.paths import submissions_dir
    from aipbench.results.document import load_results

    doc = load_results(path)
    if doc.get("kind", "attack") != "attack":
        raise InputError(f"{path}: only attack entries are re-run; a {doc['kind']} is re-evaluated with aipbench evaluate")
    beside = check_document(path, doc)
    claimed = read_items_csv(path.with_suffix(".items.csv"), doc, beside["items.csv"])
    folder = Path(submission) if submission is not None else submissions_dir() / doc["submission"]["name"]
    if not (folder / "submission.toml").is_file():
        raise InputError(f"{folder}: no submission here; pass the entry's submission folder with --submission")
    found = folder_sha256(folder)
    if found != doc["submission"]["sha256"]:
        raise InputError(f"{folder}: its SHA-256 {found[:12]} is not the entry's {doc['submission']['sha256'][:12]}; "
                         "a re-run runs the code that made the numbers")
    return doc, claimed, folder


def entry_runs(doc: dict) -> tuple[list[str], list[int] | None, int | None]:
    """The entry's rankers, its ε sweep (None: its own budget only) and its own budget."""
    rankers = list(dict.fromkeys(r["ranker"] for r in doc["results"]))
    budgets = sorted({r["epsilon"] for r in doc["results"] if r["epsilon"] is not None})
    own = doc["submission"]["threat"]["epsilon"]
    return rankers, budgets if budgets and budgets != [own] else None, own


def _on_reference_build(doc: dict, home: Path | None) -> None:
    """Refuse to verify in a cache that holds another build than the protocol's pinned reference build."""
    from aipbench.pipeline.builds import load_pin
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import load_protocol

    protocol = load_protocol(doc["protocol"]["name"])
    pin = load_pin(protocol)
    step = None if pin is None else pin.differs(open_store(protocol, home=home).hashes())
    if step is not None:
        raise InputError(f"this cache's {step!r} of {protocol.name} is not its reference build's ({pin.id[:12]}); verify "
                         f"runs on the reference build: import it (`{pin.how_to_import()}`)")


def _evaluated(path: Path, doc: dict, *, home: Path | None, log: Callable[[str], None]) -> np.ndarray:
    """The set of cold items the entry says it evaluated, as the protocol defines it (never the entry's file)."""
    from aipbench.leaderboard.coldsets import evaluated_set, protocol_cold_items
    from aipbench.protocol import load_protocol

    sizes = {row["n_items"] for row in doc["results"]}
    if len(sizes) != 1:
        raise InputError(f"{path}: its rows evaluated different numbers of cold items ({sorted(sizes)})")
    protocol = load_protocol(doc["protocol"]["name"])
    return evaluated_set(protocol, protocol_cold_items(protocol, doc["artifacts"]["dataset"], home=home, log=log),
                         sizes.pop())


def _compare(claimed, measured, chosen: np.ndarray, n_list: list[str]) -> tuple[list[dict], float]:
    """Every claimed-vs-measured number of the ``chosen`` items beyond ``TOLERANCE`` (and rows missing on
    either side), and the largest difference over all compared numbers."""
    keys = ["item", "ranker", "epsilon"]
    both = claimed[claimed["item"].isin(chosen)].merge(measured[measured["item"].isin(chosen)], on=keys, how="outer",
                                                      suffixes=("_claimed", "_measured"), indicator=True)
    missing = {"left_only": "(not in the re-run)", "right_only": "(not in the entry's CSV)"}
    out = [{"item": int(r["item"]), "ranker": r["ranker"], "epsilon": _eps(r["epsilon"]), "column": missing[r["_merge"]],
            "claimed": None, "measured": None} for _, r in both[both["_merge"] != "both"].iterrows()]
    both, largest = both[both["_merge"] == "both"], 0.0
    for side, tol in TOLERANCE.items():
        for n in n_list:
            col = f"{side}_hr@{n}"
            gap = (both[f"{col}_claimed"] - both[f"{col}_measured"]).abs()
            largest = max(largest, float(gap.max()) if len(gap) else 0.0)
            for _, r in both[gap > tol].iterrows():
                out.append({"item": int(r["item"]), "ranker": r["ranker"], "epsilon": _eps(r["epsilon"]), "column": col,
                            "claimed": float(r[f"{col}_claimed"]), "measured": float(r[f"{col}_measured"])})
    return out, largest


def _eps(value) -> int | None:
    return None if value != value or value is None else int(value)
