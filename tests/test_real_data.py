"""A real-data protocol through the command line, as a researcher holding a DVBPR file would run it:
`data import` (its errors, a killed import), `data weights`, `prepare`, `evaluate`, `leaderboard build`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from aipbench.cli import main
from aipbench.hashing import sha256_file
from dvbpr_files import ROOT, jpeg, make_raw, uninteracted, write_npy, write_protocol

NAME = "dvbpr-mini"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A cache, a protocol folder named by AIPBENCH_PROTOCOLS holding NAME.toml, and its data file."""
    monkeypatch.setenv("AIPBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIPBENCH_PROGRESS", "0")
    monkeypatch.setenv("AIPBENCH_PROTOCOLS", str(tmp_path / "protocols"))
    (tmp_path / "protocols").mkdir()
    raw = make_raw()
    write_protocol(tmp_path / "protocols", NAME, raw, cold=uninteracted(raw)[:10])
    return raw, write_npy(tmp_path / "AmazonMenWithImgPartitioned.npy", raw), tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _error(result) -> str:
    """The one ``Error:`` line of a failed command (progress lines may precede it; no traceback)."""
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.strip().endswith(errors[0]), result.output
    return errors[0]


def _cache(home: Path) -> Path:
    (root,) = [p for p in home.iterdir() if p.name.startswith(NAME)]
    return root


def _no_copy_of(data: Path, home: Path) -> bool:
    size = data.stat().st_size
    return not any(p.is_file() and p.stat().st_size == size for p in home.rglob("*"))


def test_import_measures_the_file_and_keeps_one_file_per_protocol(world):
    raw, data, tmp = world
    result = run("data", "import", NAME, data)
    assert result.exit_code == 0, result.output
    digest = sha256_file(data)
    assert digest in result.output and "hook      item 3 (asin B0000003)" in result.output
    # make_raw's users 0 and 1 trained on their own test and validation items; user 2 twice on one item
    assert "dropped   2 training records of a user's own validation or test item" in result.output
    assert "1 repeated training records merged" in result.output
    root = _cache(tmp / "home")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["artifacts"]["dataset"]["inputs"] == {"AmazonMenWithImgPartitioned.npy": digest}
    assert _no_copy_of(data, tmp / "home")  # read where it lies
    again = run("data", "import", NAME, data)
    assert again.exit_code == 0 and "already imported" in again.output
    resaved = write_npy(tmp / "resaved.npy", raw, style="latin1")  # same counts, other bytes
    line = _error(run("data", "import", NAME, resaved))
    assert str(resaved) in line and sha256_file(resaved) in line and digest in line
    assert json.loads((root / "manifest.json").read_text()) == manifest


def _truncated(raw, path):
    write_npy(path, raw)
    path.write_bytes(path.read_bytes()[:5000])


def _bad_jpeg(raw, path):
    raw["Item"][17] = {b"imgs": raw["Item"][17][b"imgs"][:300]}
    write_npy(path, raw)


def _miscounted(raw, path):
    raw["user_train"][8] = raw["user_train"][8][1:]
    write_npy(path, raw)


@pytest.mark.parametrize(("make", "rule"), [(_truncated, "truncated or not a pickled .npy file"),
                                            (_bad_jpeg, "item 17: image cannot be decoded"),
                                            (_miscounted, "the file has users 30, items 120, interactions")])
def test_a_failed_import_is_one_line_naming_the_file_and_leaves_nothing(world, make, rule):
    raw, _, tmp = world
    bad = tmp / "AmazonMenWithImgPartitioned-bad.npy"
    make(raw, bad)
    line = _error(run("data", "import", "--protocol", NAME, bad))
    assert line.startswith(f"Error: {bad}: ") and rule in line
    # a refused first import leaves no cache folder at all (not even its lock) and no copy of the file
    assert not list((tmp / "home").iterdir()) and _no_copy_of(bad, tmp / "home")
    line = _error(run("prepare", "--protocol", NAME))  # and the protocol's other steps point back at the import
    assert f"aipbench data import --protocol {NAME}" in line
    assert not list((tmp / "home").iterdir())


# SIGKILL by default (the next build removes what it left); SIGTERM (unwound on the way out) with -m slow
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow), signal.SIGKILL],
                         ids=["SIGTERM", "SIGKILL"])
