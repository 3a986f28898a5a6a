"""leaderboard/remake.sh, the re-make of a protocol's committed entries: what it runs, in which order, and
that a later sitting resumes (finished documents skipped, the replicas prepared only while INSA's or noise's
document is missing). aipbench itself is replaced by a stand-in that logs its arguments."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# a stand-in for `python -m aipbench ...`: logs its arguments; `evaluate` writes its --out document
STAND_IN = """#!/usr/bin/env bash
shift 2
echo "$*" >> "$LOG"
if [ "$1" = evaluate ]; then
  while [ $# -gt 0 ]; do if [ "$1" = --out ]; then echo '{}' > "$2"; fi; shift; done
fi
"""


def _sitting(tmp_path: Path, protocol: str = "synthetic-v2") -> list[str]:
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    stand_in = tmp_path / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    env = {**os.environ, "PYTHON": str(stand_in), "LOG": str(log)}
    subprocess.run(["bash", str(REPO / "leaderboard" / "remake.sh"), protocol, str(tmp_path / "out")],
                   cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return log.read_text().splitlines()


def _documents(folder: Path) -> dict[str, dict]:
    """A protocol folder's JSON documents by name."""
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


def _evaluated(calls: list[str]) -> list[str]:
    return [c.split()[1].removeprefix("submissions/") for c in calls if c.startswith("evaluate")]


def test_a_first_sitting_prepares_the_replicas_and_makes_every_entry(tmp_path):
    calls = _sitting(tmp_path)
    assert calls[0] == "prepare synthetic-v2 --replicas 3"
    assert _evaluated(calls) == ["insa", "noise", "c-sema", "hook-copy", "taamr-fgsm", "taamr-pgd20", "expa", "amr",
                                 "bit-depth", "jpeg", "detector", "nes", "examples/visual-mf"]
    assert any(c.startswith("evaluate submissions/nes --protocol synthetic-v2 --items 100 ") for c in calls)
    insa = next(c for c in calls if c.startswith("evaluate submissions/insa"))
    assert "--eps 4,8,16,32 --replicas 3" in insa and insa.endswith(f"--out {tmp_path}/out/synthetic-v2/insa.json")
    assert calls[-2:] == [f"reproduce all --protocol synthetic-v2 --results {tmp_path}/out",
                          f"leaderboard check --results {tmp_path}/out"]


def test_a_later_sitting_skips_what_is_done_and_prepares_replicas_only_if_needed(tmp_path):
    _sitting(tmp_path)
    again = _sitting(tmp_path)
    assert again[0] == "prepare synthetic-v2" and _evaluated(again) == []
    (tmp_path / "out" / "synthetic-v2" / "jpeg.json").unlink()
    assert _evaluated(_sitting(tmp_path)) == ["jpeg"]
    (tmp_path / "out" / "synthetic-v2" / "noise.json").unlink()
    calls = _sitting(tmp_path)
    assert calls[0] == "prepare synthetic-v2 --replicas 3" and _evaluated(calls) == ["noise"]


def test_synthetic_v1_is_remade_on_one_replica_and_its_defenses_on_three_rankers(tmp_path):
    calls = _sitting(tmp_path, "synthetic-v1")
    assert calls[0] == "prepare synthetic-v1" and not any("--replicas" in c for c in calls)
    assert all("--rankers alexrank,vbpr,dvbpr" in c for c in calls if any(f"/{d} " in c for d in ("jpeg", "detector")))


def _remade_folder(tmp_path: Path, protocol: str, build: dict | None = None) -> dict[str, dict]:
    """The committed re-made folder of ``protocol``, checked as remake.sh leaves it: `leaderboard check` (schema,
    seals, one build per protocol), every entry remake.sh makes, every reproduction, each artifact's SHA-256 the
    same in every document and in ``build`` (default: INSA's document), and INSA's 4 budgets on 4 rankers over
    all 1,000 cold items with intervals around their HR@5. Returns the entries by name."""
    from aipbench.leaderboard.intake import check_entries
    from aipbench.reproduce import EXPERIMENTS

    folder = REPO / "leaderboard" / "results" / protocol
    assert check_entries(folder.parent)["reference"] >= 11
    docs = _documents(folder)
    assert sorted(docs) == sorted(Path(s).name for s in _evaluated(_sitting(tmp_path, protocol)))
    reproductions = _documents(folder / "reproduce")
    assert sorted(reproductions) == sorted(EXPERIMENTS)
    build = build or docs["insa"]["artifacts"]
    for doc in [*docs.values(), *reproductions.values()]:
        shared = set(doc["artifacts"]) & set(build)
        assert {"dataset", "candidates"} <= shared and shared & {"alexrank", "vbpr", "dvbpr", "amr", "extractor"}
        assert all(doc["artifacts"][step] == build[step] for step in shared)
    insa = docs["insa"]
    assert sorted({(r["ranker"], r["epsilon"]) for r in insa["results"]}) == sorted(
        (r, e) for r in ("alexrank", "vbpr", "dvbpr", "amr") for e in (4, 8, 16, 32))
    for row in insa["results"]:
        assert row["n_items"] == 1000
        for side in ("cooperative", "adversarial"):
            low, high = row["intervals"][side]["hr"]["5"]
            assert low <= row[side]["hr"]["5"] <= high
    return docs


def test_the_committed_synthetic_v2_folder_is_one_build_with_the_blackbox_comparison(tmp_path):
    """leaderboard/results/synthetic-v2/, re-made by remake.sh over several sittings, on the build of
    leaderboard/blackbox/, prepared in another sitting (the artifacts' SHA-256s equal); INSA ran on 3 replicas
    and raised no flag, and its per-item rows on the blackbox comparison's 100 items equal that comparison's
    (the same images, made from another item set)."""
    blackbox = REPO / "leaderboard" / "blackbox" / "synthetic-v2"
    docs = _remade_folder(tmp_path, "synthetic-v2", json.loads((blackbox / "insa.json").read_text())["artifacts"])
    assert all(row["replicas"]["count"] == 3 and row["flags"] == [] for row in docs["insa"]["results"])
    rows = {(r["item"], r["ranker"], r["epsilon"]): r
            for r in csv.DictReader((REPO / "leaderboard" / "results" / "synthetic-v2" / "insa.items.csv").open())}
    subset = list(csv.DictReader((blackbox / "insa.items.csv").open()))
    assert len(subset) == 400 and all(rows[r["item"], r["ranker"], r["epsilon"]] == r for r in subset)


def test_the_committed_synthetic_v1_folder_is_one_build_with_intervals_and_flags(tmp_path):
    """leaderboard/results/synthetic-v1/, re-made by remake.sh in two sittings on one replica: every document
    records its intervals and checks, every row its flags, and the two reliability findings of this build are
    there (the AMR defense's clean cost, the detector's false alarms)."""
    docs = _remade_folder(tmp_path, "synthetic-v1")
    assert all("replicas" not in row for row in docs["insa"]["results"])
    for doc in docs.values():
        assert doc["protocol"]["name"] == "synthetic-v1" and {"checks", "intervals"} <= set(doc)
        assert all("flags" in row for row in doc["results"])
    raised = {(name, flag["flag"]) for name, doc in docs.items() for row in doc["results"] for flag in row["flags"]}
    assert {("amr", "clean-cost"), ("detector", "detector-false-alarms")} <= raised


def test_the_committed_synthetic_v2_model_table_holds_the_paper_rankers_and_the_example(tmp_path):
    """synthetic-v2's protocol page ranks five models — the paper's four from the committed attack entries, every
    knowledge level judged (the black-box one by NES's entry on 100 cold items, said beside it), and the example
    ranker submission from its robustness document — each by its worst case."""
    import shutil

    from aipbench.leaderboard.render import build_site

    folder = REPO / "leaderboard" / "results" / "synthetic-v2"
    results = tmp_path / "results"
    shutil.copytree(folder, results / "synthetic-v2", ignore=shutil.ignore_patterns("reproduce"))
    build_site(results, tmp_path / "site")
    models = {m["name"]: m for m in json.loads((tmp_path / "site" / "protocol-synthetic-v2-models.json").read_text())}
    assert sorted(models) == ["alexrank", "amr", "dvbpr", "vbpr", "visual-mf"]
    levels = ("insider", "expert", "semantic", "classifier", "blackbox")
    insa = json.loads((folder / "insa.json").read_text())
    for name in ("alexrank", "vbpr", "dvbpr", "amr"):
        model = models[name]
        assert model["paper_ranker"] and all(model[f"{level}_hr"] is not None for level in levels)
        assert (model["blackbox_attack"], model["blackbox_items"], model["insider_items"]) == ("nes", 100, 1000)
        assert model["insider_hr"] == next(r["adversarial"]["hr"]["5"] for r in insa["results"]
                                           if r["ranker"] == name and r["epsilon"] == 32)
        assert model["worst_case_hr"] == max(model[f"{level}_hr"] for level in levels)
    example = json.loads((folder / "visual-mf.json").read_text())
    mine = models["visual-mf"]
    assert not mine["paper_ranker"] and mine["worst_case_hr"] == example["robustness"]["score"]
    assert mine["test_auc"] == example["clean"]["test_auc"] and all(mine[f"{level}_hr"] is not None for level in levels)
    assert sorted(m["rank"] for m in models.values()) == [1, 2, 3, 4, 5]
    page = (tmp_path / "site" / "protocol-synthetic-v2.html").read_text()
    assert "nes, 100 items" in page and "(100 cold items)" in page
