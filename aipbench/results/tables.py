"""Results documents as terminal tables: an attack's headline table, a defense's per-level table and its
Table 8."""

from __future__ import annotations

__all__ = ["attack_table", "defense_table", "metric_format", "metric_label", "ranker_table"]


def attack_table(doc: dict) -> str:
    """Per ranker (and ε): HR@N cooperative → adversarial, lift, p, availability, shift, image quality."""
    from tabulate import tabulate

    n = doc["hit_ranks"][0]
    k = str(n)
    lines = []
    for r in doc["results"]:
        ci = r.get("intervals", {})
        line = {
            "ranker": r["ranker"],
            "eps": "-" if r["epsilon"] is None else r["epsilon"],
            f"coop HR@{n}": _with(r["cooperative"]["hr"][k], ci.get("cooperative", {}).get("hr", {}).get(k)),
            f"adv HR@{n}": _with(r["adversarial"]["hr"][k], ci.get("adversarial", {}).get("hr", {}).get(k)),
            "lift": "-" if r["hr_lift"] is None else f"{r['hr_lift']:.1f}x",
            "p": r["hr_test"]["p"],
            f"avail HR@{n}": f"{r['cooperative']['availability'][k]:.4f} -> {r['adversarial']['availability'][k]:.4f}",
            "shift": r["prediction_shift"]["value"],
            "PSNR": r["image_quality"]["mean_psnr"],
            "SSIM": r["image_quality"]["mean_ssim"],
            "Linf": r["image_quality"]["max_linf"],
        }
        for name, value in r.get("metrics", {}).items():  # registered metrics (aipbench.scoring.row_metrics)
            line[metric_label(name)] = "-" if value is None else format(value, metric_format(name))
        if "noise_floor" in r:
            line[f"noise HR@{n}"] = f"{r['noise_floor']['hr']:.4f}" + ("*" if r["noise_floor"]["significant"] else "")
        if "checks" in doc:
            line["flags"] = ", ".join(f["flag"] for f in r.get("flags", [])) or "-"
        lines.append(line)
    table = tabulate(lines, headers="keys", floatfmt=".4g", tablefmt="github")
    raised = [f"  {_where(r)}: {f['flag']}: {f['message']}" for r in doc["results"] for f in r.get("flags", [])]
    intervals = doc.get("intervals")
    notes = [f"[low, high]: 95% intervals ({intervals['method']}, {intervals['resamples']} resamples)"] if intervals else []
    return "\n".join([table, *notes, *(["reliability flags:", *raised] if raised else [])])


def _where(row: dict) -> str:
    return row["ranker"] + ("" if row["epsilon"] is None else f" eps={row['epsilon']}")


def _with(value: float, interval: list[float] | None) -> str:
    """A mean with its 95 % interval."""
    return f"{value:.4g}" if interval is None else f"{value:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]"


def defense_table(doc: dict) -> str:
    """Per ranker and level: clean cost and adversarial HR@N (and detection rates); then Table 8 for a
    transform family."""
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
    raised = [f"  {r['ranker']} {param}={r['level']}: {f['flag']}: {f['message']}" for r in doc["results"]
              for f in r.get("flags", [])]
    flags = ["reliability flags:", *raised] if raised else []
    if not doc["table8"]:
        return "\n".join([title, tabulate(rows, headers=head, tablefmt="github"), *flags])
    t8 = {}
    for cell in doc["table8"]:
        t8.setdefault((cell["ranker"], cell["attack"]), {})[cell["mode"]] = cell["level"]
    rows8 = [[r, a, v.get("transfer"), v.get("adaptive")] for (r, a), v in t8.items()]
    return "\n".join([title, tabulate(rows, headers=head, tablefmt="github"), "",
                      f"Table 8: the weakest {param} at which adversarial HR@{n} falls to the cooperative level (None: no level does)",
                      tabulate(rows8, headers=["ranker", "attack", "transfer", "adaptive"], tablefmt="github", missingval="–"),
                      *flags])


def _cell(attack: dict) -> str:
    def one(side: dict) -> str:
        rate = side.get("detection_rate")
        return f"{side['hr']:.4f}" + (f" [{rate:.0%}]" if rate is not None else "")

    return " / ".join(one(attack[mode]) for mode in ("undefended", "transfer", "adaptive"))


def ranker_table(doc: dict) -> str:
    """A ranker submission's clean quality, per reference attack its HR@N cooperative → adversarial at each
    budget (with lift and the t-test), and its robustness: the worst case per knowledge level."""
    from tabulate import tabulate

    n, clean, r = str(doc["hit_ranks"][0]), doc["clean"], doc["robustness"]
    rows = []
    for name, attack in doc["attacks"].items():
        for row in attack["results"]:
            rows.append([name + (" (control)" if attack["control"] else ""), attack["knowledge"],
                         "-" if row["epsilon"] is None else row["epsilon"], attack["items"],
                         f"{row['cooperative']['hr'][n]:.4g} -> {row['adversarial']['hr'][n]:.4g}",
                         "-" if row["hr_lift"] is None else f"{row['hr_lift']:.1f}x", f"{row['hr_test']['p']:.3g}",
                         ", ".join(f["flag"] for f in row.get("flags", [])) or "-"])
    title = (f"{doc['submission']['name']} (ranker) on {doc['protocol']['name']} ({doc['protocol']['sha256'][:12]}): "
             f"clean test AUC {clean['test_auc']:.4f}, test HR@{n} {clean['test_hr'][n]:.4f}")
    levels = [[k, v["attack"], "-" if v["epsilon"] is None else v["epsilon"], f"{v['hr']:.4g}"]
              for k, v in r["by_knowledge"].items()]
    worst = r["worst_case"]
    summary = (f"robustness: worst-case adversarial HR@{n} {worst['hr']:.4g} ({worst['attack']}, "
               f"{doc['attacks'][worst['attack']]['knowledge']})" if worst else "robustness: no attack run")
    return "\n".join([title, tabulate(rows, headers=["attack", "knowledge", "eps", "items", f"HR@{n}", "lift", "p",
                                                      "flags"], tablefmt="github"), "",
                      tabulate(levels, headers=["knowledge", "worst attack", "eps", f"adv HR@{n}"], tablefmt="github"),
                      summary])


def metric_label(name: str) -> str:
    """A registered row metric's column label (its name where it is not registered in this process)."""
    from aipbench.scoring.row_metrics import ROW_METRICS

    return ROW_METRICS.get(name).label if name in ROW_METRICS else name


def metric_format(name: str) -> str:
    """A registered row metric's number format ('.4g' where it is not registered in this process)."""
    from aipbench.scoring.row_metrics import ROW_METRICS

    return ROW_METRICS.get(name).fmt if name in ROW_METRICS else ".4g"
