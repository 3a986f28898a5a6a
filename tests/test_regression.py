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

import pytest
from tiny_pipeline import DATA, PINS, REPO, check_experiment

import aipbench
from aipbench.protocol import load_protocol
from aipbench.reproduce import EXPERIMENTS, reproduce
from aipbench.reproduce.book import PAPER_RANKERS
from aipbench.reproduce.pins import compare_pins, pins_from


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e not in ("table6", "figure5", "table8", "claims")])
def test_the_tiny_experiment_matches_its_pins(pipeline, experiment):
    check_experiment(pipeline, experiment)


def test_the_pins_cover_every_experiment_and_defense():
    assert {key.split("/")[0] for key in PINS} == {*EXPERIMENTS, "defense", "attack"}
    assert {key.split("/")[2] for key in PINS if key.startswith("attack/")} == {"alexrank", "vbpr", "dvbpr", "amr"}
    assert {key.split("/")[1] for key in PINS if key.startswith("defense/")} == {"amr", "detector", "jpeg", "bit-depth"}
    assert len(PINS) > 300


def test_expa_runs_once_per_image_model(pipeline):
    """An expert attack targets an image model: Φ is attacked once and its images are shared by AlexRank,
    VBPR and AMR; DVBPR's own Φ_e is attacked on its own (Table 4's EXPA document, all cold items)."""
    pipeline.experiment("table4")
    doc = json.loads((pipeline.results / "tiny" / "expa.json").read_text())
    assert doc["submission"]["knowledge"] == "expert"
    assert [(r["ranker"], r["attack_target"]) for r in doc["results"]] == [
        ("alexrank", "extractor"), ("vbpr", "extractor"), ("dvbpr", "dvbpr"), ("amr", "extractor")]
    runs = pipeline.home / f"tiny-{load_protocol('tiny').hash12}" / "runs" / f"expa-{doc['submission']['sha256'][:12]}"
    assert sorted(p.name for p in (runs / "eps-32").glob("*.npy")) == ["dvbpr.items-0-40.npy", "extractor.items-0-40.npy"]


@pytest.mark.parametrize("protocol", ["synthetic-v1", "synthetic-v2"])
def test_the_committed_synthetic_reproduction_matches_its_pins(protocol):
    pins = json.loads((DATA / f"pins-{protocol}.json").read_text())
    problems = compare_pins(pins, pins_from(REPO / "leaderboard" / "results", protocol))
    assert not problems, "\n".join(problems[:40])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["synthetic-v1", "synthetic-v2"])
def test_synthetic_protocol_reproduces_its_pins_from_scratch(tmp_path, protocol):
    """The committed folder's defense documents and `aipbench reproduce all`, re-made into an empty results
    folder as `leaderboard/remake.sh` makes them (defenses first, on the rankers it gives them, then the
    reproduction, which reuses them; artifacts from $AIPBENCH_HOME): the numbers match the committed pins.
    Hours on a 2-core CPU."""
    defense_rankers = None if protocol == "synthetic-v2" else list(PAPER_RANKERS)  # remake.sh's --rankers
    for name, rankers in (("amr", ["vbpr"]), ("bit-depth", defense_rankers), ("jpeg", defense_rankers),
                          ("detector", defense_rankers)):
        aipbench.evaluate(REPO / "submissions" / name, protocol=protocol, rankers=rankers, isolation="none",
                          out=tmp_path / protocol / f"{name}.json", log=lambda m: None)
    for rep in reproduce("all", protocol=protocol, results_dir=tmp_path, isolation="none", log=lambda m: None):
        rep.write(tmp_path / protocol / "reproduce")
    pins = json.loads((DATA / f"pins-{protocol}.json").read_text())
    problems = compare_pins(pins, pins_from(tmp_path, protocol))
    assert not problems, "\n".join(problems[:40])
