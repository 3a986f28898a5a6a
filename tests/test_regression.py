"""Regression pins. The tiny protocol's full pipeline — prepare, every reference attack and defense,
every table, figure and claim of `aipbench reproduce` — matches ``tests/data/pins-tiny.json``;
synthetic-v1's committed reproduction matches ``tests/data/pins-synthetic-v1.json`` (re-measured from
scratch by the slow test). A change that moves a number updates its pin in the same commit:

    python -m aipbench.reproduce.pins RESULTS_DIR PROTOCOL tests/data/pins-PROTOCOL.json
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aipbench.defenses.evaluate import evaluate_defense
from aipbench.reproduce import EXPERIMENTS, reproduce
from aipbench.reproduce.book import PAPER_RANKERS
from aipbench.reproduce.pins import compare_pins, pins_from
from aipbench.results import write_document
from aipbench.submission import load_submission

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
TINY_SUBSET = 10  # cold items for Tables 6 and 8 and the figures on tiny (the paper's 100 would be all 40)
# Table 8 on tiny: the mildest and the most extreme level of each family (the submissions' five each
# would re-run every reference attack adaptively at three more levels: most of this suite's time)
TINY_LEVELS = {"jpeg": (90, 10), "bit-depth": (7, 3)}


def run_tiny_pipeline(results: Path, home: Path, scratch: Path) -> None:
    """Everything the pins cover, on the tiny protocol, written under ``results/tiny/``."""
    for rep in reproduce("all", protocol="tiny", results_dir=results, home=home, subset=TINY_SUBSET,
                         defense_levels=TINY_LEVELS, log=lambda m: None):
        rep.write(results / "tiny" / "reproduce")
    amr = load_submission(REPO / "submissions" / "amr")
    write_document(evaluate_defense(amr, protocol="tiny", rankers=["vbpr"], items=TINY_SUBSET, home=home,
                                    log=lambda m: None), results / "tiny" / "amr.json")
    # the reference detector learns from 80 training items here (300 on real runs): the same code, fewer images
    detector = scratch / "detector"
    shutil.copytree(REPO / "submissions" / "detector", detector)
    (detector / "defense.py").write_text((detector / "defense.py").read_text().replace("training_items = 300",
                                                                                       "training_items = 80"))
    write_document(evaluate_defense(load_submission(detector), protocol="tiny", rankers=list(PAPER_RANKERS),
                                    items=TINY_SUBSET, home=home, log=lambda m: None), results / "tiny" / "detector.json")


@pytest.fixture(scope="module")
def tiny_results(tiny_rankers, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    run_tiny_pipeline(results, tiny_rankers.root.parent, tmp_path_factory.mktemp("scratch"))
    return results


def test_the_tiny_pipeline_matches_its_pins(tiny_results):
    pins = json.loads((DATA / "pins-tiny.json").read_text())
    measured = pins_from(tiny_results, "tiny")
    problems = compare_pins(pins, measured)
    assert not problems, f"{len(problems)} numbers moved:\n" + "\n".join(problems[:40])
    experiments = {key.split("/")[0] for key in pins}
    assert experiments == {*EXPERIMENTS, "defense"}
    assert len(pins) > 400


def test_a_reproduction_records_the_artifacts_its_numbers_came_from(tiny_results, tiny_rankers):
    """Not whatever the cache held: the artifacts of the results documents it read (Table 4) or of the
    rankers it loaded itself (Figure 5's re-trained lengths), so a reproduction made on a fresh cache
    and one made on a full cache are the same document."""
    folder = tiny_results / "tiny"
    table4 = json.loads((folder / "reproduce" / "table4.json").read_text())
    insa = json.loads((folder / "insa.json").read_text())
    assert table4["artifacts"] and all(insa["artifacts"][k] == v for k, v in table4["artifacts"].items())
    figure5 = json.loads((folder / "reproduce" / "figure5.json").read_text())
    assert {"vbpr-k20", "dvbpr-k10", "dvbpr", "vbpr", "features"} <= set(figure5["artifacts"])
    assert "alexrank" not in figure5["artifacts"] and "amr" not in figure5["artifacts"]
    assert figure5["artifacts"]["dvbpr"] == tiny_rankers.hashes()["dvbpr"]


def test_a_defense_document_is_reused_only_at_the_levels_asked_for(tiny_results, monkeypatch):
    """Table 8's documents were made at TINY_LEVELS: asked for again they are read, not re-evaluated;
    asked for at other levels (here: the submission's own five) they are evaluated anew."""
    import aipbench.defenses.evaluate as defense_evaluation
    from aipbench.reproduce.book import ResultsBook

    class Evaluated(Exception):
        pass

    calls = []

    def stand_in(sub, **kw):  # raises so that nothing is written into the shared results
        calls.append(kw)
        raise Evaluated

    monkeypatch.setattr(defense_evaluation, "evaluate_defense", stand_in)
    book = ResultsBook("tiny", tiny_results, subset=TINY_SUBSET, defense_levels=TINY_LEVELS)
    assert [r["level"] for r in book.defense("jpeg")["results"]] == [90, 10, 90, 10, 90, 10]
    assert calls == []
    table8 = json.loads((tiny_results / "tiny" / "reproduce" / "table8.json").read_text())
    assert table8["note"] == "subset: first 10 cold items; jpeg levels: 90, 10; bit-depth levels: 7, 3"
    with pytest.raises(Evaluated):
        ResultsBook("tiny", tiny_results, subset=TINY_SUBSET).defense("bit-depth")
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
    for rep in reproduce("all", protocol=protocol, results_dir=tmp_path, log=lambda m: None):
        rep.write(tmp_path / protocol / "reproduce")
    for name in ("amr", "detector"):
        write_document(evaluate_defense(load_submission(REPO / "submissions" / name), protocol=protocol,
                                        rankers=list(PAPER_RANKERS), log=lambda m: None),
                       tmp_path / protocol / f"{name}.json")
    pins = json.loads((DATA / f"pins-{protocol}.json").read_text())
    problems = compare_pins(pins, pins_from(tmp_path, protocol))
    assert not problems, "\n".join(problems[:40])
