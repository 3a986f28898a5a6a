"""``aipbench leaderboard add``: file someone else's results document as a *claimed* entry, after every check
that needs no re-run."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["CHECKS", "add_entry", "check_entries"]

CHECKS = ["schema", "document SHA-256", "plain names", "protocol hash", "budgets", "files beside it",
          "rows re-derived from the per-item CSV", "the protocol's cold items or its subset", "artifact hashes"]


def add_entry(results_file: str | Path, results_dir: str | Path, *, home: Path | None = None,
              log: Callable[[str], None] = print) -> Path:
    """Check ``results_file`` (read once, strictly: a regular file, plain JSON with plain names; its schema and
    seal; the protocol known here with its hash; every row within its budget; the files beside it regular and
    sealed; every row re-derived from its per-item CSV, which holds exactly the protocol's cold items or its
    subset of as many; its artifacts the same build as the protocol's other entries; a name that is free) and
    file it with those files under ``results_dir/<protocol>/`` with a *claimed* record; all or nothing.
    Returns the filed document's path."""
    from aipbench import __version__
    from aipbench.leaderboard.coldsets import check_item_set
    from aipbench.leaderboard.entries import check_artifacts, check_document, load_entries, read_items_csv
    from aipbench.leaderboard.rederive import check_rows
    from aipbench.leaderboard.status import claim_path
    from aipbench.paths import read_regular
    from aipbench.results.document import MAX_JSON_BYTES, parse_results, write_all

    source, results_dir = Path(results_file), Path(results_dir)
    data = read_regular(source, max_bytes=MAX_JSON_BYTES)  # what is checked is what is filed
    doc = parse_results(data, source)  # one-line errors: JSON, schema, the document's own SHA-256, plain names
    if doc.get("kind") == "reproduction":
        raise InputError(f"{source}: a reproduction is made from the leaderboard's entries, not added as one")
    name, protocol = doc["submission"]["name"], doc["protocol"]["name"]
    beside = check_document(source, doc)
    if "items.csv" in beside:
        items = read_items_csv(source.with_suffix(".items.csv"), doc, beside["items.csv"])
        check_rows(source, doc, items)
        check_item_set(source, doc, items, home=home, log=log)
    target = results_dir / protocol / f"{name}.json"
    if target.exists() or target.is_symlink():
        same = target.is_file() and json.loads(target.read_text()).get("sha256") == doc["sha256"]
        raise InputError(f"{target}: {'this document is already filed' if same else f'an entry named {name!r} exists'}; "
                         "a new version of an entry needs a new submission name or a maintainer's removal of the old")
    known: dict = {}
    for entry in (load_entries(results_dir) if results_dir.is_dir() else []):
        if entry.protocol == protocol:
            check_artifacts(entry.path, entry.document, known)
    check_artifacts(source, doc, known)
    record = {"entry": target.name, "entry_sha256": doc["sha256"], "status": "claimed", "source_file": source.name,
              "added": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "checked_by": f"aipbench {__version__}", "checks": CHECKS}
    writes = {target.with_name(f"{target.stem}.{k}"): (lambda p, b=v: p.write_bytes(b)) for k, v in beside.items()}
    writes[target] = lambda p: p.write_bytes(data)
    writes[claim_path(target)] = lambda p: p.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_all(writes)
    return target


def check_entries(results_dir: str | Path, *, home: Path | None = None, log: Callable[[str], None] = print) -> dict[str, int]:
    """What ``add_entry`` checks, on every entry already filed under ``results_dir`` (a pull request that adds
    files by hand gets the same checks), and that each claimed or verification record names its entry's
    current SHA-256. Returns the number of entries per status."""
    from aipbench.leaderboard.coldsets import check_item_set
    from aipbench.leaderboard.entries import load_entries
    from aipbench.leaderboard.status import CLAIMED_DIR, HELD_OUT_DIR, STATUSES, claim_path

    results_dir = Path(results_dir)
    counts = dict.fromkeys(STATUSES, 0)
    entries = load_entries(results_dir)  # schema, seal, names, protocol, budgets, files beside, rows, artifacts
    for entry in entries:
        if entry.items is not None:
            check_item_set(entry.path, entry.document, entry.items, home=home, log=log)
        status = entry.status
        if status["claim"] is not None and status["claim"].get("entry_sha256") != entry.document["sha256"]:
            raise InputError(f"{claim_path(entry.path)}: names another version of {entry.path.name} (its SHA-256 differs); "
                             "an entry is filed once, by aipbench leaderboard add")
        counts[status["status"]] += 1
    filed = {e.path for e in entries}
    for folder in (CLAIMED_DIR, HELD_OUT_DIR):
        for record in sorted(results_dir.glob(f"*/{folder}/*.json")):
            if record.parent.parent / record.name not in filed:
                raise InputError(f"{record}: a record without its entry {record.parent.parent / record.name}")
    return counts
