"""Regression pins. The tiny protocol's full pipeline — prepare, every reference attack and defense,
every table, figure and claim of `aipbench reproduce` — matches ``tests/data/pins-tiny.json``, one test
per experiment (so a failure names it); the synthetic protocols' committed reproductions match their pins
(re-measured from scratch by the slow test). A change that moves a number updates its pin in the same
commit:

    python -m aipbench.reproduce.pins RESULTS_DIR PROTOCOL tests/data/pins-PROTOCOL.json

The reference submissions are trusted code and run in-process here (``isolation="none"``: the same
seeds and kernels as the child process, which ``test_evaluate`` and ``test_attacks`` exercise).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import aipbench
from aipbench.harness.submission import load_submission
from aipbench.reproduce import EXPERIMENTS, reproduce
from aipbench.reproduce.book import PAPER_RANKERS
from aipbench.reproduce.pins import compare_pins, defense_pins, pins_from, reproduction_pins

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
PINS = json.loads((DATA / "pins-tiny.json").read_text())
TINY_SUBSET = 10  # cold items for Tables 6 and 8 and the figures on tiny (the paper's 100 would be all 40)
# Table 8 on tiny: the mildest and the most extreme level of each family (the submissions' five each
# would re-run every reference attack adaptively at three more levels: most of this suite's time)
TINY_LEVELS = {"jpeg": (90, 10), "bit-depth": (7, 3)}
# Figure 5 on tiny: the shortest and the longest embedding of each family (the claim compares these two);
# the pins hold every length
TINY_LENGTHS = {"vbpr": (20, 100), "dvbpr": (10, 100)}


class TinyReproduction:
    """The tiny pipeline's reproductions, each made once and written under ``results/tiny/``."""

    def __init__(self, results: Path, home: Path, scratch: Path) -> None:
        self.results, self.home, self.scratch = results, home, scratch
        self.done: dict[str, dict] = {}

    def experiment(self, name: str) -> dict:
        if name not in self.done:
            for rep in reproduce(name, protocol="tiny", results_dir=self.results, home=self.home, subset=TINY_SUBSET,
                                 defense_levels=TINY_LEVELS, figure5_lengths=TINY_LENGTHS, isolation="none",
                                 log=lambda m: None):
                rep.write(self.results / "tiny" / "reproduce")
                self.done[name] = rep.document()
        return self.done[name]

    def defense(self, name: str) -> dict:
        """The training (AMR) and detector defenses, which no experiment evaluates."""
        if name not in self.done:
            folder = REPO / "submissions" / name
            if name == "detector":  # it learns from 80 training items here (300 on real runs): same code, fewer images
                folder = self.scratch / "detector"
                shutil.copytree(REPO / "submissions" / "detector", folder)
                code = (folder / "defense.py").read_text().replace("training_items = 300", "training_items = 80")
                (folder / "defense.py").write_text(code)
            rankers = ["vbpr"] if name == "amr" else list(PAPER_RANKERS)
            self.done[name] = aipbench.evaluate(load_submission(folder), protocol="tiny", rankers=rankers,
                                                items=TINY_SUBSET, home=self.home, isolation="none",
                                                out=self.results / "tiny" / f"{name}.json", log=lambda m: None).document
        return self.done[name]


@pytest.fixture(scope="module")
def pipeline(tiny_rankers, tmp_path_factory):
    return TinyReproduction(tmp_path_factory.mktemp("results"), tiny_rankers.root.parent, tmp_path_factory.mktemp("s"))


def _pinned(prefix: str) -> dict:
    return {k: v for k, v in PINS.items() if k.startswith(prefix)}


def _unmeasured_lengths(problems: list[str]) -> list[str]:
    """Figure 5's pins hold every length; the suite measures TINY_LENGTHS only."""
    measured = {f"figure5/{r}/{k}/" for r, lengths in TINY_LENGTHS.items() for k in lengths}
    return [p for p in problems if not (p.startswith("figure5/") and p.endswith("pinned but not measured")
                                        and not any(p.startswith(m) for m in measured))]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_tiny_experiment_matches_its_pins(pipeline, experiment):
    prefixes = ("claims/",) if experiment == "claims" else (f"{experiment}/",)
    measured = reproduction_pins(pipeline.experiment(experiment))
    if experiment == "table8":  # the defense families' documents it reads, level by level
        for family in TINY_LEVELS:
            measured.update(defense_pins(json.loads((pipeline.results / "tiny" / f"{family}.json").read_text())))
        prefixes += tuple(f"defense/{f}/" for f in TINY_LEVELS)
    pinned = {k: v for k, v in PINS.items() if k.startswith(prefixes)}
    problems = _unmeasured_lengths(compare_pins(pinned, measured))
    assert pinned and not problems, f"{len(problems)} numbers moved:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("defense", ["amr", "detector"])
def test_the_tiny_defense_matches_its_pins(pipeline, defense):
    pinned = _pinned(f"defense/{defense}/")
    problems = compare_pins(pinned, defense_pins(pipeline.defense(defense)))
    assert pinned and not problems, f"{len(problems)} numbers moved:\n" + "\n".join(problems[:40])


