"""The tiny protocol's regression pipeline as the default suite runs it (shared by the regression tests and
tests/make_tiny_pins.py): every experiment of `aipbench reproduce`, written under one results folder."""

from __future__ import annotations

import json
from pathlib import Path

from aipbench.reproduce import reproduce
from aipbench.reproduce.pins import compare_pins, defense_pins, reproduction_pins

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
PINS = json.loads((DATA / "pins-tiny.json").read_text())
TINY_SUBSET = 10  # cold items for Tables 6 and 8 and the figures on tiny (the paper's 100 would be all 40)
# Table 8 on tiny: the mildest level of each family, where every attack tiny's transforms defeat is already
# defeated (each further level re-runs every reference attack adaptively: most of this suite's time);
# the weakest-defeating-level rule over several levels is tested on its own (test_defenses)
TINY_LEVELS = {"jpeg": (90,), "bit-depth": (7,)}
# Figure 5 on tiny: the shortest and the longest embedding of each family (the claim compares these two);
# Table 6: the smallest and the largest budget
TINY_LENGTHS = {"vbpr": (20, 100), "dvbpr": (10, 100)}
TINY_EPSILONS = (4, 32)
# the black-box reference attack on tiny: a few cold items (its budget is 1,000 oracle queries per item)
BLACKBOX_ITEMS = 10
class TinyReproduction:
    """The tiny pipeline's reproductions, each made once and written under ``results/tiny/``."""

    def __init__(self, results: Path, home: Path) -> None:
        self.results, self.home = results, home
        self.done: dict[str, dict] = {}

    def experiment(self, name: str) -> dict:
        if name not in self.done:
            for rep in reproduce(name, protocol="tiny", results_dir=self.results, home=self.home, subset=TINY_SUBSET,
                                 defense_levels=TINY_LEVELS, figure5_lengths=TINY_LENGTHS,
                                 sweep_epsilons=TINY_EPSILONS, isolation="none", check_determinism=False,
                                 log=lambda m: None):
                rep.write(self.results / "tiny" / "reproduce")
                self.done[name] = rep.document()
        return self.done[name]


def check_experiment(pipeline: TinyReproduction, experiment: str) -> None:
    """``experiment``'s numbers (and, for Table 8, its defense documents') against the pins."""
    prefixes = ("claims/",) if experiment == "claims" else (f"{experiment}/",)
    measured = reproduction_pins(pipeline.experiment(experiment))
    if experiment == "table8":  # the defense families' documents it reads, level by level
        for family in TINY_LEVELS:
            measured.update(defense_pins(json.loads((pipeline.results / "tiny" / f"{family}.json").read_text())))
        prefixes += tuple(f"defense/{f}/" for f in TINY_LEVELS)
    pinned = {k: v for k, v in PINS.items() if k.startswith(prefixes)}
    problems = compare_pins(pinned, measured)
    assert pinned and not problems, f"{len(problems)} numbers moved:\n" + "\n".join(problems[:40])


def attack_document(submission: str, ranker: str, *, home: Path, scratch: Path) -> dict:
    """A reference attack's document on tiny (``BLACKBOX_ITEMS`` cold items, one ranker), as pinned."""
    from aipbench import evaluate

    out = scratch / f"{submission}-{ranker}.json"
    evaluate(REPO / "submissions" / submission, protocol="tiny", rankers=[ranker], items=BLACKBOX_ITEMS, isolation="none",
             check_determinism=False, home=home, out=out, log=lambda m: None)
    return json.loads(out.read_text())
