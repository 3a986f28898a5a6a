"""Ranker submissions (``kind = "ranker"``): anyone's recommender trained in its sandbox and judged by the
reference attacks — the example of docs/rankers.md on tiny with its numbers pinned, the harness never
importing a submission, and hostile rankers refused in one line through the command line."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cache_snapshot, evaluate_refused, leftovers, run_cli, sandbox_marker

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "submissions" / "examples" / "visual-mf"
needs_sandbox = sandbox_marker()


@pytest.fixture
def home(private_home):
    return private_home


def _ranker(tmp_path: Path, body: str, *, name: str = "hostile-ranker") -> Path:
    """A ranker submission: the example's VisualMF with ``body`` (Python) appended to its module."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "submission.toml").write_text((EXAMPLE / "submission.toml").read_text().replace('"visual-mf"', f'"{name}"'))
    (folder / "ranker.py").write_text((EXAMPLE / "ranker.py").read_text() + "\n" + body)
    return folder


@needs_sandbox
def test_the_example_ranker_is_trained_in_its_sandbox_and_judged_by_the_attacks(home, tmp_path, tiny_documents):
    """docs/rankers.md's example on tiny: trained once (then reused), its clean quality, INSA through its own
    gradients and hook-copy's control, the worst case, and its numbers pinned (tolerance 1e-4); nothing of the
    submission ever imported by the harness."""
    out = tmp_path / "r.json"
    args = ["evaluate", str(EXAMPLE), "--protocol", "tiny", "--attacks", "insa,hook-copy", "--eps", "32", "--items", "10"]
    first = run_cli([*args, "--out", str(out)], home)
    assert first.exit_code == 0, first.output
    doc = json.loads(out.read_text())
    assert doc["kind"] == "ranker" and doc["ranker"]["image_model"] == "extractor" and not doc["ranker"]["reused"]
    assert doc["clean"]["test_auc"] == pytest.approx(0.5787, abs=1e-4)
    insa = doc["attacks"]["insa"]["results"][0]
    assert insa["ranker"] == "visual-mf" and insa["cooperative"]["hr"]["5"] == pytest.approx(0.004, abs=1e-4)
    assert insa["adversarial"]["hr"]["5"] == pytest.approx(0.4217, abs=1e-4) and insa["hr_test"]["significant"]
    assert doc["robustness"]["worst_case"]["attack"] == "insa" and doc["attacks"]["hook-copy"]["control"]
    assert not any(m.startswith("aipbench_ranker_") for m in sys.modules)  # never imported here
    again = run_cli([*args, "--out", str(tmp_path / "again.json")], home)
    second = json.loads((tmp_path / "again.json").read_text())
    assert again.exit_code == 0 and second["ranker"]["reused"]
    assert second["ranker"]["checkpoint_sha256"] == doc["ranker"]["checkpoint_sha256"]
    assert second["attacks"]["insa"]["results"][0]["adversarial"] == insa["adversarial"]
    _filed_and_shown(home, tmp_path, out, doc, tiny_documents)


def _filed_and_shown(home: Path, tmp_path: Path, out: Path, doc: dict, tiny_documents: dict) -> None:
    """The robustness document filed on a leaderboard beside the paper rankers' attack entries: its rows re-derived
    from its per-item CSV (an edited row refused, naming the attack), the model table ranking it with them."""
    from conftest import copy_document, one_error

    from aipbench.leaderboard.render import build_site
    from aipbench.results.document import seal

    results = tmp_path / "results"
    copy_document(tiny_documents["insa"], results / "tiny")  # the reference INSA: VBPR's and DVBPR's rows
    forged = json.loads(out.read_text())
    forged["attacks"]["insa"]["results"][0]["adversarial"]["hr"]["5"] = 0.9
    bad = tmp_path / "forged" / "visual-mf.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(seal({k: v for k, v in forged.items() if k != "sha256"})))
    bad.with_suffix(".items.csv").write_bytes(out.with_suffix(".items.csv").read_bytes())
    one_error(run_cli(["leaderboard", "add", str(bad), "--results", str(results)], home),
              "its per-item CSV contradicts it: insa: visual-mf eps=32: adversarial.hr.5 0.9")
    added = run_cli(["leaderboard", "add", str(out), "--results", str(results)], home)
    assert added.exit_code == 0, added.output
    assert run_cli(["leaderboard", "check", "--results", str(results)], home).exit_code == 0
    site = tmp_path / "site"
    build_site(results, site)
    page = (site / "protocol-tiny.html").read_text()
    assert 'id="model-visual-mf"' in page and "submission-tiny-visual-mf.html" in page
    models = {m["name"]: m for m in json.loads((site / "protocol-tiny-models.json").read_text())}
    assert sorted(models) == ["dvbpr", "vbpr", "visual-mf"]
    mine = models["visual-mf"]
    assert mine == {**mine, "status": "claimed", "paper_ranker": False, "worst_case_attack": "insa",
                    "worst_case_hr": doc["robustness"]["score"], "insider_hr": doc["robustness"]["score"],
                    "blackbox_hr": None, "test_hr": doc["clean"]["test_hr"]["5"]}
    reference = json.loads(tiny_documents["insa"].read_text())
    vbpr = next(r for r in reference["results"] if r["ranker"] == "vbpr" and r["epsilon"] == 32)
    assert models["vbpr"]["paper_ranker"] and models["vbpr"]["insider_hr"] == vbpr["adversarial"]["hr"]["5"]
    assert [m["rank"] for m in sorted(models.values(), key=lambda m: m["worst_case_hr"])] == [1, 2, 3]
    assert "hook-copy (control)" in (site / "submission-tiny-visual-mf.html").read_text()


