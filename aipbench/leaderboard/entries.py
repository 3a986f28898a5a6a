"""Leaderboard entries: committed results documents, checked before anything is shown."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.errors import InputError
from aipbench.pipeline.store import INPUT_PREFIX

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Entry", "check_artifacts", "check_document", "load_entries", "read_items_csv"]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One results document with what was written beside it (per-item CSV, example sheet)."""

    path: Path
    document: dict
    items: "pd.DataFrame | None"
    examples_png: bytes | None

    @property
    def status(self) -> dict:
        """How far the entry is trusted (``aipbench.leaderboard.status``): reference, claimed, verified or failed."""
        from aipbench.leaderboard.status import entry_status

        return entry_status(self.path, self.document)

    @property
    def protocol(self) -> str:
        return self.document["protocol"]["name"]

    @property
    def name(self) -> str:
        return self.document["submission"]["name"]

    @property
    def inputs(self) -> dict[str, str]:
        """The outside files the entry's artifacts were built from (a real data set, ImageNet weights):
        name → SHA-256."""
        return {f[len(INPUT_PREFIX):]: h for files in self.document["artifacts"].values() for f, h in files.items()
                if f.startswith(INPUT_PREFIX)}


def _load_one(path: Path) -> Entry:
    from aipbench.results.document import load_results

    doc = load_results(path)  # schema and the document's own hash
    name = doc["protocol"]["name"]
    if path.parent.name != name:
        raise InputError(f"{path}: results of protocol {name!r} filed under {path.parent.name!r}")
    if path.stem != doc["submission"]["name"]:
        raise InputError(f"{path}: file name must be the submission's name, {doc['submission']['name']!r}")
    check_document(path, doc)
    csv, png = path.with_suffix(".items.csv"), path.with_suffix(".examples.png")
    items = read_items_csv(csv, doc) if csv.is_file() else None
    return Entry(path, doc, items, png.read_bytes() if png.is_file() else None)


def read_items_csv(csv: Path, doc: dict) -> "pd.DataFrame":
    """The per-item CSV beside a document, with the columns its rows need (a sealed CSV can still be a
    re-sealed malformed one): one-line errors."""
    import pandas as pd

    need = ["item", "ranker", "epsilon"] + [f"{side}_hr@{n}" for side in ("cooperative", "adversarial")
                                           for n in doc.get("hit_ranks", [])]
    try:
        items = pd.read_csv(csv)
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise InputError(f"{csv}: not a readable per-item CSV ({str(err).splitlines()[0][:200]})") from None
    missing = [c for c in need if c not in items.columns]
    if missing:
        raise InputError(f"{csv}: the per-item CSV lacks column(s) {', '.join(missing)}")
    if not pd.api.types.is_numeric_dtype(items["item"]) or not all(
            pd.api.types.is_numeric_dtype(items[c]) for c in need[3:]):
        raise InputError(f"{csv}: item ids and hit rates in the per-item CSV must be numbers")
    return items


def check_document(path: Path, doc: dict) -> None:
    """What every entry must pass wherever it lies (its schema and seal already checked by ``load_results``):
    the protocol known here with the same hash, every row within its budget, the files beside it sealed."""
    from aipbench.protocol import load_protocol

    name = doc["protocol"]["name"]
    try:
        expected = load_protocol(name).sha256
    except Exception:  # noqa: BLE001 — any failure to load it means the protocol is unknown here
        from aipbench.protocol import protocol_dirs

        raise InputError(f"{path}: protocol {name!r} is not found (looked in {', '.join(map(str, protocol_dirs()))}); "
                         f"put {name}.toml in a folder and name that folder in AIPBENCH_PROTOCOLS") from None
    if doc["protocol"]["sha256"] != expected:
        raise InputError(f"{path}: protocol hash {doc['protocol']['sha256'][:12]} does not match "
                         f"protocols/{name}.toml ({expected[:12]})")
    _check_budgets(path, doc)
    _check_beside(path, doc, {"items.csv": path.with_suffix(".items.csv"), "examples.png": path.with_suffix(".examples.png")})


def _check_budgets(path: Path, doc: dict) -> None:
    """Every row's largest L∞ change within its budget (the harness checked it; a document could lie)."""
    own = (doc.get("submission", {}).get("threat") or {}).get("epsilon")
    for row in doc["results"] if doc.get("kind") != "defense" else []:
        budget = row["epsilon"] if row["epsilon"] is not None else own
        worst = row["image_quality"]["max_linf"]
        if budget is not None and worst > budget:
            raise InputError(f"{path}: {row['ranker']}: max L∞ {worst} exceeds the budget epsilon = {budget}")


def _check_beside(path: Path, doc: dict, files: dict[str, Path]) -> None:
    """The CSV and example sheet beside the document are the bytes its seal lists (``files``)."""
    import hashlib

    for name, digest in doc.get("files", {}).items():
        beside = files[name]
        if not beside.is_file():
            raise InputError(f"{beside}: missing; the sealed document {path.name} lists it")
        if hashlib.sha256(beside.read_bytes()).hexdigest() != digest:
            raise InputError(f"{beside}: SHA-256 does not match the one sealed in {path.name} (edited after it was written)")


def load_entries(results_dir: str | Path) -> list[Entry]:
    """Every ``<protocol>/<submission>.json`` under ``results_dir``, validated: schema, the document's own
    SHA-256, the protocol hash against this checkout's protocol file, and one build of each artifact per
    protocol (results measured on different artifacts are not comparable). One-line errors."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: no such results folder")
    entries = [_load_one(p) for p in sorted(results_dir.glob("*/*.json"))]
    # per protocol, each artifact seen so far and the entry that first recorded it; an artifact recorded
    # by one entry only (an optional one, e.g. a Figure 5 length variant, built after it) is no conflict
    seen: dict[str, dict[str, tuple[dict, Path]]] = {}
    for entry in entries:
        check_artifacts(entry.path, entry.document, seen.setdefault(entry.protocol, {}))
    return entries


def check_artifacts(path: Path, doc: dict, known: dict[str, tuple[dict, Path]]) -> None:
    """``doc``'s artifacts against ``known`` ({step: (files, the entry that recorded them)}, updated with
    the steps ``doc`` adds): one build of each artifact per protocol."""
    for step, files in sorted(doc["artifacts"].items()):
        files0, ref = known.setdefault(step, (files, path))
        outside = sorted(f for f in set(files) & set(files0) if f.startswith(INPUT_PREFIX) and files[f] != files0[f])
        if outside:  # e.g. two copies of a real data set's file that differ: never mixed under one name
            f = outside[0]
            raise InputError(f"{path}: built from {f[len(INPUT_PREFIX):]} with SHA-256 {files[f]}, but "
                             f"{ref.name} from one with SHA-256 {files0[f]}; one protocol, one data file")
        if files != files0:
            raise InputError(f"{path}: artifact hashes differ from {ref.name}'s (first at {step!r}); "
                             "results of one protocol must come from the same prepared artifacts")
