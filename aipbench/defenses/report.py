"""Defense results as text: per ranker and level, clean cost and adversarial HR@N (and detection
rates); then Table 8 for a transform family."""

from __future__ import annotations

__all__ = ["format_defense"]


def format_defense(doc: dict) -> str:
    from tabulate import tabulate

    n, attacks = doc["hit_rank"], doc["attacks"]
    param = doc["submission"]["parameter"] or "level"
    rows = []
    for r in doc["results"]:
        c = r["clean"]
        rows.append([r["ranker"], r["level"], f"{c['undefended']['test_hr']:.4f} -> {c['defended']['test_hr']:.4f}",
                     f"{c['undefended']['cooperative_hr']:.4f} -> {c['defended']['cooperative_hr']:.4f}",
                     *[_cell(r["attacks"][a]) for a in attacks],
                     f"{r['worst_case']['hr']:.4f} ({r['worst_case']['attack']}, {r['worst_case']['mode']})"])
    head = ["ranker", param, f"test HR@{n}", f"coop. HR@{n}", *[f"{a}: none/transfer/adaptive" for a in attacks], "worst case"]
    title = (f"{doc['submission']['name']} on {doc['protocol']['name']} ({doc['protocol']['sha256'][:12]}), "
             f"{len(doc['items'])} cold items: adversarial HR@{n} without the defense / transfer / adaptive")
    if "detector" in doc:
        d = doc["detector"]
        title += (f"\ndetector: flags uploads scoring above {d['threshold']:.3f} ({d['measured_false_alarm_rate']:.2%} of the "
                  f"cooperative cold images); trained on {d['training_items']} catalog items; [x%]: share of images flagged")
    if not doc["table8"]:
        return "\n".join([title, tabulate(rows, headers=head, tablefmt="github")])
    t8 = {}
    for cell in doc["table8"]:
        t8.setdefault((cell["ranker"], cell["attack"]), {})[cell["mode"]] = cell["level"]
    rows8 = [[r, a, v.get("transfer"), v.get("adaptive")] for (r, a), v in t8.items()]
    return "\n".join([title, tabulate(rows, headers=head, tablefmt="github"), "",
                      f"Table 8: the weakest {param} at which adversarial HR@{n} falls to the cooperative level (None: no level does)",
                      tabulate(rows8, headers=["ranker", "attack", "transfer", "adaptive"], tablefmt="github", missingval="–")])


def _cell(attack: dict) -> str:
    def one(side: dict) -> str:
        rate = side.get("detection_rate")
        return f"{side['hr']:.4f}" + (f" [{rate:.0%}]" if rate is not None else "")

    return " / ".join(one(attack[mode]) for mode in ("undefended", "transfer", "adaptive"))
