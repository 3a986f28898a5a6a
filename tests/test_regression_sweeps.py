"""Regression pins of the tiny pipeline's sweeps: Table 6 (ε), Figure 5 (embedding lengths), Table 8 (defense
levels) and the claims read from them; in a file of their own, so that a second pytest-xdist worker takes
them while the first runs test_regression.py (both share one results folder and run cache)."""

from __future__ import annotations

import json

import pytest
from tiny_pipeline import REPO, TINY_LEVELS, TINY_SUBSET, check_experiment

import aipbench
from aipbench.reproduce.book import PAPER_RANKERS


@pytest.mark.parametrize("experiment", ["table6", "figure5", "table8", "claims"])
def test_the_tiny_experiment_matches_its_pins(pipeline, experiment):
    check_experiment(pipeline, experiment)


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
    assert [r["level"] for r in book.defense("jpeg")["results"]] == [90, 90, 90]
    assert calls == []
    assert table8["note"] == "subset: first 10 cold items; jpeg levels: 90; bit-depth levels: 7"
    with pytest.raises(Evaluated):
        ResultsBook("tiny", pipeline.results, subset=TINY_SUBSET).defense("bit-depth")
    assert len(calls) == 1 and calls[0]["levels"] is None and calls[0]["items"] == TINY_SUBSET


def test_the_python_api_evaluates_a_defense_family_at_chosen_levels(pipeline):
    """`aipbench.evaluate` takes a defense like an attack and returns its typed document; at level 90 on
    the Table 8 subset it gives the numbers the reproduction's jpeg document holds for that level."""
    from aipbench.results.document import DefenseResults, validate_results

    pipeline.experiment("table8")  # writes the jpeg document at TINY_LEVELS
    table8 = json.loads((pipeline.results / "tiny" / "jpeg.json").read_text())
    results = aipbench.evaluate(REPO / "submissions" / "jpeg", protocol="tiny", levels=[90], items=TINY_SUBSET,
                                rankers=list(PAPER_RANKERS), home=pipeline.home, isolation="none", log=lambda m: None)
    assert isinstance(results, DefenseResults) and results.document["kind"] == "defense"
    validate_results(results.document, "jpeg")
    assert [r["level"] for r in results.document["results"]] == [90, 90, 90]
    at_90 = [r for r in table8["results"] if r["level"] == 90]
    assert [r["attacks"] for r in results.document["results"]] == [r["attacks"] for r in at_90]
    assert "jpeg" in results.table() and "quality" in results.table()