@needs_sandbox
def test_a_ranker_module_is_imported_only_inside_sandboxes(home, tmp_path):
    marker = tmp_path / "imported-here.txt"
    body = textwrap.dedent(f"""
    try:  # at import: where this runs outside a sandbox, it leaves a mark
        with open({str(marker)!r}, "a") as fh:
            fh.write("imported\\n")
    except OSError:
        pass
    """)
    result = run_cli(["evaluate", str(_ranker(tmp_path, body)), "--protocol", "tiny", "--attacks", "insa", "--eps", "32",
                      "--items", "10", "--out", str(tmp_path / "r.json")], home)
    assert result.exit_code == 0, result.output
    assert not marker.exists()  # not by the harness, not by the worker, not by INSA's child


AFTER_LOAD = """
_load, _user_side = VisualMF.load.__func__, VisualMF.user_side
VisualMF.loaded = False
def load(cls, artifacts, **options):  # the model as aipbench rebuilds it from its checkpoint, not as trained
    model = _load(cls, artifacts, **options)
    model.loaded = True
    return model
VisualMF.load = classmethod(load)
"""
HOSTILE = {
    "sides of two lengths": (AFTER_LOAD + textwrap.dedent("""
    def user_side(self, users):
        side = _user_side(self, users)
        return Side(torch.cat([side.vec, side.vec], 1), side.bias) if self.loaded else side
    VisualMF.user_side = user_side
    """), "are not one row per user (300) and per catalog item (640) of one vector length"),
    "NaN scores": (AFTER_LOAD + textwrap.dedent("""
    def user_side(self, users):
        side = _user_side(self, users)
        return Side(side.vec * float("nan"), side.bias) if self.loaded else side
    VisualMF.user_side = user_side
    """), "its user or item sides are not all finite"),
    "pickled objects": (textwrap.dedent("""
    import pickle
    import aipbench.harness.ranker_submission as contract
    class Evil:  # what a checkpoint must never hold: unpickled, it would run code
        def __reduce__(self):
            return (print, ("unpickled",))
    contract.checkpoint_bytes = lambda ranker: pickle.dumps({"family": "x", "state": {"w": Evil()}, "catalog": None})
    """), "the ranker VisualMF trained: not a readable tensors-only checkpoint"),
    "reads the cache": (textwrap.dedent("""
    import glob, os
    _train = train
    def train(context):
        found = [p for p in glob.glob("/tmp/**/manifest.json", recursive=True) + glob.glob("/root/**/manifest.json",
                 recursive=True) if os.access(p, os.R_OK)]
        if found:
            raise RuntimeError(f"read {found[0]}")
        return _train(context)
    """), None),
    "training never returns": (textwrap.dedent("""
    import time
    def train(context):
        time.sleep(600)
    """), "VisualMF.train (training) ran past its time limit of 4 s"),
    "encode never returns": (textwrap.dedent("""
    import time
    VisualMF.encode = lambda self, images: time.sleep(600)
    """), "VisualMF.encode ran past its time limit of 4 s"),
    "no train": (textwrap.dedent("""
    del train
    """), "defines no train(context) -> VisualMF"),
}


@needs_sandbox
@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_ranker_is_one_line_and_leaves_nothing(home, tmp_path, case):
    body, rule = HOSTILE[case]
    before = cache_snapshot(home)
    folder = _ranker(tmp_path, body)
    extra = ("--attacks", "hook-copy", "--time-limit", "4")
    if rule is None:  # it must not find the cache: its training ends normally
        result = run_cli(["evaluate", str(folder), "--protocol", "tiny", "--items", "10", *extra[:2],
                          "--out", str(tmp_path / "r.json")], home)
        assert result.exit_code == 0, result.output
        assert cache_snapshot(home) == before and not leftovers()
        return
    evaluate_refused(home, folder, tmp_path / "r.json", rule, *extra, before=before, rankers=None)


MMREC = REPO / "submissions" / "examples" / "mmrec-vbpr"


