"""What the leaderboard's pages show beside their tables, as charts: a submission's budget curves (with intervals)
and per-item distributions; a protocol's attacks against ε per ranker, with the cooperative baseline and the
controls, and its attack × ranker lift heatmap; a defense's worst case per level beside the undefended system."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from aipbench.leaderboard.charts import (budget_chart, defense_chart, distribution_chart, lift_heatmap, scatter_chart,
                                         spread_chart)
from aipbench.leaderboard.status import STATUSES
from aipbench.results.tables import metric_format, metric_label

if TYPE_CHECKING:
    from aipbench.leaderboard.entries import Entry

__all__ = ["CONTROLS", "defense_view", "project_protocols", "protocol_charts", "submission_view"]

CONTROLS = ("noise", "hook-copy")  # the lower and the upper control: shown apart, never ranked as attacks


def project_protocols() -> set[str]:
    """The names of the project's own protocols (the checkout's or installation's ``protocols/``)."""
    from aipbench.errors import InputError
    from aipbench.paths import protocols_dir

    try:
        return {p.stem for p in protocols_dir().glob("*.toml")}
    except InputError:
        return set()


def _interval(row: dict, n: str) -> list[float] | None:
    return row.get("intervals", {}).get("adversarial", {}).get("hr", {}).get(n)


def submission_view(entry: "Entry", n: str, *, protocol_page: str, main_rows: list[dict],
                    threat: Callable[[dict], str]) -> dict:
    """An attack's page: its manifest, budget curves per ranker (intervals as bands), per-item distributions."""
    doc = entry.document
    sub = doc["submission"]
    link = sub["link"] if sub["link"].startswith(("https://", "http://")) else None  # never javascript: and co
    sweep: dict[str, list] = {}
    for r in doc["results"]:
        if r["epsilon"] is not None:
            sweep.setdefault(r["ranker"], []).append((r["epsilon"], r["adversarial"]["hr"][n], _interval(r, n)))
    sweep_svg = (budget_chart(sweep, title=f"{sub['name']}: adversarial HR@{n} against the budget", y_label=f"HR@{n}")
                 if any(len(v) > 1 for v in sweep.values()) else None)
    panels = {}
    if entry.items is not None:
        own = sub["threat"]["epsilon"]
        for ranker in [r["ranker"] for r in main_rows]:
            rows = entry.items[(entry.items.ranker == ranker)
                               & ((entry.items.epsilon == own) if own is not None else entry.items.epsilon.isna())]
            if len(rows):
                panels[ranker] = {"cooperative": rows[f"cooperative_hr@{n}"].to_numpy(np.float64),
                                  "adversarial": rows[f"adversarial_hr@{n}"].to_numpy(np.float64)}
    histograms = [distribution_chart(panels, title=f"per-item HR@{n}",
                                     x_label=f"HR@{n} of a cold item")] if panels else []
    examples = doc.get("examples", {})
    return {
        "s": sub, "doc": doc, "protocol": entry.protocol, "protocol_page": protocol_page,
        "threat": threat(sub), "safe_link": link, "k": n, "n": n,
        "sheet": base64.b64encode(entry.examples_png).decode() if entry.examples_png else None,
        "sheet_rows": examples.get("rows", []), "sheet_items": examples.get("items", []),
        "sweep_svg": sweep_svg, "histograms": histograms, "status": entry.status, "statuses": STATUSES,
    }


