"""One ranker spec: a ranker added to aipbench is one file (its class, its protocol section, its training,
its replicas), and the paper's four rankers live on the same spec with their protocols' hashes unchanged."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import sandbox_marker

from aipbench.errors import ConfigError
from aipbench.protocol import load_protocol
from aipbench.rankers.registry import ranker_names, ranker_spec
from aipbench.rankers.spec import RankerSpec

REPO = Path(__file__).resolve().parents[1]
ONE_FILE = Path(__file__).parent / "data" / "rankers" / "vmf.py"
VMF_SECTION = """
[rankers.vmf]
embedding_length = 8

[rankers.vmf.train]
learning_rate = 0.01
weight_decay = 0.0001
epochs = 5
batch_size = 256
seed = 7
"""


def test_the_paper_rankers_are_specs_and_every_protocol_keeps_its_hash():
    """The four rankers in Table 4's order, each its section, files and variants as before; no protocol file's
    hash moved with them (the values below are the committed results' own)."""
    assert ranker_names() == ["alexrank", "vbpr", "dvbpr", "amr"]
    assert [ranker_spec(n).replicated for n in ranker_names()] == [False, True, True, True]
    assert ranker_spec("vbpr").lengths == (20, 50, 100) and ranker_spec("dvbpr").lengths == (10, 30, 50, 100)
    assert ranker_spec("amr").needs == ("dataset", "features", "vbpr") and ranker_spec("alexrank").section is None
    committed = {}
    for doc in (REPO / "leaderboard" / "results").glob("*/insa.json"):
        protocol = json.loads(doc.read_text())["protocol"]
        committed[protocol["name"]] = protocol["sha256"]
    assert committed and all(load_protocol(name).sha256 == sha for name, sha in committed.items())


def test_an_absent_section_means_no_such_ranker(tmp_path):
    """A protocol without [rankers.amr] has no AMR (and no hash of it); a section no ranker registers is a
    dotted-key error naming what may be there."""
    text = (REPO / "protocols" / "tiny.toml").read_text().replace('name = "tiny"', 'name = "tiny-x"', 1)
    start = text.index("[rankers.amr]")
    end = text.index("\n[", start + 1)
    while text[end + 1:].startswith("[rankers.amr."):
        end = text.index("\n[", end + 1)
    (tmp_path / "tiny-x.toml").write_text(text[:start] + text[end + 1:])
    proto = load_protocol(tmp_path / "tiny-x.toml")
    assert ranker_names(proto) == ["alexrank", "vbpr", "dvbpr"] and proto.rankers.section("amr") is None
    assert "amr" not in proto.canonical()["rankers"]
    (tmp_path / "x" / "tiny-x.toml").parent.mkdir()
    (tmp_path / "x" / "tiny-x.toml").write_text(text + "\n[rankers.lattice]\nlayers = 2\n")
    with pytest.raises(ConfigError, match=r"rankers\.lattice'?: unknown key \(allowed: extractor, vbpr, dvbpr, amr"):
        load_protocol(tmp_path / "x" / "tiny-x.toml")


def test_a_spec_is_checked_where_it_is_written():
    spec = ranker_spec("vbpr")
    with pytest.raises(ValueError, match="lower-case letters, digits and '_' only"):
        dataclasses.replace(spec, name="vbpr-2")
    with pytest.raises(ValueError, match="names a class whose name is 'vbpr'"):
        dataclasses.replace(spec, name="vbpr2")
    with pytest.raises(ValueError, match="re-train it from its protocol section"):
        RankerSpec(**{**{f.name: getattr(ranker_spec("alexrank"), f.name) for f in dataclasses.fields(RankerSpec)},
                      "replicated": True})


@pytest.mark.slow  # a copied checkout prepared, attacked and shown (30 s); the hash and section tests above run by default
@sandbox_marker()
def test_a_ranker_added_as_one_file_is_prepared_attacked_and_shown(tmp_path):
    """aipbench with one more file in aipbench/rankers/ (nothing else edited): a protocol that has its section
    prepares it (and a replica of it), INSA attacks it in its sandbox through its own gradients, and the
    leaderboard shows its table; the protocols that lack its section keep their hashes."""
    package = tmp_path / "checkout"
    shutil.copytree(REPO / "aipbench", package / "aipbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ONE_FILE, package / "aipbench" / "rankers" / "vmf.py")
    for folder in ("protocols", "submissions", "leaderboard"):  # what a checkout brings beside the package
        (package / folder).symlink_to(REPO / folder)
    protocols = tmp_path / "protocols"
    protocols.mkdir()
    tiny = (REPO / "protocols" / "tiny.toml").read_text()
    (protocols / "tiny-vmf.toml").write_text(tiny.replace('name = "tiny"', 'name = "tiny-vmf"', 1) + VMF_SECTION)
    env = {**os.environ, "PYTHONPATH": str(package), "AIPBENCH_HOME": str(tmp_path / "home"),
           "AIPBENCH_PROTOCOLS": str(protocols), "AIPBENCH_PROGRESS": "0"}

    def aipbench(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "aipbench", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    probe = ("import aipbench, aipbench.protocol as p; from aipbench.rankers.registry import ranker_names; "
             "print(aipbench.__file__, p.load_protocol('tiny').sha256, ranker_names(p.load_protocol('tiny')), "
             "ranker_names(p.load_protocol('tiny-vmf')))")
    seen = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert seen.returncode == 0, seen.stderr[-3000:]
    seen = seen.stdout
    assert seen.split()[0].startswith(str(package)) and seen.split()[1] == load_protocol("tiny").sha256
    assert "['alexrank', 'vbpr', 'dvbpr', 'amr'] ['alexrank', 'vbpr', 'dvbpr', 'amr', 'vmf']" in seen
    assert "vmf: missing, building (visual MF" in aipbench("prepare", "--protocol", "tiny-vmf", "--only", "vmf")
    results = tmp_path / "results" / "tiny-vmf"
    aipbench("evaluate", str(REPO / "submissions" / "insa"), "--protocol", "tiny-vmf", "--rankers", "vmf,vbpr",
             "--items", "10", "--eps", "32", "--skip-determinism-check", "--out", str(results / "insa.json"))
    doc = json.loads((results / "insa.json").read_text())
    vmf = next(r for r in doc["results"] if r["ranker"] == "vmf")
    assert vmf["adversarial"]["hr"]["5"] > vmf["cooperative"]["hr"]["5"]  # its own gradients move it
    assert doc["artifacts"]["vmf"] and "amr" not in doc["artifacts"]
    aipbench("leaderboard", "build", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site"))
    page = (tmp_path / "site" / "protocol-tiny-vmf.html").read_text()
    assert 'id="vmf"' in page and 'id="vbpr"' in page