def test_the_docs_show_the_examples_that_run():
    """docs/rankers.md shows the example submission's files as they are (the ones the tests run and pin) and
    the MMRec port's whole ranker.py."""
    page = (REPO / "docs" / "rankers.md").read_text()
    assert (EXAMPLE / "ranker.py").read_text().rstrip() in page
    assert (EXAMPLE / "submission.toml").read_text().rstrip() in page
    port = (MMREC / "ranker.py").read_text()
    assert port[port.index("from model import"):].rstrip() in page


@needs_sandbox
def test_an_mmrec_style_model_is_trained_and_judged_through_the_adapter(home, tmp_path):
    """VBPR written as an MMRec model (forward, calculate_loss, full_sort_predict), ported in a few lines: trained
    in its sandbox by its own loss, attacked by INSA through its forward pass (a new image in a cold item's
    slot); numbers pinned (tolerance 1e-4)."""
    out = tmp_path / "m.json"
    result = run_cli(["evaluate", str(MMREC), "--protocol", "tiny", "--attacks", "insa", "--eps", "32", "--items", "10",
                      "--out", str(out)], home)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    insa = doc["attacks"]["insa"]["results"][0]
    assert doc["ranker"]["instance"].startswith("mmrec-vbpr") and doc["ranker"]["side_dim"] == 32
    assert doc["clean"]["test_auc"] == pytest.approx(MMREC_PINS["test_auc"], abs=1e-4)
    assert insa["adversarial"]["hr"]["5"] == pytest.approx(MMREC_PINS["adversarial_hr5"], abs=1e-4)
    assert insa["adversarial"]["hr"]["5"] > insa["cooperative"]["hr"]["5"]


MMREC_PINS = {"test_auc": 0.5813, "adversarial_hr5": 0.101}


@needs_sandbox
def test_an_mmrec_model_that_is_not_one_product_is_refused_in_one_line(home, tmp_path):
    folder = tmp_path / "mmrec-mlp"
    shutil.copytree(MMREC, folder)
    model = (folder / "model.py").read_text()
    (folder / "model.py").write_text(model.replace("return user_e[interaction[0]] @ item_e.T",
                                                   "return torch.sigmoid(user_e[interaction[0]] @ item_e.T)"))
    evaluate_refused(home, folder, tmp_path / "r.json", "full_sort_predict is not the product of forward()'s user "
                     "and item embeddings", "--attacks", "hook-copy", rankers=None)


OWN_FAMILY_DEFENSE = '''
import types

from ranker import VisualMF, train as train_visual_mf


class OwnFamily:
    """A training defense that replaces VBPR by a ranker of its own family (VisualMF, defined in this folder)."""

    def train(self, context):
        fields = {f: getattr(context, f) for f in ("dataset", "feature_extractor", "features", "seed", "device")}
        return train_visual_mf(types.SimpleNamespace(**fields, progress=lambda done, total: None))
'''


@pytest.mark.slow  # a ranker trained in a defense worker, served by a ranker worker, attacked by INSA (13 s)
@needs_sandbox
def test_a_training_defense_may_return_a_ranker_of_its_own_family(home, tmp_path):
    """Its class is never imported here: the defense's worker trains it, a ranker worker serves it, and INSA's
    adaptive run rebuilds it in its own sandbox; the defended system is that ranker."""
    folder = tmp_path / "own-family"
    folder.mkdir()
    shutil.copy(EXAMPLE / "ranker.py", folder / "ranker.py")
    (folder / "defense.py").write_text(OWN_FAMILY_DEFENSE)
    (folder / "submission.toml").write_text(textwrap.dedent('''
        entry = "defense.py:OwnFamily"

        [submission]
        name = "own-family"
        kind = "defense"
        authors = ["a test"]
        description = "VBPR replaced by a visual MF of the defense's own making."
        link = ""

        [defense]
        type = "training"
        defends = "vbpr"
        '''))
    out = tmp_path / "d.json"
    result = run_cli(["evaluate", str(folder), "--protocol", "tiny", "--attacks", "insa", "--items", "10",
                      "--out", str(out)], home)
    assert result.exit_code == 0, result.output
    assert "serving its VisualMF (visual-mf, a family of its own)" in result.output
    row = json.loads(out.read_text())["results"][0]
    assert row["ranker"] == "vbpr" and len(row["defended_ranker"]["sha256"]) == 64
    insa = row["attacks"]["insa"]
    assert insa["adaptive"]["hr"] > row["clean"]["defended"]["cooperative_hr"]  # its own gradients, in INSA's sandbox
    assert row["clean"]["defended"]["test_hr"] != row["clean"]["undefended"]["test_hr"]
    # its gradients reach the pixels: computed in its worker, so the masked-gradient check does not fire
    assert "masked-gradients" not in {f["flag"] for f in row["flags"]}
    assert not any(str(folder) in str(getattr(m, "__file__", None) or "") for m in list(sys.modules.values()))
    assert not leftovers()
