"""A reproduction's output: its cells with the paper's numbers beside them (on paper protocols), as a
table shaped like the paper's, and as a sealed JSON document with a CSV (and figure files) beside it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

__all__ = ["Reproduction", "with_paper"]

PLACE = ("embedding_length", "attack", "item_set", "epsilon", "defense", "mode")
ARROWS = {"up": "↑", "down": "↓", "none": ""}


def with_paper(cells: list[dict], table: str, protocol: str) -> tuple[list[dict], str | None]:
    """The cells with ``paper`` set from the paper's reference table where the protocol reproduces one
    of the paper's data sets (Table 8: beside the cells computed as the paper defines them, mode
    ``paper-transfer``)."""
    from aipbench.results.references import PAPER_DATASETS, REFERENCE_TABLES, load_reference

    dataset = PAPER_DATASETS.get(protocol)
    if dataset is None or table not in REFERENCE_TABLES:
        return [{**c, "paper": None} for c in cells], None
    ref = load_reference(table)
    ref = ref[ref.dataset == dataset]
    keyed = {}
    for rec in ref.to_dict("records"):
        key = tuple(_none(rec.get(k)) for k in ("ranker", "attack", "item_set", "epsilon", "defense", "metric"))
        keyed[key] = _none(rec["value"])
    out = []
    for c in cells:
        key = (c["ranker"], c["attack"], c["item_set"], c["epsilon"], c["defense"], c["metric"])
        paper = keyed.get(key) if c["mode"] in (None, "paper-transfer") else None
        out.append({**c, "paper": paper})
    return out, dataset


def _none(v):
    """pandas' NaN for a missing key or value → None (4.0 and 4 compare and hash equal, so they stay)."""
    return None if isinstance(v, float) and math.isnan(v) else v


def _fmt(metric: str, value) -> str:
    if value is None:
        return "–"
    if metric == "defeating_level":
        return str(int(value))
    if metric.startswith("prediction_shift"):
        return f"{value:.2f}"
    return f"{value:.4f}"


@dataclasses.dataclass
class Reproduction:
    """One experiment's result: ``cells`` (each number, placed), ``claims`` (for ``claims``), figure
    files (name → bytes) and the results documents it was computed from (file → SHA-256)."""

    experiment: str
    protocol: str
    cells: list[dict]
    sources: dict[str, str]
    paper_dataset: str | None = None
    claims: list[dict] = dataclasses.field(default_factory=list)
    figures: dict[str, bytes] = dataclasses.field(default_factory=dict)
    provenance: dict = dataclasses.field(default_factory=dict)
    note: str = ""

    def table(self) -> str:
        """The cells pivoted like the paper's table: rows = what was measured, columns = rankers;
        ** = significant (p < the protocol's level), arrows = direction, (paper …) beside ours."""
        from tabulate import tabulate

        if self.claims:
            verdict = {True: "holds", False: "does not hold", None: "undecided"}
            return tabulate([[verdict[c["holds"]], f"{c['claim']}: \"{c['quote']}\" ({c['where']}; read as: {c['reading']})",
                              c["evidence"]] for c in self.claims],
                            headers=["", "the paper says", "evidence"], tablefmt="github")
        if not self.cells:
            return "(no cells)"
        headers, body = self.pivot()
        return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)

    def pivot(self) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of the paper-shaped table: what was measured, then one column per ranker."""
        import pandas as pd

        frame = pd.DataFrame(self.cells)
        place = [k for k in PLACE if frame[k].notna().any()] + ["metric"]
        from aipbench.rankers.registry import ranker_names

        order = ranker_names()

        rankers = [r for r in order if r in set(frame.ranker)] + sorted(set(frame.ranker) - set(order))
        rows = {}
        for c in self.cells:
            key = tuple("–" if c[k] is None else c[k] for k in place)
            text = _fmt(c["metric"], c["value"]) + ("**" if c.get("significant") else "") + ARROWS.get(c.get("direction") or "none", "")
            if c.get("paper") is not None:
                text += f" (paper {_fmt(c['metric'], c['paper'])})"
            rows.setdefault(key, {})[c["ranker"]] = text
        body = [[*key, *(cols.get(r, "") for r in rankers)] for key, cols in rows.items()]
        if place[0] == "embedding_length":  # Figure 5: by length, as on its x axis
            body.sort(key=lambda row: row[0])
        return [*place, *rankers], [[str(v) for v in row] for row in body]

    def document(self) -> dict:
        from aipbench.results.document import seal

        doc = {"schema_version": 1, "kind": "reproduction", "experiment": self.experiment, **self.provenance,
               "paper_dataset": self.paper_dataset, "note": self.note,
               "sources": [{"file": f, "sha256": h} for f, h in sorted(self.sources.items())],
               "cells": self.cells, "claims": self.claims}
        return seal(json.loads(json.dumps(doc, allow_nan=False)))

    def write(self, folder: str | Path) -> list[Path]:
        """``<experiment>.json`` and ``.csv`` (and figure files) in ``folder``, all or none."""
        import pandas as pd

        from aipbench.results.document import write_document

        folder = Path(folder)
        beside = {folder / f"{self.experiment}.csv":
                  lambda p: pd.DataFrame(self.cells or self.claims).to_csv(p, index=False, float_format="%.10g")}
        for name, data in self.figures.items():
            beside[folder / name] = lambda p, data=data: p.write_bytes(data)
        out = write_document(self.document(), folder / f"{self.experiment}.json", beside=beside)
        return [out, *beside]
