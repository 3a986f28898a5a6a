"""The leaderboard's intake as a forger or a hostile submitter finds it: every row re-derived from its per-item
CSV, the CSV holding exactly a set of cold items the protocol defines (and `verify` drawing from that set,
never from the entry's file), plain names checked before any path is built, the files beside a document
regular files, JSON read strictly, spreadsheet formulas never filed or written. Each through the command
line: one ``Error:`` line naming the rule, nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_document, one_error, rederived, run_cli

from aipbench.results.document import items_csv, seal


@pytest.fixture
def foreign(tiny_documents, tmp_path):
    return copy_document(tiny_documents["insa"], tmp_path / "theirs")


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*")) if folder.exists() else []


def _reseal(path: Path, doc: dict, csv: bytes | None = None) -> None:
    if csv is not None:
        path.with_suffix(".items.csv").write_bytes(csv)
        doc["files"]["items.csv"] = hashlib.sha256(csv).hexdigest()
    path.write_text(json.dumps(seal(doc)))


def _add(path: Path, results: Path, home: Path, rule: str) -> str:
    line = one_error(run_cli(["leaderboard", "add", str(path), "--results", str(results)], home), rule)
    assert _files(results) == []
    return line


def test_an_entry_that_drops_its_bad_items_is_refused_and_not_verified(foreign, tiny_rankers, tmp_path):
    """A forger drops the items INSA did worst on from the CSV and re-derives every row from the rest, so the
    document agrees with its CSV: the CSV no longer holds the protocol's cold items (refused at intake), and
    `verify` of it filed by hand draws from the protocol's cold items, not the CSV's, and fails."""
    home = tiny_rankers.root.parent
    items = pd.read_csv(foreign.with_suffix(".items.csv"))
    worst = items[items.ranker == "vbpr"].nsmallest(8, "adversarial_hr@5")["item"]
    kept = items[~items["item"].isin(worst)]
    _reseal(foreign, rederived(json.loads(foreign.read_text()), kept), items_csv(kept))
    doc = json.loads(foreign.read_text())
    assert doc["results"][0]["n_items"] == 32
    _add(foreign, tmp_path / "results", home, "the per-item CSV must hold exactly protocol tiny's subset of 32 cold "
                                              "items; item")
    filed = copy_document(foreign, tmp_path / "by-hand" / "tiny")  # a pull request that adds the files itself
    one_error(run_cli(["leaderboard", "check", "--results", str(tmp_path / "by-hand")], home), "must hold exactly")
    failed = run_cli(["verify", str(filed), "--draw", "12", "--seed", "0", "--unsandboxed"], home)
    assert failed.exit_code == 1 and "verification failed" in failed.output, failed.output
    record = json.loads((filed.parent / "verifications" / "insa.json").read_text())
    assert not record["passed"] and "(not in the entry's CSV)" in {d["column"] for d in record["differences"]}
    assert set(record["items"]) & set(worst.tolist())  # drawn from the protocol's set, dropped items included


def test_rows_that_claim_more_than_their_items_areone_error(foreign, tiny_rankers, tmp_path):
    doc = json.loads(foreign.read_text())
    doc["results"][0]["adversarial"]["hr"]["5"] = 0.9
    doc["results"][0]["delta"]["hr"]["5"] = 0.9 - doc["results"][0]["cooperative"]["hr"]["5"]
    _reseal(foreign, doc)
    _add(foreign, tmp_path / "results", tiny_rankers.root.parent,
         "its per-item CSV contradicts it: vbpr eps=32: adversarial.hr.5 0.9 but its items give")


@pytest.mark.parametrize(("where", "value", "rule"), [
    ("protocol", "../../escaped/tiny.toml", "protocol name '../../escaped/tiny.toml' is not a plain name"),
    ("ranker", "../vbpr", "ranker '../vbpr' is not a plain name"),
    ("submission", "insa\n", "submission name 'insa\\n' is not a plain name"),
])
def test_a_name_that_would_be_a_path_is_refused_before_any_path_is_built(foreign, tiny_rankers, tmp_path, where,
                                                                         value, rule):
    doc = json.loads(foreign.read_text())
    if where == "protocol":
        doc["protocol"]["name"] = value
    elif where == "ranker":
        doc["results"][0]["ranker"] = value
    else:
        doc["submission"]["name"] = value
    _reseal(foreign, doc)
    _add(foreign, tmp_path / "deep" / "results", tiny_rankers.root.parent, rule)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep").exists()
    # filed by hand, the site's build says so in one line (it once crashed on the whole site)
    filed = copy_document(foreign, tmp_path / "by-hand" / "tiny", "insa")
    one_error(run_cli(["leaderboard", "build", "--results", str(filed.parent.parent), "--out", str(tmp_path / "site")],
                  tiny_rankers.root.parent), rule)
    assert not (tmp_path / "site").exists()


def test_the_files_beside_a_document_are_regular_files_and_the_sheet_a_png(tiny_documents, tiny_rankers, tmp_path):
    home, secret = tiny_rankers.root.parent, tmp_path / "maintainers-key.png"
    foreign = copy_document(tiny_documents["insa"], tmp_path / "theirs")
    sheet = foreign.with_suffix(".examples.png")
    secret.write_bytes(sheet.read_bytes())
    sheet.unlink()
    sheet.symlink_to(secret)  # the maintainer's file, published as an inline image if followed
    _add(foreign, tmp_path / "results", home, "examples.png: a symbolic link; links are not followed")
    sheet.unlink()
    sheet.write_bytes(b"#!/bin/sh\necho not an image\n")
    doc = json.loads(foreign.read_text())
    doc["files"]["examples.png"] = hashlib.sha256(sheet.read_bytes()).hexdigest()
    _reseal(foreign, doc)
    _add(foreign, tmp_path / "results", home, "examples.png: not a PNG image")
    foreign = copy_document(tiny_documents["insa"], tmp_path / "again")
    csv = foreign.with_suffix(".items.csv")
    os.replace(csv, tmp_path / "elsewhere.csv")
    csv.symlink_to(tmp_path / "elsewhere.csv")
    _add(foreign, tmp_path / "results", home, "items.csv: a symbolic link")


@pytest.mark.parametrize(("text", "rule"), [
    ('{"sha256": NaN}', "NaN is not a JSON number"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"a": 1, "a": 2}', "key 'a' is given twice"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than JSON may be read here"),
    ('{"a": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than JSON may be read here (64 levels)"),
])
def test_json_is_read_strictly(tiny_rankers, tmp_path, text, rule):
    path = tmp_path / "insa.json"
    path.write_text(text)
    _add(path, tmp_path / "results", tiny_rankers.root.parent, rule)


@pytest.mark.parametrize(("column", "value", "rule"), [
    ("ranker", "=HYPERLINK(\"http://x.invalid\",\"vbpr\")", "of the per-item CSV is none of the document's rows'"),
    ("psnr", "+cmd|' /C calc'!A0", "column 'psnr' of the per-item CSV holds text"),
    ("ssim", "@SUM(1+1)*cmd|' /C calc'!A0", "column 'ssim' of the per-item CSV holds text"),
])
def test_spreadsheet_formulas_are_never_filed(foreign, tiny_rankers, tmp_path, column, value, rule):
    items = pd.read_csv(foreign.with_suffix(".items.csv"))
    items[column] = items[column].astype(object)
    items.loc[0, column] = value
    _reseal(foreign, json.loads(foreign.read_text()), items.to_csv(index=False, float_format="%.6g").encode())
    _add(foreign, tmp_path / "results", tiny_rankers.root.parent, rule)


def test_a_csv_aipbench_writes_neutralises_formulas_and_keeps_numbers():
    frame = pd.DataFrame({"name": ["=1+1", "+cmd", "-x", "@SUM(A1)", "\tx", "vbpr"], "value": [-0.5, 1, 2, 3, 4, 5]})
    text = items_csv(frame).decode()
    assert text.splitlines()[1:] == ["'=1+1,-0.5", "'+cmd,1", "'-x,2", "'@SUM(A1),3", "'\tx,4", "vbpr,5"]


def test_a_held_out_build_scores_an_entry_and_the_site_ranks_by_it(tiny_documents, tiny_rankers, tmp_path):
    """`prepare --seed-file` makes the protocol's held-out build — the same data set and cold items, Φ as
    published, other training seeds, so other BPR candidates and rankers; `verify --held-out` re-runs the entry
    there on the items it evaluated and records the score, the seed file's hash and the build; the site shows it
    and ranks by it; a score from another held-out build is refused."""
    home = tmp_path / "home"
    shutil.copytree(tiny_rankers.root, home / tiny_rankers.root.name)  # the public build, as the maintainers have it
    short = tmp_path / "short.seed"
    short.write_bytes(b"123")
    one_error(run_cli(["prepare", "--protocol", "tiny", "--seed-file", str(short)], home), "a seed file holds at least 16 secret bytes")
    secret = tmp_path / "maintainers.seed"
    secret.write_bytes(os.urandom(32))
    built = run_cli(["prepare", "--protocol", "tiny", "--only", "vbpr", "--seed-file", str(secret)], home)
    assert built.exit_code == 0, built.output
    public, (held,) = tiny_rankers.root, [p for p in home.iterdir() if p != home / tiny_rankers.root.name]
    results = tmp_path / "results"
    copy_document(tiny_documents["insa"], results / "tiny")
    entry = copy_document(tiny_documents["noise"], results / "tiny")  # the cheapest entry to re-run
    scored = run_cli(["verify", str(entry), "--held-out", str(secret), "--unsandboxed", "--by", "maintainer"], home)
    assert scored.exit_code == 0, scored.output
    manifests = [json.loads((p / "manifest.json").read_text())["artifacts"] for p in (public, held)]
    for step in ("dataset", "extractor"):  # the public data and the public image model
        assert manifests[0][step]["files"] == manifests[1][step]["files"]
    for step in ("bpr", "candidates", "vbpr", "dvbpr"):  # the platform's private training
        assert manifests[0][step]["files"] != manifests[1][step]["files"]
    record = json.loads((results / "tiny" / "held-out" / "noise.json").read_text())
    assert record["held_out"]["seed_file_sha256"] == hashlib.sha256(secret.read_bytes()).hexdigest()
    assert record["entry_sha256"] == json.loads(entry.read_text())["sha256"] and record["scored_by"] == "maintainer"
    assert [(r["ranker"], r["n_items"]) for r in record["results"]] == [("vbpr", 40), ("dvbpr", 40)]
    assert record["held_out"]["artifacts"]["vbpr"] == manifests[1]["vbpr"]["files"]  # the held-out build's
    site = tmp_path / "site"
    assert run_cli(["leaderboard", "build", "--results", str(results), "--out", str(site)], home).exit_code == 0
    rows = pd.read_csv(site / "protocol-tiny-vbpr.csv").set_index("name")
    # its held-out score is shown; noise is the lower control, so it is listed after the attacks and never ranked
    # (an attack scored there ranks first, by that score: aipbench.leaderboard.render._group)
    assert list(rows.index) == ["insa", "noise"] and rows.loc["noise", "held_out"] == pytest.approx(record["results"][0]["delta_hr"])
    assert pd.isna(rows.loc["insa", "held_out"]) and rows.loc["insa", "rank"] == 1 and pd.isna(rows.loc["noise", "rank"])
    other = json.loads(json.dumps(record))
    other["held_out"]["seed_file_sha256"] = "0" * 64
    insa = json.loads((results / "tiny" / "insa.json").read_text())
    (results / "tiny" / "held-out" / "insa.json").write_text(json.dumps({**other, "entry_sha256": insa["sha256"]}))
    one_error(run_cli(["leaderboard", "build", "--results", str(results), "--out", str(tmp_path / "site2")], home),
             "a held-out score of another held-out build")
