"""A results document's rows re-derived from its per-item CSV: every number a row reports that its items
determine — HR@N and availability on both sides and their deltas, the mean scores and the prediction shift,
image quality, the lift, the t-test's decision, the bootstrap intervals — must be what the items give, each
item once; a row the CSV contradicts is refused (``leaderboard add``, ``check``, ``build`` and ``verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aipbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ABS_TOLERANCE", "REL_TOLERANCE", "attack_parts", "check_rows", "row_items", "row_problems"]

# The CSV keeps 6 significant digits (``items_csv``): a mean of rounded values lies within half a unit of the
# last digit of the largest value from the document's own mean, far inside these.
ABS_TOLERANCE, REL_TOLERANCE = 1e-5, 1e-5


def attack_parts(doc: dict, items: "pd.DataFrame | None" = None) -> list[tuple[str | None, dict, "pd.DataFrame | None"]]:
    """A document's rows as the attack documents they came from, each with its share of the per-item CSV: an
    attack's document is one (named None); a ranker submission's is one per reference attack (its rows, threat
    and interval spec; the CSV's rows whose ``attack`` column names it)."""
    if doc.get("kind") != "ranker":
        return [(None, doc, items)]
    parts = []
    for name, attack in doc["attacks"].items():
        part = {**doc, "kind": "attack", "results": attack["results"], "intervals": attack["intervals"],
                "submission": {**doc["submission"], "threat": attack["threat"]}}
        mine = None if items is None else items[items["attack"].astype(str) == name].drop(columns="attack")
        parts.append((name, part, mine))
    return parts


def row_items(items: "pd.DataFrame", row: dict) -> "pd.DataFrame":
    """The CSV's rows of one results row (its ranker and budget), in item order."""
    eps = row["epsilon"]
    mine = items[(items["ranker"].astype(str) == row["ranker"])
                 & ((items["epsilon"] == eps) if eps is not None else items["epsilon"].isna())]
    return mine.sort_values("item", kind="stable")


def _close(claimed, derived) -> bool:
    if claimed is None or derived is None:
        return claimed is None and derived is None
    return abs(float(claimed) - float(derived)) <= ABS_TOLERANCE + REL_TOLERANCE * abs(float(derived))


def _derived(doc: dict, row: dict, mine: "pd.DataFrame") -> dict[str, object]:
    """What the items give for each number of ``row`` that they determine: {dotted key: value}."""
    from aipbench.scoring.significance import significance

    col = lambda name: mine[name].to_numpy(np.float64)  # noqa: E731
    out: dict[str, object] = {}
    for n in map(str, doc["hit_ranks"]):
        for metric in ("hr", "availability"):
            coop, adv = col(f"cooperative_{metric}@{n}"), col(f"adversarial_{metric}@{n}")
            out[f"cooperative.{metric}.{n}"], out[f"adversarial.{metric}.{n}"] = coop.mean(), adv.mean()
            out[f"delta.{metric}.{n}"] = (adv - coop).mean()
    out["cooperative.mean_score"] = col("cooperative_mean_score").mean()
    out["adversarial.mean_score"] = col("adversarial_mean_score").mean()
    out["prediction_shift.value"] = col("prediction_shift").mean()
    out["prediction_shift.magnitude"] = abs(out["prediction_shift.value"])
    psnr = col("psnr")
    finite = psnr[np.isfinite(psnr)]
    out["image_quality.max_linf"] = float(col("linf").max(initial=0))
    out["image_quality.mean_psnr"] = float(finite.mean()) if finite.size else None
    out["image_quality.mean_ssim"] = col("ssim").mean()
    out["image_quality.unchanged_images"] = float((~np.isfinite(psnr)).sum())
    first = str(doc["hit_ranks"][0])
    coop, adv = col(f"cooperative_hr@{first}"), col(f"adversarial_hr@{first}")
    out["hr_lift"] = adv.mean() / coop.mean() if coop.mean() > 0 else None
    out["hr_test.p"] = significance(adv, coop, doc["significance_level"])["p"]
    return out


def _intervals(doc: dict, row: dict, mine: "pd.DataFrame") -> dict[str, list[float]]:
    """The row's bootstrap intervals from its items (the document's own seed, resamples and level)."""
    from aipbench.scoring.intervals import Bootstrap

    spec = doc["intervals"]
    boot = Bootstrap(len(mine), int(spec["seed"]), resamples=int(spec["resamples"]), level=float(spec["level"]))
    cols = {"prediction_shift": mine["prediction_shift"].to_numpy(np.float64)}
    for n in map(str, doc["hit_ranks"]):
        for metric in ("hr", "availability"):
            coop = mine[f"cooperative_{metric}@{n}"].to_numpy(np.float64)
            adv = mine[f"adversarial_{metric}@{n}"].to_numpy(np.float64)
            cols[f"cooperative.{metric}.{n}"], cols[f"adversarial.{metric}.{n}"] = coop, adv
            cols[f"delta.{metric}.{n}"] = adv - coop
    return boot.intervals(cols)


def _claimed(row: dict, key: str):
    node = row
    for part in key.split("."):
        node = node[part]
    return node


def row_problems(doc: dict, items: "pd.DataFrame") -> list[str]:
    """Every contradiction between ``doc``'s rows and its per-item CSV ``items``, as lines."""
    if doc.get("kind") == "ranker":
        problems = [f"{name}: {line}" for name, part, mine in attack_parts(doc, items)
                    for line in _attack_problems(part, mine)]
        strays = sorted(set(items["attack"].astype(str)) - set(doc["attacks"]))
        if strays:
            problems.append(f"the CSV holds rows of attack {strays[0][:60]!r}, which the document does not report")
        return problems
    return _attack_problems(doc, items)


def _attack_problems(doc: dict, items: "pd.DataFrame") -> list[str]:
    problems = []
    level = doc["significance_level"]
    covered = 0
    for row in doc["results"]:
        where = f"{row['ranker']} eps={row['epsilon']}"
        mine = row_items(items, row)
        covered += len(mine)
        if mine.empty:
            problems.append(f"{where}: no items in the CSV")
            continue
        twice = mine["item"][mine["item"].duplicated()]
        if len(twice):
            problems.append(f"{where}: item {int(twice.iloc[0])} appears twice in the CSV")
            continue
        if len(mine) != row["n_items"]:
            problems.append(f"{where}: n_items {row['n_items']} but the CSV holds {len(mine)} of its items")
            continue
        derived = _derived(doc, row, mine)
        p = derived.pop("hr_test.p")
        for key, value in derived.items():
            said = _claimed(row, key)
            if not _close(said, value):
                problems.append(f"{where}: {key} {said!r:.12} but its items give {value!r:.12}")
        shift = row["prediction_shift"]["value"]
        if row["prediction_shift"]["direction"] != ("up" if shift > 0 else "down" if shift < 0 else "none"):
            problems.append(f"{where}: the prediction shift {shift:.6g} goes {row['prediction_shift']['direction']!r}")
        if row["hr_test"]["significant"] != (p < level) and not (level / 10 < p < level * 10):
            problems.append(f"{where}: the t-test is {'not ' * (not row['hr_test']['significant'])}significant, but "
                            f"its items give p = {p:.3g}")
        if "intervals" in row and "intervals" in doc:
            for key, (low, high) in _intervals(doc, row, mine).items():
                said = row["intervals"]["prediction_shift"] if key == "prediction_shift" else _claimed(row["intervals"], key)
                if not (_close(said[0], low) and _close(said[1], high)):
                    problems.append(f"{where}: interval of {key} {said} but its items give [{low:.6g}, {high:.6g}]")
    if covered != len(items):
        problems.append(f"the CSV holds {len(items) - covered} rows of no results row")
    return problems


def check_rows(path: str | Path, doc: dict, items: "pd.DataFrame") -> None:
    """Refuse a document whose rows its per-item CSV contradicts (one line: the first, and how many)."""
    found = row_problems(doc, items)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise InputError(f"{path}: its per-item CSV contradicts it: {found[0]}{more}")