def test_the_pins_cover_every_experiment_and_defense():
    assert {key.split("/")[0] for key in PINS} == {*EXPERIMENTS, "defense"}
    assert {key.split("/")[1] for key in PINS if key.startswith("defense/")} == {"amr", "detector", "jpeg", "bit-depth"}
    assert len(PINS) > 400


def test_a_reproduction_records_the_artifacts_its_numbers_came_from(pipeline, tiny_rankers):
    """Not whatever the cache held: the artifacts of the results documents it read (Table 4) or of the
    rankers it loaded itself (Figure 5's re-trained lengths), so a reproduction made on a fresh cache
    and one made on a full cache are the same document."""
    table4 = pipeline.experiment("table4")
    insa = json.loads((pipeline.results / "tiny" / "insa.json").read_text())
    assert table4["artifacts"] and all(insa["artifacts"][k] == v for k, v in table4["artifacts"].items())
    figure5 = pipeline.experiment("figure5")
    assert {"vbpr-k20", "dvbpr-k10", "dvbpr", "vbpr", "features"} <= set(figure5["artifacts"])
    assert "alexrank" not in figure5["artifacts"] and "amr" not in figure5["artifacts"]
    assert figure5["artifacts"]["dvbpr"] == tiny_rankers.hashes()["dvbpr"]
    assert figure5["note"].endswith("figure 5 lengths: vbpr 20, 100; dvbpr 10, 100")


def test_a_defense_document_is_reused_only_at_the_levels_asked_for(pipeline, monkeypatch):
    """Table 8's documents were made at TINY_LEVELS: asked for again they are read, not re-evaluated;
    asked for at other levels (here: the submission's own five) they are evaluated anew."""
    import aipbench.harness.evaluate as harness_evaluate
    from aipbench.reproduce.book import ResultsBook

    class Evaluated(Exception):
        pass

    calls = []

    def stand_in(sub, **kw):  # raises so that nothing is written into the shared results
        calls.append(kw)
        raise Evaluated

    table8 = pipeline.experiment("table8")
    monkeypatch.setattr(harness_evaluate, "evaluate", stand_in)
    book = ResultsBook("tiny", pipeline.results, subset=TINY_SUBSET, defense_levels=TINY_LEVELS)
    assert [r["level"] for r in book.defense("jpeg")["results"]] == [90, 10, 90, 10, 90, 10]
    assert calls == []
    assert table8["note"] == "subset: first 10 cold items; jpeg levels: 90, 10; bit-depth levels: 7, 3"
    with pytest.raises(Evaluated):
        ResultsBook("tiny", pipeline.results, subset=TINY_SUBSET).defense("bit-depth")
    assert len(calls) == 1 and calls[0]["levels"] is None and calls[0]["items"] == TINY_SUBSET


@pytest.mark.parametrize("protocol", ["synthetic-v1", "synthetic-v2"])
def test_the_committed_synthetic_reproduction_matches_its_pins(protocol):
    pins = json.loads((DATA / f"pins-{protocol}.json").read_text())
    problems = compare_pins(pins, pins_from(REPO / "leaderboard" / "results", protocol))
    assert not problems, "\n".join(problems[:40])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["synthetic-v1", "synthetic-v2"])
def test_synthetic_protocol_reproduces_its_pins_from_scratch(tmp_path, protocol):
    """`aipbench reproduce all` on a synthetic protocol into an empty results folder (every evaluation
    re-run; artifacts from $AIPBENCH_HOME): the numbers match the committed pins. Hours on a 2-core CPU."""
    for rep in reproduce("all", protocol=protocol, results_dir=tmp_path, isolation="none", log=lambda m: None):
        rep.write(tmp_path / protocol / "reproduce")
    for name in ("amr", "detector"):
        rankers = ["vbpr"] if name == "amr" else list(PAPER_RANKERS)
        aipbench.evaluate(REPO / "submissions" / name, protocol=protocol, rankers=rankers, isolation="none",
                          out=tmp_path / protocol / f"{name}.json", log=lambda m: None)
    pins = json.loads((DATA / f"pins-{protocol}.json").read_text())
    problems = compare_pins(pins, pins_from(tmp_path, protocol))
    assert not problems, "\n".join(problems[:40])


def test_the_python_api_evaluates_a_defense_family_at_chosen_levels(pipeline):
    """`aipbench.evaluate` takes a defense like an attack and returns its typed document; at level 90 on
    the Table 8 subset it gives the numbers the reproduction's jpeg document holds for that level."""
    from aipbench.results.document import DefenseResults, validate_results

    pipeline.experiment("table8")  # writes the jpeg document at levels 90 and 10
    table8 = json.loads((pipeline.results / "tiny" / "jpeg.json").read_text())
    results = aipbench.evaluate(REPO / "submissions" / "jpeg", protocol="tiny", levels=[90], items=TINY_SUBSET,
                                rankers=list(PAPER_RANKERS), home=pipeline.home, isolation="none", log=lambda m: None)
    assert isinstance(results, DefenseResults) and results.document["kind"] == "defense"
    validate_results(results.document, "jpeg")
    assert [r["level"] for r in results.document["results"]] == [90, 90, 90]
    at_90 = [r for r in table8["results"] if r["level"] == 90]
    assert [r["attacks"] for r in results.document["results"]] == [r["attacks"] for r in at_90]
    assert "jpeg" in results.table() and "quality" in results.table()