def protocol_charts(entries: list["Entry"], n: str, *, epsilon: int, rankers: list[str], models: list[dict]) -> dict:
    """Per ranker, every attack entry's adversarial HR@n against ε with its band (controls dotted; unbounded
    attacks and the cooperative images as horizontal lines); the lift of each attack on each ranker at the
    protocol's budget (unbounded attacks at their own); attack strength against image quality; the spread over
    the rankers' training seeds; the model table as clean quality against worst case."""
    curves, lifts, quality, spreads, metrics = [], {}, {}, [], {}
    for ranker in rankers:
        series, baselines, coop = {}, {}, (0, None)
        for e in entries:
            rows = [r for r in e.document["results"] if r["ranker"] == ranker]
            for r in rows:
                if r["n_items"] > coop[0]:  # the cooperative baseline of the largest set of cold items
                    coop = (r["n_items"], r["cooperative"]["hr"][n])
                if r["epsilon"] in (None, epsilon):
                    lifts[e.name, ranker] = r["hr_lift"]
                    for name, value in r.get("metrics", {}).items():  # registered row metrics
                        metrics.setdefault(name, {})[e.name, ranker] = value
                    if r["image_quality"]["mean_psnr"] is not None and r["image_quality"]["mean_psnr"] < 100:
                        quality.setdefault(e.name, []).append((r["image_quality"]["mean_psnr"],
                                                              r["adversarial"]["hr"][n], ranker))
            bounded = [(r["epsilon"], r["adversarial"]["hr"][n], _interval(r, n)) for r in rows if r["epsilon"] is not None]
            if bounded:
                series[e.name] = bounded
            elif rows:
                baselines[f"{e.name} (unbounded)"] = rows[0]["adversarial"]["hr"][n]
        if coop[1] is not None:
            baselines["cooperative"] = coop[1]
        if series:
            curves.append(budget_chart(series, title=f"{ranker}: adversarial HR@{n} against ε", y_label=f"HR@{n}",
                                       baselines=baselines, controls=CONTROLS))
    for e in entries:  # the spread over the rankers' training seeds, where an entry measured it
        spread = {r["ranker"]: r["replicas"]["adversarial_hr"] for r in e.document["results"]
                  if r["epsilon"] in (None, epsilon) and (r.get("replicas") or {}).get("count", 0) > 1}
        if spread:
            spreads.append(spread_chart(spread, title=f"{e.name}: adversarial HR@{n} over the rankers' training seeds",
                                        y_label=f"HR@{n}"))
    attacks = sorted({a for a, _ in lifts}, key=lambda a: (a in CONTROLS, a))
    heatmap = lift_heatmap(lifts, attacks=attacks, rankers=rankers, title=f"lift of HR@{n} (adversarial / "
                           f"cooperative) at ε = {epsilon}") if lifts else None
    judged = [m for m in models if m.get("worst")]
    metric_maps = [lift_heatmap(values, attacks=attacks, rankers=rankers, title=f"{metric_label(name)} at ε = {epsilon}",
                                fmt=metric_format(name), log=False) for name, values in sorted(metrics.items())]
    return {"curves": curves, "heatmap": heatmap, "spreads": spreads, "metrics": metric_maps,
            "quality": scatter_chart(quality, title=f"attack strength against image quality at ε = {epsilon}",
                                     x_label="mean PSNR of the edited images (dB)", y_label=f"adversarial HR@{n}")
            if quality else None,
            "models": scatter_chart({"the protocol's rankers": [(m["test_hr"], m["worst"]["hr"], m["name"]) for m in judged
                                                                if not m["page"]],
                                     "ranker submissions": [(m["test_hr"], m["worst"]["hr"], m["name"]) for m in judged
                                                            if m["page"]]},
                                    title=f"models: clean quality against robustness",
                                    x_label=f"clean test HR@{n} (higher: better)",
                                    y_label=f"worst-case adv. HR@{n} (lower: robust)", label_points=True)
            if judged else None}


def defense_view(entry: "Entry") -> dict:
    """A defense's page: per ranker the worst-case adversarial HR at each level beside the undefended system's
    worst case (which the table shows too), and the clean test HR it keeps."""
    doc = entry.document
    n = str(doc["hit_rank"])
    levels = list(dict.fromkeys(r["level"] for r in doc["results"]))
    worst, undefended, clean = {}, {}, {}
    for r in doc["results"]:
        worst.setdefault(r["ranker"], []).append(r["worst_case"]["hr"])
        clean.setdefault(r["ranker"], []).append(r["clean"]["defended"]["test_hr"])
        undefended[r["ranker"]] = max(side["undefended"]["hr"] for side in r["attacks"].values())
    parameter = doc["submission"].get("parameter") or "level"
    chart = defense_chart(["–" if v is None else v for v in levels], worst, undefended=undefended, clean=clean,
                          parameter=parameter, y_label=f"worst-case adversarial HR@{n}",
                          title=f"{doc['submission']['name']}: worst case per {parameter}, beside the undefended")
    return {"chart": chart, "undefended_worst": undefended}
