"""Render the leaderboard: a pure ``render(entries, references) -> {file name: HTML}`` and ``build_site``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aipbench.leaderboard.downloads import ranker_downloads
from aipbench.leaderboard.models import KNOWLEDGE, model_downloads, model_list, protocol_models, ranker_context
from aipbench.leaderboard.reproduction import collect_reproductions, reproduction_page
from aipbench.leaderboard.status import STATUSES
from aipbench.leaderboard.views import CONTROLS, defense_view, project_protocols, protocol_charts, submission_view
from aipbench.results.references import PAPER_DATASETS

if TYPE_CHECKING:
    import pandas as pd

    from aipbench.leaderboard.entries import Entry

__all__ = ["build_site", "render", "tied_ranks"]


def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    from aipbench.results.tables import metric_format, metric_label

    env = Environment(loader=PackageLoader("aipbench", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["metric_label"] = metric_label  # a registered row metric's label and format (scoring.row_metrics)
    env.filters["metric_value"] = lambda v, name: "–" if v is None else format(v, metric_format(name))
    return env


def _protocol_page(name: str) -> str:
    return f"protocol-{name}.html"


def _submission_page(entry: "Entry") -> str:
    return f"submission-{entry.protocol}-{entry.name}.html"


def _main_rows(entry: "Entry") -> list[dict]:
    """The rows at the submission's own budget (a sweep document has one row per ranker and ε)."""
    own = entry.document["submission"]["threat"]["epsilon"]
    rows = [r for r in entry.document["results"] if r["epsilon"] == own]
    return rows or entry.document["results"]


def _threat(sub: dict) -> str:
    t = sub["threat"]
    return f"L∞ ε={t['epsilon']}" if t["norm"] == "linf" else "unbounded"


def _paper_hr(table4: "pd.DataFrame | None", attack: str, ranker: str, n: str) -> str:
    if table4 is None or n != "5":
        return "–"
    cells = table4[(table4.attack == attack) & (table4.ranker == ranker) & (table4.item_set == "adversarial_cold")]
    by = dict(zip(cells.dataset, cells.value))
    return " / ".join(f"{by[d]:.4f}" for d in ("amazon-men", "tradesy") if d in by) or "–"


def _ranker_tables(entries: list["Entry"], table4, n: str, paper_dataset: str | None) -> list[dict]:
    from aipbench.rankers.registry import ranker_names

    tables, order = [], ranker_names()
    paper = set(table4.ranker.dropna()) if paper_dataset and table4 is not None else set()
    names = sorted({r["ranker"] for e in entries for r in e.document["results"]} | paper,
                   key=lambda r: (order.index(r) if r in order else len(order), r))
    for ranker in names:
        rows = []
        for e in entries:
            held = {(h["ranker"], h["epsilon"]): h for h in (e.status["held_out"] or {}).get("results", [])}
            for r in _main_rows(e):
                if r["ranker"] != ranker:
                    continue
                q, ci, h = r["image_quality"], r.get("intervals", {}), held.get((r["ranker"], r["epsilon"]))
                rows.append({
                    "name": e.name, "page": _submission_page(e), "paper": False,
                    "knowledge": e.document["submission"]["knowledge"],
                    "epsilon": "–" if r["epsilon"] is None else r["epsilon"],
                    "coop": r["cooperative"]["hr"][n], "adv": r["adversarial"]["hr"][n], "delta": r["delta"]["hr"][n],
                    "adv_ci": ci.get("adversarial", {}).get("hr", {}).get(n), "delta_ci": ci.get("delta", {}).get("hr", {}).get(n),
                    "lift": r["hr_lift"], "avail": r["delta"]["availability"][n], "shift": r["prediction_shift"]["value"],
                    "p": r["hr_test"]["p"], "significant": r["hr_test"]["significant"],
                    "psnr": q["mean_psnr"], "ssim": q["mean_ssim"],
                    "flags": [f["flag"] for f in r.get("flags", [])], "checked": "checks" in e.document,
                    "noise": r.get("noise_floor"), "replicas": r.get("replicas"),
                    "reference": _paper_hr(table4, e.name, ranker, n), "status": e.status["status"],
                    "anchor": f"{ranker}-{e.name}", "held_out": None if h is None else h["delta_hr"],
                    "held_out_ci": None if h is None else h["delta_hr_interval"], "n_items": r["n_items"],
                    "metrics": r.get("metrics", {}),
                })
        full = max((r["n_items"] for r in rows), default=0)  # an entry run on a subset of the cold items says so
        rows = [{**row, "subset": row["n_items"] < full, "control": row["name"] in CONTROLS} for row in rows]
        # scored on the held-out build first, by that score; then verified and reference entries, claimed, failed,
        # by ΔHR within each (tied ranks)
        rows.sort(key=lambda r: (_group(r), -(r["delta"] if r["held_out"] is None else r["held_out"]), r["name"]))
        offset = 0
        for group in sorted({_group(r) for r in rows} - {CONTROL_GROUP}):
            members = [r for r in rows if _group(r) == group]
            ranks = tied_ranks([r["held_out_ci"] or [r["held_out"]] * 2 if group < 0 else r["delta_ci"] or [r["delta"]] * 2
                                for r in members])
            for row, rank in zip(members, ranks):
                row["rank"], row["tied"] = offset + rank, ranks.count(rank) > 1
            offset += len(members)
        for row in rows:  # the controls are shown below the attacks, never ranked among them
            if row["control"]:
                row["rank"], row["tied"] = None, False
        if paper_dataset and table4 is not None:
            rows += _paper_rows(table4, paper_dataset, ranker)
        tables.append({"name": ranker, "rows": rows, "metrics": sorted({m for r in rows for m in r.get("metrics", {})})})
    return tables


