"""Entries from outside: `leaderboard add` files a foreign document as claimed, `verify` re-runs it item by item,
`submission package` makes the maintainer's archive, and the CI workflow and issue templates run real commands."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import copy_document, one_error, rederived, run_cli

from aipbench.results.document import items_csv, seal

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def foreign(tiny_documents, tmp_path):
    """Someone else's `aipbench evaluate` of the reference INSA on tiny (VBPR and DVBPR, all 40 cold items), in
    their own folder, with the files beside it."""
    return copy_document(tiny_documents["insa"], tmp_path / "made-elsewhere")




def test_a_foreign_document_is_added_as_claimed(foreign, tiny_rankers, tmp_path):
    results, home = tmp_path / "results", tiny_rankers.root.parent
    result = run_cli(["leaderboard", "add", str(foreign), "--results", str(results)], home)
    assert result.exit_code == 0, result.output
    filed = results / "tiny" / "insa.json"
    assert filed.read_bytes() == foreign.read_bytes()
    assert (results / "tiny" / "insa.items.csv").read_bytes() == foreign.with_suffix(".items.csv").read_bytes()
    record = json.loads((results / "tiny" / "claimed" / "insa.json").read_text())
    assert record["status"] == "claimed" and record["entry_sha256"] == json.loads(foreign.read_text())["sha256"]
    assert run_cli(["leaderboard", "check", "--results", str(results)], home).output.startswith(
        "ok: 1 entries (0 verified, 0 reference, 0 own, 1 claimed")
    site = tmp_path / "site"
    assert run_cli(["leaderboard", "build", "--results", str(results), "--out", str(site)]).exit_code == 0
    page = (site / "protocol-tiny.html").read_text()
    assert 'id="vbpr-insa" class="status-claimed"' in page and "protocol-file-tiny.html" in page
    rows = pd.read_csv(site / "protocol-tiny-vbpr.csv")
    assert rows.loc[0, "status"] == "claimed" and rows.loc[0, "name"] == "insa"
    assert json.loads((site / "protocol-tiny-vbpr.json").read_text())[0]["delta_ci"][0] <= rows.loc[0, "delta"]
    # the same document again, or one with the same name: refused, nothing changes
    before = sorted(p.name for p in (results / "tiny").rglob("*"))
    one_error(run_cli(["leaderboard", "add", str(foreign), "--results", str(results)], home), "already filed")
    assert sorted(p.name for p in (results / "tiny").rglob("*")) == before


@pytest.mark.parametrize(("damage", "rule"), [
    ("edit", "content does not match its sha256"),  # a number changed without re-sealing
    ("csv", "items.csv: SHA-256 does not match"),  # the per-item CSV swapped
    ("csv-resealed", "lacks column(s) adversarial_hr@5"),  # a malformed CSV, re-sealed with the document
    ("budget", "exceeds the budget"),  # re-sealed with a row over its budget
    ("name", "submission name '../insa' is not a plain name"),  # a name that would be a path
    ("artifacts", "artifact hashes differ"),  # measured on other trained rankers than the filed entry
])
def test_a_bad_foreign_document_is_refused_with_one_line(foreign, tiny_rankers, tmp_path, damage, rule):
    results, home = tmp_path / "results", tiny_rankers.root.parent
    path = copy_document(foreign, tmp_path / "theirs")
    doc = json.loads(path.read_text())
    if damage == "edit":
        doc["results"][0]["adversarial"]["hr"]["5"] = 0.9
    elif damage == "csv":
        path.with_suffix(".items.csv").write_text(path.with_suffix(".items.csv").read_text().replace(",vbpr,", ",dvbpr,", 1))
    elif damage == "csv-resealed":
        csv = path.with_suffix(".items.csv")
        csv.write_text(csv.read_text().replace("adversarial_hr@5", "adv"))
        doc["files"]["items.csv"] = hashlib.sha256(csv.read_bytes()).hexdigest()
        doc = seal(doc)
    elif damage == "budget":
        doc["results"][0]["image_quality"]["max_linf"] = 40
        doc = seal(doc)
    elif damage == "name":
        doc["submission"]["name"] = "../insa"
        doc = seal(doc)
    elif damage == "artifacts":
        assert run_cli(["leaderboard", "add", str(foreign), "--results", str(results)], home).exit_code == 0
        doc["submission"]["name"] = "insa2"
        doc["artifacts"]["vbpr"] = {k: "0" * 64 for k in doc["artifacts"]["vbpr"]}
        doc = seal(doc)
    path.write_text(json.dumps(doc))
    before = sorted(str(p) for p in results.rglob("*")) if results.exists() else []
    one_error(run_cli(["leaderboard", "add", str(path), "--results", str(results)], home), rule)
    assert (sorted(str(p) for p in results.rglob("*")) if results.exists() else []) == before


def test_verify_passes_an_honest_entry_and_fails_a_resealed_edit(foreign, tiny_rankers, tmp_path):
    home = tiny_rankers.root.parent
    results = tmp_path / "results"
    assert run_cli(["leaderboard", "add", str(foreign), "--results", str(results)], home).exit_code == 0
    filed = results / "tiny" / "insa.json"
    honest = run_cli(["verify", str(filed), "--items", "4", "--seed", "3", "--by", "tester", "--unsandboxed"], home)
    assert honest.exit_code == 0, honest.output
    record = json.loads((results / "tiny" / "verifications" / "insa.json").read_text())
    assert record["passed"] and record["verified_by"] == "tester" and len(record["items"]) == 4
    assert record["rankers"] == ["vbpr", "dvbpr"] and record["max_difference"] <= 0.01
    assert record["entry_sha256"] == json.loads(filed.read_text())["sha256"]
    assert run_cli(["leaderboard", "check", "--results", str(results)], home).output.startswith("ok: 1 entries (1 verified")

    # a forger raises its adversarial hit rates by 0.05 on every item, re-derives every row from the edited CSV
    # (means, deltas, lifts, intervals) and re-seals: every static check passes, only the re-run can tell
    forged = tmp_path / "forged"
    path = copy_document(foreign, forged)
    per_item = pd.read_csv(path.with_suffix(".items.csv"))
    per_item["adversarial_hr@5"] += 0.05
    csv = items_csv(per_item)
    path.with_suffix(".items.csv").write_bytes(csv)
    doc = json.loads(path.read_text())
    doc["files"]["items.csv"] = hashlib.sha256(csv).hexdigest()
    path.write_text(json.dumps(rederived(doc, pd.read_csv(path.with_suffix(".items.csv")))))
    added = run_cli(["leaderboard", "add", str(path), "--results", str(tmp_path / "r2")], home)
    assert added.exit_code == 0, added.output
    again = tmp_path / "r2" / "tiny" / "insa.json"
    error = one_error(run_cli(["verify", str(again), "--items", "4", "--seed", "3", "--unsandboxed"], home),
                       "verification failed")
    assert "8 item numbers with the re-run" in error and "record written to" in error
    record = json.loads((tmp_path / "r2" / "tiny" / "verifications" / "insa.json").read_text())
    assert not record["passed"] and {d["column"] for d in record["differences"]} == {"adversarial_hr@5"}
    site = tmp_path / "site"
    assert run_cli(["leaderboard", "build", "--results", str(tmp_path / "r2"), "--out", str(site)]).exit_code == 0
    assert 'class="status-failed"' in (site / "protocol-tiny.html").read_text()  # shown, not deleted

    # numbers edited in the rows only (the CSV left as it was), re-sealed: the document contradicts itself
    path = copy_document(foreign, tmp_path / "rows-only")
    doc = json.loads(path.read_text())
    doc["results"][0]["adversarial"]["hr"]["5"] += 0.05
    path.write_text(json.dumps(seal(doc)))
    error = one_error(run_cli(["verify", str(path), "--items", "2", "--seed", "1", "--unsandboxed"], home), "own CSV")
    assert "1 rows disagree" in error  # and leaderboard add refuses it outright
    one_error(run_cli(["leaderboard", "add", str(path), "--results", str(tmp_path / "r3")], home),
               "its per-item CSV contradicts it: vbpr eps=32: adversarial.hr.5")


def test_verify_refuses_other_code_than_the_entrys(foreign, tmp_path):
    changed = tmp_path / "insa"
    shutil.copytree(REPO / "submissions" / "insa", changed)
    (changed / "NOTE.txt").write_text("one more file\n")
    one_error(run_cli(["verify", str(foreign), "--items", "2", "--submission", str(changed)]), "is not the entry's")


def test_the_package_holds_what_a_maintainer_needs_and_the_same_bytes_twice(foreign, tmp_path):
    out = tmp_path / "a.tar.gz"
    folder = REPO / "submissions" / "insa"
    result = run_cli(["submission", "package", str(folder), "--results", str(foreign), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(files["insa/MANIFEST.json"])
    assert manifest["results_sha256"] == json.loads(foreign.read_text())["sha256"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(files[f"insa/{name}"]).hexdigest() == digest
    assert {"insa/submission/submission.toml", "insa/results/insa.json", "insa/results/insa.items.csv",
            "insa/environment.json"} <= set(files)
    assert "torch" in json.loads(files["insa/environment.json"])["packaged_with"]["packages"]
    again = tmp_path / "b.tar.gz"
    assert run_cli(["submission", "package", str(folder), "--results", str(foreign), "--out", str(again)]).exit_code == 0
    assert again.read_bytes() == out.read_bytes()
    other = tmp_path / "expa"
    shutil.copytree(REPO / "submissions" / "expa", other)
    one_error(run_cli(["submission", "package", str(other), "--results", str(foreign), "--out", str(tmp_path / "c.tar.gz")]),
               "made by a submission with SHA-256")
    assert not (tmp_path / "c.tar.gz").exists()


def test_the_ci_workflow_runs_the_documented_checks_and_they_pass(tmp_path):
    """The workflow is valid YAML, triggers on results in pull requests, and its commands (run here, as CI would,
    on this checkout's committed leaderboard) pass."""
    flow = yaml.safe_load((REPO / ".github" / "workflows" / "leaderboard.yml").read_text())
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads a bare `on:` as true
    assert "leaderboard/results/**" in triggers["pull_request"]["paths"]
    runs = [step["run"] for job in flow["jobs"].values() for step in job["steps"] if "run" in step]
    assert runs[0] == "python -m pip install --quiet -e ."  # the README's install, in CI's own Python
    commands = [r for r in runs if r.startswith("aipbench ")]
    assert commands == ["aipbench leaderboard check", "aipbench leaderboard build --out site"]
    aipbench = Path(sys.executable).parent / "aipbench"
    for command in commands:
        done = subprocess.run([str(aipbench), *command.split()[1:]], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "protocol-file-synthetic-v2.html").is_file()


def test_the_issue_templates_name_commands_that_exist():
    for template in (REPO / ".github" / "ISSUE_TEMPLATE").glob("new-*.yml"):
        form = yaml.safe_load(template.read_text())
        assert form["name"] and form["body"], template
        text = template.read_text() + (REPO / "CONTRIBUTING.md").read_text()
        commands = set(re.findall(r"aipbench ((?:leaderboard|submission) \w+|verify|evaluate)", text))
        assert {"leaderboard add", "submission package", "evaluate"} <= commands
        for command in commands:
            assert run_cli([*command.split(), "--help"]).exit_code == 0, command