def test_a_killed_import_leaves_no_build_folder_behind(world, sig):
    """SIGTERM: the build folder is removed on the way out; SIGKILL: by the next import, which succeeds."""
    raw, _, tmp = world
    photo = jpeg(np.random.default_rng(1), "rgb", (400, 400))  # one object, pickled once: a small, slow file
    raw["itemnum"], raw["Item"] = 6000, {i: {b"imgs": photo} for i in range(6000)}
    write_protocol(tmp / "protocols", NAME, raw, cold=uninteracted(raw)[:10])
    data = write_npy(tmp / "Big.npy", raw)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "aipbench", "data", "import", NAME, str(data)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((tmp / "home").glob(f"{NAME}-*/.tmp-dataset-*/images.bin")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    roots = list((tmp / "home").glob(f"{NAME}-*"))
    if sig == signal.SIGTERM:  # unwound: nothing left, not even the cache folder's lock
        assert proc.returncode == 128 + signal.SIGTERM and not roots
    else:
        (root,) = roots
        assert proc.returncode == -signal.SIGKILL and list(root.glob(".tmp-dataset-*"))
        assert not (root / "dataset").exists()
    result = run("data", "import", "--protocol", NAME, data)
    assert result.exit_code == 0, result.output
    root = _cache(tmp / "home")
    assert not list(root.glob(".tmp-*")) and (root / "dataset" / "images.bin").is_file()


def test_a_real_data_protocol_runs_end_to_end(world, test_weights, alexnet_file, monkeypatch):
    raw, data, tmp = world
    _, weights_file, weights_digest = alexnet_file
    assert run("data", "weights", weights_file).exit_code == 0
    assert run("data", "import", "--protocol", NAME, data).exit_code == 0
    prepared = run("prepare", "--protocol", NAME)
    assert prepared.exit_code == 0, prepared.output
    results = tmp / "results"
    out = results / NAME / "insa.json"
    evaluated = run("evaluate", "--skip-determinism-check", ROOT / "submissions" / "insa", "--protocol", NAME, "--rankers", "dvbpr",
                    "--items", "2", "--out", out)
    assert evaluated.exit_code == 0, evaluated.output
    doc = json.loads(out.read_text())
    assert doc["artifacts"]["dataset"]["input:AmazonMenWithImgPartitioned.npy"] == sha256_file(data)
    assert doc["artifacts"]["extractor"][f"input:{test_weights.name}"] == weights_digest
    assert [r["ranker"] for r in doc["results"]] == ["dvbpr"] and doc["environment"]["device"] == "cpu"
    # the paper's setting: candidate sets over every item (a user's training items included), and
    # `--items 2` the protocol's seeded-random subset, not the two lowest cold ids
    from aipbench.pipeline.prepared import Prepared

    prep = Prepared(NAME, device="cpu", log=lambda m: None)
    ds = prep.dataset
    assert any(np.isin(ds.user_train_items(u), prep.base_sets[u, :-1]).any() for u in range(ds.n_users))
    evaluated = sorted(set(pd.read_csv(out.with_suffix(".items.csv"))["item"]))
    assert evaluated == prep.cold_subset(2).tolist() != ds.cold_items[:2].tolist()
    site = tmp / "site"
    built = run("leaderboard", "build", "--results", results, "--out", site)
    assert built.exit_code == 0, built.output
    page = (site / f"protocol-{NAME}.html").read_text()
    assert sha256_file(data) in page
    # the author's own results: labelled as such, never as the project's references; no paper columns
    assert 'class="text status">own<' in page and 'class="text status">reference<' not in page
    assert "paper, real data" not in page

    # a document made from another copy of the data file is never mixed in under the same name
    from aipbench.results.document import seal

    other = dict(doc, submission={**doc["submission"], "name": "insa-other"})
    other["artifacts"] = {**doc["artifacts"], "dataset": {**doc["artifacts"]["dataset"],
                                                         "input:AmazonMenWithImgPartitioned.npy": "ab" * 32}}
    (results / NAME / "insa-other.json").write_text(json.dumps(seal(other)))
    for suffix in (".items.csv", ".examples.png"):  # its sealed files beside it, as `evaluate` writes them
        (results / NAME / f"insa-other{suffix}").write_bytes(out.with_suffix(suffix).read_bytes())
    line = _error(run("leaderboard", "build", "--results", results, "--out", site))
    assert "ab" * 32 in line and sha256_file(data) in line and "one protocol, one data file" in line
    for suffix in (".json", ".items.csv", ".examples.png"):
        (results / NAME / f"insa-other{suffix}").unlink()

    # results of a protocol this machine does not know: one line, with the way to make it known
    monkeypatch.delenv("AIPBENCH_PROTOCOLS")
    line = _error(run("leaderboard", "build", "--results", results, "--out", site))
    assert f"protocol '{NAME}' is not found" in line and "AIPBENCH_PROTOCOLS" in line


def _settings(table: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_a_protocol_of_another_file_changes_only_what_the_docs_say_may_change(world):
    """The protocol the author's path above runs is amazon-men-v1 with the settings docs/real-data.md lists as
    those another file may change — and nothing else (the extractor stays torchvision-alexnet)."""
    import fnmatch
    import re
    import tomllib

    _, _, tmp = world
    docs = (ROOT / "docs" / "real-data.md").read_text()
    table = docs.split("<!-- settings another file may change -->")[1].split("<!-- end settings -->")[0]
    allowed = [name for row in table.splitlines()[3:] for name in re.findall(r"`([\w.*]+)`", row.split("|")[1])]
    ours = _settings(tomllib.loads((tmp / "protocols" / f"{NAME}.toml").read_text()))
    paper = _settings(tomllib.loads((ROOT / "protocols" / "amazon-men-v1.toml").read_text()))
    changed = sorted(k for k in ours.keys() | paper.keys() if ours.get(k) != paper.get(k) and k != "protocol.description")
    assert changed and ours["rankers.extractor.kind"] == "torchvision-alexnet"
    assert [k for k in changed if not any(fnmatch.fnmatch(k, a) for a in allowed)] == []