_TRUST = {"verified": 0, "reference": 0, "own": 0, "claimed": 1, "failed": 2}  # rank groups (aipbench.leaderboard.status)


CONTROL_GROUP = 9


def _group(row: dict) -> int:
    """A row's rank group: scored on the held-out build (-1), else by how far its entry is trusted; the controls
    apart, after every attack."""
    if row["control"]:
        return CONTROL_GROUP
    return -1 if row["held_out"] is not None else _TRUST[row["status"]]
def tied_ranks(intervals: list[list[float]]) -> list[int]:
    """Ranks of entries sorted best first, each entry's ΔHR interval given, such that every two entries sharing a
    rank have overlapping intervals: walking down the order, an entry joins the current tie if its interval
    overlaps the interval of every entry in it, else starts a new one at its own position (competition
    ranking: 1, 1, 3). Overlap is not transitive, so ties never chain across a gap."""
    ranks, group = [], []
    for k, (lo, hi) in enumerate(intervals):
        if group and all(lo <= g_hi and g_lo <= hi for g_lo, g_hi in group):
            group.append((lo, hi))
            ranks.append(ranks[-1])
        else:
            group = [(lo, hi)]
            ranks.append(k + 1)
    return ranks


def _paper_rows(table4: "pd.DataFrame", dataset: str, ranker: str) -> list[dict]:
    cells = table4[(table4.dataset == dataset) & (table4.ranker == ranker)]
    coop = cells[cells.item_set == "cooperative_cold"].value
    ordinary = cells[(cells.item_set == "ordinary_test") & cells.attack.isna()].value
    if coop.empty:
        return []
    rows = []
    for attack in ("insa", "expa", "c-sema"):
        adv = cells[(cells.attack == attack) & (cells.item_set == "adversarial_cold")]
        avail = cells[(cells.attack == attack) & (cells.item_set == "ordinary_test")]
        if adv.empty:
            continue
        rows.append({
            "name": f"{attack} (reported in the paper)", "page": None, "paper": True, "rank": None, "control": False,
            "knowledge": {"insa": "insider", "expa": "expert"}.get(attack, "semantic"), "epsilon": 32 if attack != "c-sema" else "–",
            "coop": float(coop.iloc[0]), "adv": float(adv.value.iloc[0]), "delta": float(adv.value.iloc[0] - coop.iloc[0]),
            "lift": float(adv.value.iloc[0] / coop.iloc[0]) if coop.iloc[0] > 0 else None,
            "avail": float(avail.value.iloc[0] - ordinary.iloc[0]) if not avail.empty and not ordinary.empty else None,
            "shift": None, "p": None, "significant": bool(adv.significant.iloc[0]), "psnr": None, "ssim": None,
            "reference": "", "metrics": {}, "adv_ci": None, "delta_ci": None, "flags": [], "checked": False, "noise": None,
            "replicas": None, "tied": False, "status": "paper", "anchor": f"{ranker}-paper-{attack}",
            "held_out": None, "held_out_ci": None, "n_items": None, "subset": False,
        })
    return rows


