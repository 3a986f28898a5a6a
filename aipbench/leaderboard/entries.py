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

    doc = load_results(path)  # schema, the document's own hash, plain names
    name = doc["protocol"]["name"]
    if path.parent.name != name:
        raise InputError(f"{path}: results of protocol {name!r} filed under {path.parent.name!r}")
    if path.stem != doc["submission"]["name"]:
        raise InputError(f"{path}: file name must be the submission's name, {doc['submission']['name']!r}")
    beside = check_document(path, doc)
    items = None
    if "items.csv" in beside:
        from aipbench.leaderboard.rederive import check_rows

        items = read_items_csv(path.with_suffix(".items.csv"), doc, beside["items.csv"])
        check_rows(path, doc, items)  # every row what its items give
    return Entry(path, doc, items, beside.get("examples.png"))


def read_items_csv(csv: Path, doc: dict, data: bytes) -> "pd.DataFrame":
    """The per-item CSV beside a document (``data``: its bytes), with the columns its rows need, numbers where
    numbers belong and nothing a spreadsheet would run (a sealed CSV can still be a re-sealed malformed one):
    one-line errors."""
    import io

    import pandas as pd

    need = ["item", "ranker", "epsilon"] + [f"{side}_{metric}@{n}" for metric in ("hr", "availability")
                                           for side in ("cooperative", "adversarial") for n in doc.get("hit_ranks", [])]
    need += ["cooperative_mean_score", "adversarial_mean_score", "prediction_shift", "linf", "psnr", "ssim"]
    labels = ["ranker"] + ["attack"] * (doc.get("kind") == "ranker")  # the columns that hold names
    need += labels[1:]
    try:
        items = pd.read_csv(io.BytesIO(data))
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise InputError(f"{csv}: not a readable per-item CSV ({str(err).splitlines()[0][:200]})") from None
    missing = [c for c in need if c not in items.columns]
    if missing:
        raise InputError(f"{csv}: the per-item CSV lacks column(s) {', '.join(missing)}")
    text = [c for c in items.columns if c not in labels and not pd.api.types.is_numeric_dtype(items[c])]
    if text:
        raise InputError(f"{csv}: column {text[0]!r} of the per-item CSV holds text; every column but "
                         f"{' and '.join(map(repr, labels))} holds numbers")
    from aipbench.leaderboard.rederive import attack_parts

    rankers = {r["ranker"] for _, part, _ in attack_parts(doc) for r in part.get("results", [])}
    strangers = sorted(set(items["ranker"].astype(str)) - rankers)
    if strangers:
        raise InputError(f"{csv}: ranker {strangers[0][:60]!r} of the per-item CSV is none of the document's rows'")
    return items


def check_document(path: Path, doc: dict) -> dict[str, bytes]:
    """What every entry must pass wherever it lies (its schema, seal and names already checked by
    ``load_results``): the protocol known here with the same hash, every row within its budget, the files
    beside it regular files, sealed (an example sheet a real PNG). Returns those files' bytes, by name."""
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
    return _check_beside(path, doc)


def _check_budgets(path: Path, doc: dict) -> None:
    """Every row's largest L∞ change within its budget (the harness checked it; a document could lie)."""
    from aipbench.leaderboard.rederive import attack_parts

    for attack, part, _ in attack_parts(doc) if doc.get("kind") != "defense" else []:
        own = (part.get("submission", {}).get("threat") or {}).get("epsilon")
        for row in part["results"]:
            budget = row["epsilon"] if row["epsilon"] is not None else own
            worst = row["image_quality"]["max_linf"]
            if budget is not None and worst > budget:
                where = f"{attack}: " if attack else ""
                raise InputError(f"{path}: {where}{row['ranker']}: max L∞ {worst} exceeds the budget epsilon = {budget}")


MAX_BESIDE = {"items.csv": 256 << 20, "examples.png": 16 << 20}  # bytes of the files beside a document


