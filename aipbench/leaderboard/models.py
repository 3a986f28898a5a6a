"""The model table: every ranker of a protocol — the paper's four, from the committed attack entries, and each
ranker submission, from its robustness document — by clean quality beside its worst-case adversarial HR@N
per knowledge level (the reference attacks at the protocol's budget, or their own unbounded threat)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aipbench.leaderboard.entries import Entry

__all__ = ["KNOWLEDGE", "model_downloads", "model_list", "model_rows", "protocol_models", "ranker_context"]

KNOWLEDGE = ("insider", "expert", "semantic", "classifier", "blackbox")
_CONTROLS = ("noise", "hook-copy")  # controls, never a model's worst case
_ATTACK_KNOWLEDGE = {"insa": "insider", "expa": "expert", "c-sema": "semantic", "taamr-fgsm": "classifier",
                     "taamr-pgd20": "classifier", "nes": "blackbox"}


def _paper_models(entries: list["Entry"], n: str, epsilon: int) -> dict[str, dict]:
    """The protocol's own rankers as its trusted attack entries (the reference ones, one's own, or verified) judge them."""
    models: dict[str, dict] = {}
    for entry in entries:
        doc = entry.document
        name = doc["submission"]["name"]
        if doc.get("kind", "attack") != "attack" or name not in _ATTACK_KNOWLEDGE or \
                entry.status["status"] not in ("reference", "own", "verified"):
            continue
        for row in doc["results"]:
            if row["epsilon"] not in (None, epsilon):
                continue
            model = models.setdefault(row["ranker"], {"name": row["ranker"], "page": None, "paper": True,
                                                      "status": entry.status["status"],  # who judged it
                                                      "test_auc": row["clean"]["test_auc"],
                                                      "test_hr": row["clean"]["test_hr"][n], "levels": {}})
            _keep_worst(model["levels"], _ATTACK_KNOWLEDGE[name], name, row["adversarial"]["hr"][n], row["n_items"])
    return models


def _keep_worst(levels: dict, knowledge: str, attack: str, hr: float, items: int) -> None:
    if knowledge not in levels or hr > levels[knowledge]["hr"]:
        levels[knowledge] = {"attack": attack, "hr": hr, "n_items": items}


def _items(doc: dict, attack: str) -> int | None:
    """How many cold items a ranker document's ``attack`` ran on (NES: the protocol's subset)."""
    rows = doc.get("attacks", {}).get(attack, {}).get("results", [])
    return rows[0]["n_items"] if rows else None


def model_rows(entries: list["Entry"], *, n: str, epsilon: int, page) -> list[dict]:
    """The rows of one protocol's model table, most robust (lowest worst case) first; ``page(entry)``: an entry's
    page."""
    models = _paper_models(entries, n, epsilon)
    for entry in entries:
        doc = entry.document
        if doc.get("kind") != "ranker":
            continue
        levels = {k: {"attack": v["attack"], "hr": v["hr"], "n_items": _items(doc, v["attack"])}
                  for k, v in doc["robustness"]["by_knowledge"].items()}
        models[entry.name] = {"name": entry.name, "page": page(entry), "paper": False, "status": entry.status["status"],
                              "test_auc": doc["clean"]["test_auc"], "test_hr": doc["clean"]["test_hr"][n],
                              "levels": levels}
    rows, full = [], max((c["n_items"] or 0 for m in models.values() for c in m["levels"].values()), default=0)
    for model in models.values():
        for case in model["levels"].values():  # an attack run on a subset of the cold items says so
            case["subset"] = case["n_items"] is not None and case["n_items"] < full
        worst = max(model["levels"].values(), key=lambda c: c["hr"]) if model["levels"] else None
        rows.append({**model, "status": model.get("status", "reference"), "worst": worst,
                     "by_level": [model["levels"].get(k) for k in KNOWLEDGE]})
    rows.sort(key=lambda r: (r["worst"] is None, r["worst"]["hr"] if r["worst"] else 0, r["name"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row["worst"] else None
    return rows


def protocol_models(entries: list["Entry"], *, n: str, protocol: str, page) -> list[dict]:
    """The protocol's model table at its own budget; empty without models (or a protocol file here)."""
    from aipbench.protocol import load_protocol

    try:
        epsilon = load_protocol(protocol).threat.epsilon
    except Exception:  # noqa: BLE001 — a protocol known only from the paper's numbers has no entries either
        return []
    return model_rows(entries, n=n, epsilon=epsilon, page=page)


def model_list(models: list["Entry"], *, page) -> list[dict]:
    """The index's list of ranker submissions: clean HR@N and worst case, each on its protocol."""
    out = []
    for m in models:
        robust, doc = m.document["robustness"], m.document
        out.append({"name": m.name, "page": page(m), "protocol": m.protocol, "status": m.status["status"],
                    "test_hr": doc["clean"]["test_hr"][str(robust["hit_rank"])], "worst": robust["worst_case"],
                    "n": robust["hit_rank"], "authors": ", ".join(doc["submission"]["authors"])})
    return out


def model_downloads(rows: list[dict]) -> tuple[str, str]:
    """The model table as CSV and JSON text: per model its clean quality, worst case and each level's worst."""
    import io
    import json

    import pandas as pd

    from aipbench.results.document import spreadsheet_safe

    records = []
    for r in rows:
        record = {"rank": r["rank"], "name": r["name"], "paper_ranker": r["paper"], "status": r["status"],
                  "test_auc": r["test_auc"], "test_hr": r["test_hr"],
                  "worst_case_hr": r["worst"]["hr"] if r["worst"] else None,
                  "worst_case_attack": r["worst"]["attack"] if r["worst"] else None}
        for level, case in zip(KNOWLEDGE, r["by_level"]):
            record[f"{level}_hr"], record[f"{level}_attack"], record[f"{level}_items"] = \
                (case["hr"], case["attack"], case["n_items"]) if case else (None, None, None)
        records.append(record)
    buf = io.StringIO()
    spreadsheet_safe(pd.DataFrame(records)).to_csv(buf, index=False, float_format="%.10g", lineterminator="\n")
    return buf.getvalue(), json.dumps(records, indent=1, sort_keys=True, allow_nan=False) + "\n"


def ranker_context(entry: "Entry", *, protocol_page: str) -> dict:
    """A ranker submission's page: its manifest, clean quality, robustness per level and every attack's rows."""
    from aipbench.leaderboard.charts import budget_chart
    from aipbench.leaderboard.status import STATUSES

    doc = entry.document
    sub = doc["submission"]
    n = str(doc["robustness"]["hit_rank"])
    link = sub["link"] if sub["link"].startswith(("https://", "http://")) else None  # never javascript: and co
    sweep = {name: [(r["epsilon"], r["adversarial"]["hr"][n],
                     r.get("intervals", {}).get("adversarial", {}).get("hr", {}).get(n))
                    for r in a["results"] if r["epsilon"] is not None] for name, a in doc["attacks"].items()}
    sweep = {name: points for name, points in sweep.items() if len(points) > 1}
    sweep_svg = budget_chart(sweep, title=f"{sub['name']}: adversarial HR@{n} against the budget", y_label=f"HR@{n}",
                             controls=("noise", "hook-copy")) if sweep else None
    levels = [(level, doc["robustness"]["by_knowledge"].get(level)) for level in KNOWLEDGE]
    return {"s": sub, "doc": doc, "n": n, "protocol": entry.protocol, "protocol_page": protocol_page,
            "safe_link": link, "levels": levels, "sweep_svg": sweep_svg, "status": entry.status, "statuses": STATUSES}