def _protocol_file_page(name: str, env) -> str | None:
    """The protocol file as this checkout holds it: its text, the SHA-256 of its bytes and its canonical hash
    (what results record). None for a protocol known only from the paper's numbers."""
    import hashlib

    from aipbench.protocol import find_protocol, load_protocol

    try:
        path = find_protocol(name)
        proto = load_protocol(name)
    except Exception:  # noqa: BLE001 — no file for it here
        return None
    data = Path(path).read_bytes()
    return env.get_template("protocol_file.html").render(name=name, text=data.decode("utf-8", "replace"),
                                                         file_sha256=hashlib.sha256(data).hexdigest(), sha256=proto.sha256)


def render(entries: list["Entry"], references: dict[str, "pd.DataFrame"] | None = None, *,
           reproductions: dict[str, tuple] | None = None) -> dict[str, str]:
    """The site as {file name: HTML}: an index, a page per protocol and per submission, and a reproduction page
    per protocol in ``reproductions`` (``reproduction.collect_reproductions``). Pure: the same entries and
    references give the same bytes."""
    from aipbench.protocol import DEFAULT_PROTOCOL, load_protocol

    env = _env()
    table4 = (references or {}).get("table4")
    everything = sorted(entries, key=lambda e: (e.protocol, e.name))
    defenses = [e for e in everything if e.document.get("kind") == "defense"]
    models = [e for e in everything if e.document.get("kind") == "ranker"]
    entries = [e for e in everything if e.document.get("kind") not in ("defense", "ranker")]
    n = str(entries[0].document["hit_ranks"][0]) if entries else "5"
    names = sorted({e.protocol for e in entries} | (set(PAPER_DATASETS) if table4 is not None else set()))
    pages: dict[str, str] = {}
    protocols = []
    for name in names:
        mine = [e for e in entries if e.protocol == name]
        sha = mine[0].document["protocol"]["sha256"] if mine else load_protocol(name).sha256
        alpha = mine[0].document["significance_level"] if mine else 0.01
        paper = PAPER_DATASETS.get(name)
        built_from = sorted({kv for e in everything if e.protocol == name for kv in e.inputs.items()})
        # the paper's numbers sit beside the project's protocols only (its real data sets and the embedded worlds
        # built to mirror them), never beside a protocol of one's own
        paper_columns = name in project_protocols()
        tables = _ranker_tables(mine, table4 if paper_columns else None, n, paper)
        budget = max((r["epsilon"] for e in mine for r in e.document["results"] if r["epsilon"] is not None), default=32)
        model_table = protocol_models(mine + [m for m in models if m.protocol == name], n=n, protocol=name,
                                      page=_submission_page)
        charts = protocol_charts(mine, n, epsilon=budget, rankers=[t["name"] for t in tables], models=model_table)
        defense_rows = _defense_rows([d for d in defenses if d.protocol == name])
        for table in tables:  # each table downloadable as CSV and JSON
            stem = f"protocol-{name}-{table['name']}"
            pages[f"{stem}.csv"], pages[f"{stem}.json"] = ranker_downloads(table["rows"])
            table["csv"], table["json"] = f"{stem}.csv", f"{stem}.json"
        if model_table:
            stem = f"protocol-{name}-models"
            pages[f"{stem}.csv"], pages[f"{stem}.json"] = model_downloads(model_table)
        if defense_rows:
            import json

            pages[f"protocol-{name}-defenses.json"] = json.dumps(defense_rows, indent=1, sort_keys=True) + "\n"
        if name in (reproductions or {}):
            view, comparison = reproductions[name]
            pages[f"reproduction-{name}.html"] = reproduction_page(env, protocol=name, view=view, comparison=comparison,
                                                                   n=n, protocol_page=_protocol_page(name))
        file_page = _protocol_file_page(name, env)
        if file_page is not None:
            pages[f"protocol-file-{name}.html"] = file_page
        pages[_protocol_page(name)] = env.get_template("protocol.html").render(
            name=name, sha256=sha, n=n, alpha=alpha, paper_dataset=paper, built_from=built_from, rankers=tables,
            paper_columns=paper_columns, charts=charts,
            reproduction=f"reproduction-{name}.html" if name in (reproductions or {}) else None,
            models=model_table, knowledge=KNOWLEDGE, models_csv=f"protocol-{name}-models.csv",
            models_json=f"protocol-{name}-models.json", defenses=defense_rows, defenses_json=f"protocol-{name}-defenses.json" if defense_rows else None,
            file_page=f"protocol-file-{name}.html" if file_page is not None else None, statuses=STATUSES)
        protocols.append({"name": name, "sha256": sha, "page": _protocol_page(name),
                          "reproduction": f"reproduction-{name}.html" if name in (reproductions or {}) else None,
                          "entries": mine + [e for e in defenses + models if e.protocol == name]})
    submissions = []
    for e in entries:
        pages[_submission_page(e)] = env.get_template("submission.html").render(
            **submission_view(e, n, protocol_page=_protocol_page(e.protocol), main_rows=_main_rows(e), threat=_threat))
        best = max(_main_rows(e), key=lambda r: r["delta"]["hr"][n])
        submissions.append({"name": e.name, "page": _submission_page(e), "protocol": e.protocol,
                            "knowledge": e.document["submission"]["knowledge"], "threat": _threat(e.document["submission"]),
                            "best_delta": best["delta"]["hr"][n], "best_ranker": best["ranker"],
                            "authors": ", ".join(e.document["submission"]["authors"]), "status": e.status["status"],
                            "control": e.name in CONTROLS})
    # the default protocol first; within a protocol the attacks, then the controls
    protocols.sort(key=lambda p: (p["name"] != DEFAULT_PROTOCOL, p["name"]))
    submissions.sort(key=lambda s: (s["protocol"] != DEFAULT_PROTOCOL, s["protocol"], s["control"], s["name"]))
    for m in models:
        pages[_submission_page(m)] = env.get_template("ranker.html").render(**ranker_context(m, protocol_page=_protocol_page(m.protocol)))
    for d in defenses:
        doc = d.document
        pages[_submission_page(d)] = env.get_template("defense.html").render(
            s=doc["submission"], doc=doc, n=doc["hit_rank"], protocol=d.protocol, protocol_page=_protocol_page(d.protocol),
            **defense_view(d))
    defense_list = []
    for d in defenses:
        rows = d.document["results"]
        levels = list(dict.fromkeys(r["level"] for r in rows))
        strongest = [r for r in rows if r["level"] == levels[-1]]  # families list their levels weakest first
        defense_list.append({"name": d.name, "page": _submission_page(d), "protocol": d.protocol,
                             "type": d.document["submission"]["type"], "levels": ", ".join(str(v) for v in levels if v is not None) or "–",
                             "strongest": [(r["ranker"], r["worst_case"]["hr"]) for r in strongest]})
    pages["index.html"] = env.get_template("index.html").render(protocols=protocols, submissions=submissions,
                                                                defense_list=defense_list, n=n,
                                                                model_list=model_list(models, page=_submission_page),
                                                                default_protocol=DEFAULT_PROTOCOL)
    return pages