def _check_beside(path: Path, doc: dict) -> dict[str, bytes]:
    """The CSV and example sheet beside the document: regular files (never read through a link) that are the
    bytes its seal lists, the sheet a PNG of sane size; an attack's document lists its per-item CSV."""
    import hashlib

    from aipbench.paths import read_regular

    listed = doc.get("files", {})
    if doc.get("kind", "attack") in ("attack", "ranker") and "items.csv" not in listed:
        raise InputError(f"{path}: lists no per-item CSV (files.items.csv); an attack's numbers are re-derived from it")
    found = {}
    for name, digest in listed.items():
        beside = path.with_name(f"{path.stem}.{name}")
        if not beside.exists() and not beside.is_symlink():
            raise InputError(f"{beside}: missing; the sealed document {path.name} lists it")
        data = read_regular(beside, max_bytes=MAX_BESIDE[name])
        if hashlib.sha256(data).hexdigest() != digest:
            raise InputError(f"{beside}: SHA-256 does not match the one sealed in {path.name} (edited after it was written)")
        if name == "examples.png":
            _check_png(beside, data)
        found[name] = data
    return found


def _check_png(path: Path, data: bytes) -> None:
    """An example sheet is shown inline on the site: a PNG image, decodable, of at most 4096 × 4096 pixels."""
    import io

    from PIL import Image

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise InputError(f"{path}: not a PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or max(image.size) > 4096:
                raise ValueError(f"{image.format} of {image.size[0]}×{image.size[1]} pixels")
            image.verify()
    except Exception as err:  # noqa: BLE001 — whatever the bytes are, one line
        raise InputError(f"{path}: not an example sheet (a PNG of at most 4096×4096 pixels): {str(err)[:120]}") from None


def load_entries(results_dir: str | Path) -> list[Entry]:
    """Every ``<protocol>/<submission>.json`` under ``results_dir``, validated: schema, the document's own
    SHA-256, the protocol hash against this checkout's protocol file, and one build of each artifact per
    protocol (results measured on different artifacts are not comparable). One-line errors."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: no such results folder")
    entries = [_load_one(p) for p in sorted(results_dir.glob("*/*.json"))]
    from aipbench.leaderboard.status import check_one_build, held_out_path

    check_one_build([(held_out_path(e.path), e.status["held_out"]) for e in entries if e.status["held_out"]])
    # per protocol, each artifact seen so far and the entry that first recorded it; an artifact recorded
    # by one entry only (an optional one, e.g. a Figure 5 length variant, built after it) is no conflict
    seen: dict[str, dict[str, tuple[dict, Path]]] = {}
    for entry in entries:
        check_artifacts(entry.path, entry.document, seen.setdefault(entry.protocol, {}))
    return entries


def check_artifacts(path: Path, doc: dict, known: dict[str, tuple[dict, Path]]) -> None:
    """``doc``'s artifacts against its protocol's pinned reference build (``protocols/builds/<protocol>.toml``),
    where there is one, and against ``known`` ({step: (files, the entry that recorded them)}, updated with the
    steps ``doc`` adds): one build of each artifact per protocol."""
    from aipbench.pipeline.builds import build_id, load_pin, pin_path
    from aipbench.protocol import load_protocol

    protocol = load_protocol(doc["protocol"]["name"])
    pin = load_pin(protocol)
    mine = doc.get("build", {}).get("id") or build_id(protocol, doc["artifacts"])
    if pin is not None and (step := pin.differs(doc["artifacts"])) is not None:
        raise InputError(f"{path}: made on build {mine[:12]}, whose {step!r} is not the reference build's: "
                         f"{protocol.name}'s entries use build {pin.id[:12]} ({pin_path(protocol).name}); import it "
                         f"(`{pin.how_to_import()}`) and evaluate again")
    for step, files in sorted(doc["artifacts"].items()):
        files0, ref = known.setdefault(step, (files, path))
        outside = sorted(f for f in set(files) & set(files0) if f.startswith(INPUT_PREFIX) and files[f] != files0[f])
        if outside:  # e.g. two copies of a real data set's file that differ: never mixed under one name
            f = outside[0]
            raise InputError(f"{path}: built from {f[len(INPUT_PREFIX):]} with SHA-256 {files[f]}, but "
                             f"{ref.name} from one with SHA-256 {files0[f]}; one protocol, one data file")
        if files != files0:
            raise InputError(f"{path}: artifact hashes differ from {ref.name}'s (first at {step!r}: build "
                             f"{mine[:12]}); results of one protocol must come from the same prepared artifacts, one build")
