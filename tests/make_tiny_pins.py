"""Re-measure tests/data/pins-tiny.json exactly as the default suite checks it (one thread, in a fresh
cache): every experiment of the tiny reproduction, the training and detector defenses and the black-box
reference attack (NES) on each ranker.

    .venv/bin/python tests/make_tiny_pins.py [OUT]      # default: tests/data/pins-tiny.json

Run it after a deliberate change that moves a number, and say why in the commit.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import conftest  # noqa: E402,F401 — one thread, as in the suite
import test_defense_types as defenses  # noqa: E402
import tiny_pipeline as regression  # noqa: E402

from aipbench.reproduce import EXPERIMENTS  # noqa: E402
from aipbench.rankers.registry import ranker_names  # noqa: E402
from aipbench.reproduce.pins import attack_pins, pins_from  # noqa: E402


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        pipeline = regression.TinyReproduction(scratch / "results", scratch / "home")
        for experiment in EXPERIMENTS:
            pipeline.experiment(experiment)
        for defense in ("amr", "detector"):
            doc = defenses.defense_document(defense, home=scratch / "home", scratch=scratch)
            (scratch / "results" / "tiny" / f"{defense}.json").write_text(json.dumps(doc))
        pins = pins_from(scratch / "results", "tiny")
        for ranker in ranker_names():  # the black-box reference attack, one document per ranker
            pins.update(attack_pins(regression.attack_document("nes", ranker, home=scratch / "home", scratch=scratch)))
    out.write_text(json.dumps(pins, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(pins)} pins to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data" / "pins-tiny.json")
