"""How far a leaderboard entry is trusted: made by the maintainers, claimed from outside, verified, or failed.

Beside ``<protocol>/<name>.json``: ``<protocol>/claimed/<name>.json`` records an entry filed by
``aipbench leaderboard add`` (someone else's run), ``<protocol>/verifications/<name>.json`` the last
``aipbench verify`` of it. A verification counts only for the document whose SHA-256 it names."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CLAIMED_DIR", "STATUSES", "VERIFICATIONS_DIR", "claim_path", "entry_status", "verification_path"]

CLAIMED_DIR, VERIFICATIONS_DIR = "claimed", "verifications"
# best first: the order of the leaderboard's tables (within a status, by ΔHR)
STATUSES = {
    "verified": "claimed by its submitter and re-run on a random subset of its cold items by a maintainer, within tolerance",
    "reference": "made by the maintainers with this checkout's aipbench (the reference methods; pinned by the test suite)",
    "claimed": "someone else's evaluation, checked (schema, seal, protocol and artifact hashes, budgets) but not re-run",
    "failed": "a maintainer's re-run disagreed with the claimed numbers (shown, not deleted; see the record)",
}


def claim_path(entry: Path) -> Path:
    return entry.parent / CLAIMED_DIR / entry.name


def verification_path(entry: Path) -> Path:
    return entry.parent / VERIFICATIONS_DIR / entry.name


def entry_status(entry: Path, document: dict) -> dict:
    """{"status": one of ``STATUSES``, "claim": the add record or None, "verification": the record or None}."""
    claim = _read(claim_path(entry))
    record = _read(verification_path(entry))
    if record is not None and record.get("entry_sha256") != document["sha256"]:
        record = None  # a verification of another version of the document
    if claim is None:
        status = "reference"
    elif record is None:
        status = "claimed"
    else:
        status = "verified" if record.get("passed") else "failed"
    return {"status": status, "claim": claim, "verification": record}


def _read(path: Path) -> dict | None:
    from aipbench.errors import InputError
    from aipbench.results.document import read_json

    if not path.exists() and not path.is_symlink():
        return None
    record = read_json(path, max_bytes=4 << 20)  # a regular file, strict JSON: one-line errors
    if not isinstance(record, dict):
        raise InputError(f"{path}: a status record is a JSON object")
    return record
