"""How far a leaderboard entry is trusted: made by the maintainers, claimed from outside, verified, or failed.

Beside ``<protocol>/<name>.json``: ``<protocol>/claimed/<name>.json`` records an entry filed by
``aipbench leaderboard add`` (someone else's run), ``<protocol>/verifications/<name>.json`` the last
``aipbench verify`` of it, ``<protocol>/held-out/<name>.json`` its score on the protocol's held-out build
(``aipbench verify --held-out``). A record counts only for the document whose SHA-256 it names."""

from __future__ import annotations

import json
from pathlib import Path

from aipbench.errors import InputError

__all__ = ["CLAIMED_DIR", "HELD_OUT_DIR", "STATUSES", "VERIFICATIONS_DIR", "check_one_build", "claim_path", "committed",
           "entry_status",
           "held_out_path", "verification_path"]

CLAIMED_DIR, VERIFICATIONS_DIR, HELD_OUT_DIR = "claimed", "verifications", "held-out"
# best first: the order of the leaderboard's tables (within a status, by ΔHR)
STATUSES = {
    "verified": "claimed by its submitter and re-run on a random subset of its cold items by a maintainer, within tolerance",
    "reference": "made by the maintainers with this checkout's aipbench (the reference methods; pinned by the test suite)",
    "own": "results of your own, made with aipbench on your machine and never filed (neither the project's references "
           "nor a leaderboard entry)",
    "claimed": "someone else's evaluation, checked (schema, seal, protocol and artifact hashes, budgets) but not re-run",
    "failed": "a maintainer's re-run disagreed with the claimed numbers (shown, not deleted; see the record)",
}


def claim_path(entry: Path) -> Path:
    return entry.parent / CLAIMED_DIR / entry.name


def verification_path(entry: Path) -> Path:
    return entry.parent / VERIFICATIONS_DIR / entry.name


def held_out_path(entry: Path) -> Path:
    return entry.parent / HELD_OUT_DIR / entry.name


def committed(entry: Path) -> bool:
    """Whether ``entry`` is one of the project's committed documents (under the checkout's ``leaderboard/``)."""
    from aipbench.errors import InputError
    from aipbench.paths import project_dir

    try:
        return Path(entry).resolve().is_relative_to(project_dir("leaderboard").resolve())
    except InputError:  # an installation without the committed results
        return False


def entry_status(entry: Path, document: dict) -> dict:
    """{"status": one of ``STATUSES``, "claim": the add record or None, "verification": the record or None,
    "held_out": the held-out record or None}. Where it comes from decides an unfiled entry's status: the
    project's committed folder (``reference``), anywhere else (``own``)."""
    claim = _read(claim_path(entry))
    record = _read(verification_path(entry))
    if record is not None and record.get("entry_sha256") != document["sha256"]:
        record = None  # a verification of another version of the document
    held = _read(held_out_path(entry))
    if held is not None and held.get("entry_sha256") != document["sha256"]:
        held = None
    if claim is None:
        status = "reference" if committed(entry) else "own"
    elif record is None:
        status = "claimed"
    else:
        status = "verified" if record.get("passed") else "failed"
    return {"status": status, "claim": claim, "verification": record, "held_out": held}


def _read(path: Path) -> dict | None:
    from aipbench.results.document import read_json

    if not path.exists() and not path.is_symlink():
        return None
    record = read_json(path, max_bytes=4 << 20)  # a regular file, strict JSON: one-line errors
    if not isinstance(record, dict):
        raise InputError(f"{path}: a status record is a JSON object")
    return record


def check_one_build(records: list[tuple[Path, dict]]) -> None:
    """Held-out scores compare only on one held-out build: every record of a protocol names the same one."""
    builds = {}
    for path, record in records:
        build = json.dumps(record.get("held_out"), sort_keys=True)
        builds.setdefault(record["protocol"]["name"], (build, path))
        first, where = builds[record["protocol"]["name"]]
        if build != first:
            raise InputError(f"{path}: a held-out score of another held-out build than {where.name}'s; one protocol, "
                             "one held-out build")
