"""Regression pins: every number of a protocol's reproduction, keyed by where it sits, with tolerances.

    python -m aipbench.reproduce.pins RESULTS_DIR PROTOCOL OUT.json   # re-pin after a deliberate change

A change that moves a reference number updates the pin file in the same commit, with the reason."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

__all__ = ["TOLERANCE", "attack_pins", "cell_key", "compare_pins", "defense_pins", "pins_from", "reproduction_pins"]

PLACE = ("ranker", "embedding_length", "attack", "item_set", "epsilon", "defense", "mode", "metric")
# Absolute tolerances per metric family. Hit rates are multiples of 1/#users and deterministic on CPU:
# 1e-4 is a fraction of one user on synthetic-v1 (5,000 users) and catches any real change, while
# tolerating last-bit float differences that do not flip a rank. t-SNE positions depend on BLAS and
# are pinned loosely; a defeating level or a claim must match exactly.
TOLERANCE = {"hr": 1e-4, "delta_hr": 1e-4, "prediction_shift": 1e-3, "distance_to_hook": 1e-3, "tsne": 5.0,
             "defeating_level": 0.0}


def cell_key(experiment: str, cell: dict) -> str:
    return "/".join([experiment, *(str(cell.get(k)) for k in PLACE if cell.get(k) is not None)])


def _tolerance(metric: str) -> float:
    for prefix, tol in sorted(TOLERANCE.items(), key=lambda kv: -len(kv[0])):
        if metric.startswith(prefix):
            return tol
    return 1e-6


def pins_from(results_dir: Path, protocol: str) -> dict:
    """Pins from a protocol's results: every cell and claim of its reproduction documents
    (``<protocol>/reproduce/*.json``) and every defense document's adversarial HR@N and detection rate
    per ranker, level, attack and mode (``<protocol>/*.json`` of kind defense)."""
    from aipbench.results.document import load_results

    folder = Path(results_dir) / protocol
    pins = {}
    for path in sorted((folder / "reproduce").glob("*.json")):
        pins.update(reproduction_pins(load_results(path)))
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("kind") == "defense":
            pins.update(defense_pins(load_results(path)))
    return pins


def reproduction_pins(doc: dict) -> dict:
    """A reproduction document's numbers: every cell, and every claim's verdict."""
    pins = {cell_key(doc["experiment"], c): {"value": c["value"], "tolerance": _tolerance(c["metric"])}
            for c in doc["cells"]}
    pins.update({f"claims/{c['claim']}": {"value": c["holds"], "tolerance": 0.0} for c in doc["claims"]})
    return pins


def defense_pins(doc: dict) -> dict:
    """A defense document's numbers: clean cost and each attack's HR (and detection rate) per mode."""
    name, pins = doc["submission"]["name"], {}
    for row in doc["results"]:
        at = f"defense/{name}/{row['ranker']}/{row['level']}"
        for side in ("undefended", "defended"):
            for k, v in row["clean"][side].items():
                if not k.endswith("_interval"):  # the numbers, not their intervals (those follow from them)
                    pins[f"{at}/clean/{side}/{k}"] = {"value": v, "tolerance": TOLERANCE["hr"]}
        for attack, modes in row["attacks"].items():
            for mode in ("transfer", "adaptive"):
                for k in ("hr", "detection_rate"):
                    if k in modes[mode]:
                        pins[f"{at}/{attack}/{mode}/{k}"] = {"value": modes[mode][k], "tolerance": TOLERANCE["hr"]}
    return pins


def attack_pins(doc: dict) -> dict:
    """An attack document's numbers per ranker and budget: cooperative and adversarial HR@N, availability
    and the prediction shift (the interval bounds follow from these and are not pinned)."""
    name, pins = doc["submission"]["name"], {}
    for row in doc["results"]:
        at = f"attack/{name}/{row['ranker']}/{row['epsilon']}"
        for side in ("cooperative", "adversarial"):
            for n, v in row[side]["hr"].items():
                pins[f"{at}/{side}/hr@{n}"] = {"value": v, "tolerance": TOLERANCE["hr"]}
        for n, v in row["delta"]["availability"].items():
            pins[f"{at}/delta/availability@{n}"] = {"value": v, "tolerance": TOLERANCE["hr"]}
        pins[f"{at}/prediction_shift"] = {"value": row["prediction_shift"]["value"],
                                          "tolerance": TOLERANCE["prediction_shift"]}
    return pins


def compare_pins(pins: dict, measured: dict) -> list[str]:
    """Every disagreement between pinned and measured values (missing or extra numbers included)."""
    problems = []
    for key, pin in pins.items():
        if key not in measured:
            problems.append(f"{key}: pinned but not measured")
            continue
        want, got = pin["value"], measured[key]["value"]
        if isinstance(want, bool) or want is None or got is None or isinstance(got, bool):
            if want != got:
                problems.append(f"{key}: pinned {want}, measured {got}")
        elif not math.isclose(want, got, rel_tol=0, abs_tol=pin["tolerance"]):
            problems.append(f"{key}: pinned {want:.6g}, measured {got:.6g} (tolerance {pin['tolerance']:g})")
    problems += [f"{key}: measured but not pinned" for key in measured.keys() - pins.keys()]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    results, protocol, out = argv
    pins = pins_from(Path(results), protocol)
    Path(out).write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(pins)} pins to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
