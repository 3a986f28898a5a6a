"""`aipbench reproduce`: the paper's numbers beside ours, tables shaped like the paper's, sealed
documents, the claims checks (each can fail), pins, and bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from aipbench.cli import main
from aipbench.errors import InputError
from aipbench.reproduce import reproduce
from aipbench.reproduce.output import Reproduction, with_paper
from aipbench.reproduce.pins import cell_key, compare_pins
from aipbench.reproduce.tables import cell
from aipbench.results.document import load_results


def test_paper_numbers_sit_beside_ours_on_a_paper_protocol():
    cells = [cell("hr@5", 0.002, ranker="alexrank", item_set="cooperative_cold"),
             cell("hr@5", 0.5, ranker="dvbpr", attack="insa", item_set="adversarial_cold", significant=True),
             cell("defeating_level", 4, ranker="alexrank", attack="insa", defense="bit_depth", mode="paper-transfer"),
             cell("defeating_level", 3, ranker="alexrank", attack="insa", defense="bit_depth", mode="adaptive"),
             cell("defeating_level", 4, ranker="alexrank", attack="insa", defense="bit_depth", mode="transfer")]
    placed, dataset = with_paper(cells[:2], "table4", "amazon-men-v1")
    assert dataset == "amazon-men" and placed[0]["paper"] == 0.0011  # the paper's Table 4, AlexRank cooperative
    assert placed[1]["paper"] is not None
    t8, _ = with_paper(cells[2:], "table8", "amazon-men-v1")
    # the paper's marks sit beside Table 8 as the paper defines it (transfer vs the undefended cooperative HR)
    assert t8[0]["paper"] == 4 and t8[1]["paper"] is None and t8[2]["paper"] is None
    mine, none = with_paper(cells, "table4", "synthetic-v1")
    assert none is None and all(c["paper"] is None for c in mine)


def test_the_table_is_shaped_like_the_papers_and_the_document_is_sealed(tmp_path):
    cells, _ = with_paper([
        cell("hr@5", 0.0011, ranker="alexrank", item_set="cooperative_cold"),
        cell("hr@5", 0.0039, ranker="alexrank", attack="insa", item_set="adversarial_cold", significant=True),
        cell("hr@5", 0.0466, ranker="dvbpr", attack="insa", item_set="adversarial_cold", significant=False),
    ], "table4", "amazon-men-v1")
    rep = Reproduction("table4", "amazon-men-v1", cells, {"insa.json": "0" * 64}, "amazon-men")
    text = rep.table().splitlines()
    assert [h.strip() for h in text[0].split("|")[1:-1]] == ["attack", "item_set", "metric", "alexrank", "dvbpr"]
    insa_row = next(line for line in text if line.startswith("| insa"))
    assert "0.0039** (paper " in insa_row and "0.0466 (paper " in insa_row  # ** only where significant
    rep.provenance = {"aipbench": {"version": "0", "git_commit": None},
                      "protocol": {"name": "amazon-men-v1", "version": 1, "sha256": "a" * 64}, "artifacts": {},
                      "environment": {"device": "cpu", "torch": "x", "python": "3.11"}}
    written = rep.write(tmp_path)
    doc = load_results(written[0])
    assert doc["kind"] == "reproduction" and doc["cells"] == cells
    assert (tmp_path / "table4.csv").read_text().splitlines()[0].startswith("ranker,attack,item_set")
    tampered = json.loads(written[0].read_text())
    tampered["cells"][0]["value"] = 0.5
    (tmp_path / "bad.json").write_text(json.dumps(tampered))
    with pytest.raises(InputError, match="content does not match its sha256"):
        load_results(tmp_path / "bad.json")


def test_pins_catch_a_moved_number_a_missing_one_and_a_new_one():
    key = cell_key("table4", cell("hr@5", 0.1, ranker="vbpr", attack="insa", item_set="adversarial_cold"))
    assert key == "table4/vbpr/insa/adversarial_cold/hr@5"
    pins = {key: {"value": 0.1, "tolerance": 1e-4}, "claims/x": {"value": True, "tolerance": 0.0}}
    assert compare_pins(pins, {key: {"value": 0.10005}, "claims/x": {"value": True}}) == []
    problems = compare_pins(pins, {key: {"value": 0.1002}, "table4/new": {"value": 1.0}})
    assert len(problems) == 3 and "pinned 0.1, measured 0.1002" in problems[0]


def test_an_unknown_experiment_is_one_line():
    with pytest.raises(InputError, match="unknown experiment 'tabel4'; did you mean 'table4'"):
        reproduce("tabel4")
    result = CliRunner().invoke(main, ["reproduce", "tabel4"])
    assert result.exit_code == 2 and "'tabel4' is not one of 'table3'" in result.output


def test_results_of_another_protocol_are_refused(tmp_path):
    sample = json.loads(open(__file__.replace("test_reproduce.py", "data/results-tiny-noise.json")).read())
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "insa.json").write_text(json.dumps(sample))  # a tiny document under the wrong name is fine…
    folder = tmp_path / "synthetic-v1"
    folder.mkdir()
    (folder / "insa.json").write_text(json.dumps(sample))  # …but not under another protocol's folder
    result = CliRunner().invoke(main, ["reproduce", "table3", "--protocol", "synthetic-v1", "--results", str(tmp_path)])
    assert result.exit_code == 1 and "made on protocol" in result.output and "not synthetic-v1" in result.output


def test_sources_made_with_different_artifacts_are_refused(tmp_path):
    from aipbench.reproduce.book import ResultsBook

    book = ResultsBook("tiny", tmp_path)
    book.use_artifacts("a.json", {"dvbpr": {"dvbpr.pt": "1" * 64}, "bpr": {"bpr.pt": "2" * 64}})
    book.use_artifacts("b.json", {"dvbpr": {"dvbpr.pt": "1" * 64}})  # the same build: fine
    assert book.artifacts == {"dvbpr": {"dvbpr.pt": "1" * 64}, "bpr": {"bpr.pt": "2" * 64}}
    with pytest.raises(InputError, match="c.json: artifact 'dvbpr' differs from the one the other sources"):
        book.use_artifacts("c.json", {"dvbpr": {"dvbpr.pt": "3" * 64}})
    book.reset()
    assert book.artifacts == {} and book.sources == {}


@pytest.mark.parametrize("value", ["jpeg", "jpeg=", "=90", "jpeg=90,ten", "jpeg=90,,10"])
def test_a_malformed_levels_option_is_a_usage_error(value):
    result = CliRunner().invoke(main, ["reproduce", "table8", "--protocol", "tiny", "--levels", value])
    assert result.exit_code == 2 and "Invalid value for '--levels'" in result.output
    assert "expected DEFENSE=L1,L2" in result.output


def test_levels_for_a_defense_that_is_not_a_reference_one_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["reproduce", "table8", "--protocol", "tiny", "--results", str(tmp_path),
                                       "--levels", "jpg=90,10"])
    assert result.exit_code == 1 and "defense levels for 'jpg': no reference defense of that name" in result.output
    for name, rule in (("amr", "only a defense family"), ("insa", "no reference defense of that name")):
        with pytest.raises(InputError, match=f"'{name}': {rule}"):
            reproduce("table8", protocol="tiny", results_dir=tmp_path, defense_levels={name: [1]})
    with pytest.raises(InputError, match="give one or more distinct levels"):
        reproduce("table8", protocol="tiny", results_dir=tmp_path, defense_levels={"jpeg": [90, 90]})
    assert not any(tmp_path.rglob("*.json"))
