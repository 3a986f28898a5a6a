"""``aipbench leaderboard add``: file someone else's results document as a *claimed* entry, after every check
that needs no re-run."""

from __future__ import annotations

import datetime
import json
import re
import shutil
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["SAFE_NAME", "add_entry", "check_entries"]

SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")  # a submission's name becomes a file name and a URL


def add_entry(results_file: str | Path, results_dir: str | Path) -> Path:
    """Check ``results_file`` (schema and seal, the protocol known here with its hash, every row within its
    budget, the files beside it sealed, its artifacts the same builds as the protocol's other entries, a
    name that is free) and file it with those files under ``results_dir/<protocol>/`` with a *claimed*
    record; all or nothing. Returns the filed document's path."""
    from aipbench import __version__
    from aipbench.leaderboard.entries import check_artifacts, check_document, load_entries, read_items_csv
    from aipbench.leaderboard.status import claim_path
    from aipbench.results.document import load_results, write_all

    source, results_dir = Path(results_file), Path(results_dir)
    doc = load_results(source)  # one-line errors: unreadable, schema, the document's own SHA-256
    if doc.get("kind") == "reproduction":
        raise InputError(f"{source}: a reproduction is made from the leaderboard's entries, not added as one")
    name, protocol = doc["submission"]["name"], doc["protocol"]["name"]
    _check_name(source, name)
    check_document(source, doc)
    if source.with_suffix(".items.csv").is_file():  # sealed, but a re-sealed malformed CSV would break the site
        read_items_csv(source.with_suffix(".items.csv"), doc)
    target = results_dir / protocol / f"{name}.json"
    if target.exists():
        same = json.loads(target.read_text()).get("sha256") == doc["sha256"]
        raise InputError(f"{target}: {'this document is already filed' if same else f'an entry named {name!r} exists'}; "
                         "a new version of an entry needs a new submission name or a maintainer's removal of the old")
    known: dict = {}
    for entry in (load_entries(results_dir) if results_dir.is_dir() else []):
        if entry.protocol == protocol:
            check_artifacts(entry.path, entry.document, known)
    check_artifacts(source, doc, known)
    record = {"entry": target.name, "entry_sha256": doc["sha256"], "status": "claimed", "source_file": source.name,
              "added": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "checked_by": f"aipbench {__version__}",
              "checks": ["schema", "document SHA-256", "protocol hash", "budgets", "files beside it", "artifact hashes"]}
    copies = {target.with_suffix(suffix): source.with_suffix(suffix)
              for suffix in (".items.csv", ".examples.png") if source.with_suffix(suffix).is_file()}
    writes = {**{dst: (lambda p, src=src: shutil.copyfile(src, p)) for dst, src in copies.items()},
              target: lambda p: shutil.copyfile(source, p),
              claim_path(target): lambda p: p.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")}
    write_all(writes)
    return target


def check_entries(results_dir: str | Path) -> dict[str, int]:
    """What ``add_entry`` checks, on every entry already filed under ``results_dir`` (a pull request that adds
    files by hand gets the same checks), and that each claimed or verification record names its entry's
    current SHA-256. Returns the number of entries per status."""
    from aipbench.leaderboard.entries import load_entries
    from aipbench.leaderboard.status import CLAIMED_DIR, STATUSES, claim_path

    results_dir = Path(results_dir)
    counts = dict.fromkeys(STATUSES, 0)
    entries = load_entries(results_dir)  # schema, seal, protocol, budgets, files beside, artifacts per protocol
    for entry in entries:
        _check_name(entry.path, entry.name)
        status = entry.status
        if status["claim"] is not None and status["claim"].get("entry_sha256") != entry.document["sha256"]:
            raise InputError(f"{claim_path(entry.path)}: names another version of {entry.path.name} (its SHA-256 differs); "
                             "an entry is filed once, by aipbench leaderboard add")
        counts[status["status"]] += 1
    filed = {e.path for e in entries}
    for record in sorted(results_dir.glob(f"*/{CLAIMED_DIR}/*.json")):
        if record.parent.parent / record.name not in filed:
            raise InputError(f"{record}: a claimed record without its entry {record.parent.parent / record.name}")
    return counts


def _check_name(path: Path, name: str) -> None:
    if not SAFE_NAME.match(name):
        raise InputError(f"{path}: submission name {name!r} must be lower-case letters, digits, '.', '_' or '-' "
                         "(it becomes a file name and a page address)")