def _defense_rows(defenses: list["Entry"]) -> list[dict]:
    rows = []
    for d in defenses:
        for r in d.document["results"]:
            rows.append({"name": d.name, "page": _submission_page(d), "ranker": r["ranker"],
                         "level": "–" if r["level"] is None else r["level"],
                         "test_hr_before": r["clean"]["undefended"]["test_hr"], "test_hr": r["clean"]["defended"]["test_hr"],
                         "coop": r["clean"]["defended"]["cooperative_hr"], "worst": r["worst_case"]["hr"],
                         "undefended": max(side["undefended"]["hr"] for side in r["attacks"].values()),
                         "by": f"{r['worst_case']['attack']} ({r['worst_case']['mode']})",
                         "flags": [f["flag"] for f in r.get("flags", [])], "checked": "checks" in d.document})
    return rows


def build_site(results_dir: str | Path, out: str | Path) -> list[Path]:
    """Validate every entry under ``results_dir`` and write the site into ``out`` (nothing on failure)."""
    from aipbench.leaderboard.entries import load_entries
    from aipbench.results.references import load_reference

    entries = load_entries(results_dir)
    reproductions = collect_reproductions(Path(results_dir), {e.protocol for e in entries}, project=project_protocols())
    pages = render(entries, {"table4": load_reference("table4")}, reproductions=reproductions)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in sorted(pages.items()):
        (out / name).write_text(html, encoding="utf-8")
        written.append(out / name)
    return written
