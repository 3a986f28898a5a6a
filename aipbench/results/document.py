"""The results document of an evaluation: JSON Schema validation, atomic JSON + per-item CSV, tables."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aipbench.errors import InputError
from aipbench.hashing import canonical_sha256
from aipbench.paths import read_regular

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["IDENTIFIER", "SCHEMA_VERSION", "DefenseResults", "RankerResults", "Results", "beside_files", "check_names", "document_sha256",
           "items_csv", "load_results", "parse_json", "parse_results", "read_json", "results_schema",
           "seal", "spreadsheet_safe",
           "validate_results", "write_all", "write_document"]

SCHEMA_VERSION = 1
IDENTIFIER = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")  # a name that becomes a file name or page address
MAX_JSON_BYTES = 64 << 20  # a results document or record
MAX_JSON_DEPTH = 64


@cache
def results_schema(kind: str = "attack") -> dict:
    """The JSON Schema shipped in the package: ``schemas/results.schema.json`` for attacks,
    ``schemas/defense-results.schema.json`` for defenses, ``schemas/ranker-results.schema.json`` for ranker
    submissions, ``schemas/reproduction.schema.json`` for `aipbench reproduce` documents."""
    name = {"defense": "defense-results.schema.json", "reproduction": "reproduction.schema.json",
            "ranker": "ranker-results.schema.json"}.get(kind, "results.schema.json")
    return json.loads(resources.files("aipbench").joinpath(f"schemas/{name}").read_text())


def validate_results(document: dict, source: str | Path) -> None:
    """Raise a one-line InputError naming ``source`` and the first violated rule (the schema is chosen
    by the document's ``kind``: attack documents have none)."""
    import jsonschema

    kind = document.get("kind", "attack") if isinstance(document, dict) else "attack"
    validator = jsonschema.Draft202012Validator(results_schema(kind if kind in ("defense", "reproduction", "ranker")
                                                               else "attack"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"{source}: results schema violated at {where}: {error.message}")


def document_sha256(document: dict) -> str:
    """SHA-256 of the canonical JSON (sorted keys, compact) of ``document`` without its ``sha256`` key."""
    return canonical_sha256({k: v for k, v in document.items() if k != "sha256"})


def seal(document: dict) -> dict:
    """The document with its own ``sha256`` set."""
    return {**document, "sha256": document_sha256(document)}


@dataclasses.dataclass(frozen=True)
class Results:
    """One evaluation: ``document`` follows the shipped schema (every key documented there);
    ``per_item`` has one row per (ranker, ε, cold item); ``examples_png`` a contact sheet of a few cold
    items, cooperative and adversarial (the leaderboard's thumbnails)."""

    document: dict[str, Any]
    per_item: "pd.DataFrame"
    examples_png: bytes | None = None

    @property
    def rows(self) -> list[dict]:
        """The document's result rows: one per ranker and budget."""
        return self.document["results"]

    def row(self, ranker: str, epsilon: int | None = None) -> dict:
        """The row of ``ranker`` (at budget ``epsilon`` where given); a KeyError if there is none."""
        for r in self.rows:
            if r["ranker"] == ranker and (epsilon is None or r["epsilon"] == epsilon):
                return r
        raise KeyError(f"no result for ranker {ranker!r}" + ("" if epsilon is None else f" at epsilon {epsilon}"))

    def table(self) -> str:
        """The headline table: per ranker, HR@N cooperative → adversarial, availability, shift, p, quality."""
        from aipbench.results.tables import attack_table

        return attack_table(self.document)

    def write(self, out: str | Path) -> Path:
        """Write ``out`` (JSON), the per-item CSV (``.items.csv``) and the example sheet (``.examples.png``)
        beside it — the bytes whose SHA-256 the sealed document lists in ``files`` — all or none: temporary
        files renamed into place, the JSON last."""
        out = Path(out)
        csv = items_csv(self.per_item)
        files = {out.with_suffix(".items.csv"): lambda p: p.write_bytes(csv)}
        if self.examples_png is not None:
            files[out.with_suffix(".examples.png")] = lambda p: p.write_bytes(self.examples_png)
        return write_document(self.document, out, beside=files)


def items_csv(per_item: "pd.DataFrame") -> bytes:
    """The per-item CSV's bytes (what ``files["items.csv"]`` hashes)."""
    return spreadsheet_safe(per_item).to_csv(index=False, float_format="%.6g").encode()


def spreadsheet_safe(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``frame`` with every text cell that a spreadsheet would run as a formula (starting with = + - @, a tab or
    a carriage return) prefixed with a quote, as OWASP advises for CSV files; numbers are left as they are."""
    risky = ("=", "+", "-", "@", "\t", "\r")
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            cells = [f"'{v}" if isinstance(v, str) and v.startswith(risky) else v for v in out[column]]
            out[column] = pd.Series(cells, index=out.index, dtype=object)
    return out


def beside_files(per_item: "pd.DataFrame", examples_png: bytes | None) -> dict[str, str]:
    """The SHA-256 of the files written beside a results document, for its ``files`` key (sealed with it)."""
    import hashlib

    out = {"items.csv": hashlib.sha256(items_csv(per_item)).hexdigest()}
    if examples_png is not None:
        out["examples.png"] = hashlib.sha256(examples_png).hexdigest()
    return out


@dataclasses.dataclass(frozen=True)
class DefenseResults:
    """One defense evaluation: ``document`` follows ``schemas/defense-results.schema.json``."""

    document: dict[str, Any]

    def table(self) -> str:
        """Per ranker and level: clean cost and every reference attack's HR (none / transfer / adaptive)."""
        from aipbench.results.tables import defense_table

        return defense_table(self.document)

    def write(self, out: str | Path) -> Path:
        """Write the document to ``out`` (JSON), validated first, atomically."""
        return write_document(self.document, out)


@dataclasses.dataclass(frozen=True)
class RankerResults:
    """One ranker submission's evaluation: ``document`` follows ``schemas/ranker-results.schema.json``;
    ``per_item``: every attack's per-item rows, with an ``attack`` column."""

    document: dict[str, Any]
    per_item: "pd.DataFrame"

    def table(self) -> str:
        """Its clean quality, then per reference attack its adversarial HR at each budget, and its robustness."""
        from aipbench.results.tables import ranker_table

        return ranker_table(self.document)

    def write(self, out: str | Path) -> Path:
        """Write ``out`` (JSON) and its per-item CSV beside it (``.items.csv``), all or none."""
        out = Path(out)
        csv = items_csv(self.per_item)
        return write_document(self.document, out, beside={out.with_suffix(".items.csv"): lambda p: p.write_bytes(csv)})


def write_document(document: dict, out: str | Path, *, beside: dict | None = None) -> Path:
    """Validate ``document`` and write it to ``out`` with the files ``beside`` it ({path: writer(path)}):
    all to temporary files first, then renamed into place, the JSON last — all or none."""
    out = Path(out)
    validate_results(document, out)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_all({**(beside or {}), out: lambda p: p.write_text(text)})
    return out


def write_all(writes: dict) -> None:
    """Every {path: writer(path)} to a temporary file first, then renamed into place in order (the last
    one last); nothing is left behind if any write fails."""
    tmps = {path: path.with_name(f".{path.name}.tmp{os.getpid()}") for path in writes}
    try:
        for path, write in writes.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            write(tmps[path])
        for path in writes:
            tmps[path].replace(path)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def read_json(path: str | Path, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH):
    """A JSON file read strictly: a regular file (no link) of at most ``max_bytes``, UTF-8, no NaN or
    Infinity, no key given twice, nested at most ``max_depth`` deep; one-line errors naming it and the rule."""
    return parse_json(read_regular(path, max_bytes=max_bytes), path, max_depth=max_depth)


def parse_json(data: bytes, path: str | Path, *, max_depth: int = MAX_JSON_DEPTH):
    """``read_json`` of bytes already read (from ``path``, named in errors)."""

    def constant(name: str):
        raise ValueError(f"{name} is not a JSON number (numbers are finite)")

    def unique(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"key {next(k for k in keys if keys.count(k) > 1)!r} is given twice")
        return dict(pairs)

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=constant, object_pairs_hook=unique)
    except RecursionError:
        raise InputError(f"{path}: nested deeper than JSON may be read here ({max_depth} levels)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({str(err).splitlines()[0][:200]})") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise InputError(f"{path}: nested deeper than JSON may be read here ({max_depth} levels)")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


def check_names(path: str | Path, document: dict) -> None:
    """Every name a document gives that becomes part of a path or a page address — its protocol, its
    submission, each row's ranker and attacks, a ranker submission's attacks — is a strict identifier (``IDENTIFIER``), checked before any
    path is built from it."""
    names = [("protocol name", document["protocol"]["name"]), ("submission name", document["submission"]["name"])]
    rows = list(document.get("results", []))
    for attack, judged in (document.get("attacks") or {}).items() if document.get("kind") == "ranker" else []:
        names.append(("attack", attack))
        rows += judged.get("results", [])
    for row in rows:
        names.append(("ranker", row.get("ranker")))
        names += [("attack", a) for a in row.get("attacks", {})]
    for what, name in names:
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise InputError(f"{path}: {what} {str(name)[:80]!r} is not a plain name (lower-case letters, digits, "
                             "'.', '_', '-'; it becomes a file name and a page address)")


def load_results(path: str | Path) -> dict:
    """Read and validate a results JSON; one-line errors for unreadable or invalid files."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"{path}: no such results file")
    return parse_results(read_regular(path, max_bytes=MAX_JSON_BYTES), path)


def parse_results(data: bytes, path: str | Path) -> dict:
    """``load_results`` of bytes already read (from ``path``, named in errors)."""
    document = parse_json(data, path)
    validate_results(document, path)
    if document["sha256"] != document_sha256(document):
        raise InputError(f"{path}: content does not match its sha256 (edited after `aipbench evaluate` wrote it)")
    if document.get("kind") != "reproduction":
        check_names(path, document)
    return document
