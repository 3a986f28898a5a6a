"""The reproduction on the site: a protocol's committed `aipbench reproduce` documents — each of the paper's
tables shaped as the paper's with the paper's numbers beside ours, its figures, its claims with their evidence
and verdict — and the black-box comparison (the attacks of every knowledge level on one subset of cold items)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.results.references import PAPER_DATASETS

if TYPE_CHECKING:
    from aipbench.leaderboard.entries import Entry

__all__ = ["EXPERIMENTS", "collect_reproductions", "comparison_rows", "reproduction_page", "reproduction_view"]

EXPERIMENTS = ("table3", "table4", "table5", "table6", "table7", "table8", "figure4", "figure5")
CAPTIONS = {"table3": "Table 3: prediction shift", "table4": "Table 4: HR@5 of cooperative and adversarial cold items",
            "table5": "Table 5: availability", "table6": "Table 6: attacks against ε",
            "table7": "Table 7: TAaMR beside c-SEMA and INSA", "table8": "Table 8: the defenses",
            "figure4": "Figure 4: HR@5 against ε", "figure5": "Figure 5: embedding length"}
PAPER_PROTOCOL = "amazon-men-v1"  # whose numbers stand beside a protocol that is not one of the paper's data sets


def reproduction_view(folder: Path, *, protocol: str, paper_columns: bool) -> dict | None:
    """The page's content from ``folder`` (``<results>/<protocol>/reproduce``), or None where there is none.
    Every document is read strictly (schema, seal); figures are shown as images (never inline markup)."""
    from aipbench.reproduce.output import Reproduction, with_paper
    from aipbench.results.document import load_results

    if not folder.is_dir():
        return None
    experiments, claims = [], None
    for name in EXPERIMENTS:
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        doc = load_results(path)
        cells, dataset = doc["cells"], doc["paper_dataset"]
        if dataset is None and paper_columns:  # the paper's Amazon Men numbers beside the embedded world's
            cells, dataset = with_paper(cells, name, PAPER_PROTOCOL)
        headers, rows = Reproduction(experiment=name, protocol=protocol, cells=cells, sources={},
                                     paper_dataset=dataset).pivot() if cells else ([], [])
        figure = folder / f"{name}.svg"
        experiments.append({"name": name, "caption": CAPTIONS[name], "headers": headers, "rows": rows,
                            "paper_dataset": dataset, "note": doc["note"], "sha256": doc["sha256"],
                            "figure": base64.b64encode(figure.read_bytes()).decode() if figure.is_file() else None})
    if (folder / "claims.json").is_file():
        claims = load_results(folder / "claims.json")["claims"]
    return {"experiments": experiments, "claims": claims or []} if experiments or claims else None


def comparison_rows(entries: list["Entry"], n: str) -> tuple[list[str], list[dict]]:
    """(attack names, one row per ranker) of documents made on one subset of cold items: the cooperative HR@n,
    then each attack's adversarial HR@n, lift and p at its own budget."""
    attacks = sorted((e for e in entries if e.document.get("kind", "attack") == "attack"),
                     key=lambda e: ("blackbox", "classifier", "semantic", "expert", "insider").index(
                         e.document["submission"]["knowledge"]))
    rows: dict[str, dict] = {}
    for e in attacks:
        own = e.document["submission"]["threat"]["epsilon"]
        for r in e.document["results"]:
            if r["epsilon"] != own:
                continue
            row = rows.setdefault(r["ranker"], {"ranker": r["ranker"], "coop": r["cooperative"]["hr"][n],
                                                "n_items": r["n_items"], "cells": {}})
            row["cells"][e.name] = {"hr": r["adversarial"]["hr"][n], "lift": r["hr_lift"], "p": r["hr_test"]["p"],
                                    "knowledge": e.document["submission"]["knowledge"]}
    return [e.name for e in attacks], list(rows.values())


def reproduction_page(env, *, protocol: str, view: dict | None, comparison: list["Entry"], n: str,
                      protocol_page: str) -> str:
    """The page ``reproduction-<protocol>.html``."""
    attacks, rows = comparison_rows(comparison, n) if comparison else ([], [])
    return env.get_template("reproduction.html").render(
        protocol=protocol, protocol_page=protocol_page, n=n, view=view or {"experiments": [], "claims": []},
        comparison_attacks=attacks, comparison=rows,
        paper_beside="the paper's own numbers for this data set" if protocol in PAPER_DATASETS else
        f"on an embedded world built to mirror the paper's setting, the paper's Amazon Men numbers ({PAPER_PROTOCOL}),"
        " for the magnitudes only")


def collect_reproductions(results_dir: Path, protocols: set[str], *, project: set[str]) -> dict[str, tuple]:
    """{protocol: (its reproduction view or None, its comparison entries)} from ``results_dir/<protocol>/reproduce``
    and the comparison folder beside the results (``<results_dir>/../blackbox/<protocol>``); ``project``: the
    project's protocols, beside which the paper's numbers are shown."""
    from aipbench.leaderboard.entries import load_entries

    beside = Path(results_dir).parent / "blackbox"
    compared = load_entries(beside) if beside.is_dir() and any(p.is_dir() for p in beside.iterdir()) else []
    out = {}
    for name in sorted(protocols):
        view = reproduction_view(Path(results_dir) / name / "reproduce", protocol=name, paper_columns=name in project)
        comparison = [e for e in compared if e.protocol == name]
        if view is not None or comparison:
            out[name] = (view, comparison)
    return out
