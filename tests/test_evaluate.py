"""`aipbench evaluate` end to end on the tiny protocol: knowledge levels, the child process, bad input
(exit code, one-line message, no results file), resume, the results schema and the controls."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import copy_artifacts, one_error
from PIL import Image

import aipbench
from aipbench.cli import main
from aipbench.errors import InputError
from aipbench.pipeline.loaders import load_dataset
from aipbench.results.document import load_results, results_schema

REPO = Path(__file__).resolve().parents[1]


def toml(knowledge="insider", norm="linf", epsilon=8, entry='entry = "attack.py:Attack"', name="t"):
    threat = f'norm = "{norm}"' + (f"\nepsilon = {epsilon}" if epsilon is not None else "")
    return (f'{entry}\n[submission]\nname = "{name}"\nkind = "attack"\nknowledge = "{knowledge}"\n'
            f'authors = ["Test"]\ndescription = "test"\nlink = ""\n[threat]\n{threat}\n')


def code_submission(tmp_path: Path, body: str, **kw) -> Path:
    folder = tmp_path / "sub"
    folder.mkdir(exist_ok=True)
    (folder / "submission.toml").write_text(toml(**kw))
    (folder / "attack.py").write_text("import numpy as np\n\n\nclass Attack:\n    def run(self, ctx):\n"
                                      + textwrap.indent(textwrap.dedent(body), "        "))
    return folder


def image_submission(tmp_path: Path, store, *, epsilon=8, shift=4) -> Path:
    dataset = load_dataset(store)
    folder = tmp_path / "imgsub"
    (folder / "images").mkdir(parents=True)
    (folder / "submission.toml").write_text(toml(knowledge="semantic", epsilon=epsilon, entry='images = "images/"'))
    for item in dataset.cold_items:
        img = np.clip(dataset.images[item].astype(int) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(img.transpose(1, 2, 0)).save(folder / "images" / f"{item}.png")
    return folder


def cli(home: Path, folder: Path, out: Path, *extra: str):
    args = ["evaluate", str(folder), "--protocol", "tiny", "--out", str(out), *extra]
    return CliRunner().invoke(main, args, env={"AIPBENCH_HOME": str(home)})


# -- knowledge levels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knowledge", "body", "rule"),
    [
        ("expert", "return ctx.user_embeddings", "user_embeddings is not available to expert attacks"),
        ("expert", "return ctx.ranker", "ranker is not available to expert attacks (granted to: insider)"),
        ("semantic", "return ctx.image_model", "image_model is not available to semantic attacks"),
        ("classifier", "return ctx.hook_image", "hook_image is not available to classifier attacks"),
        ("insider", "return ctx.passwords", "an attack context has no 'passwords'"),
    ],
)
def test_an_attack_gets_only_its_knowledge_level(tiny_rankers, tmp_path, in_process, knowledge, body, rule):
    folder = code_submission(tmp_path, body, knowledge=knowledge)
    out = tmp_path / "r.json"
    result = cli(tiny_rankers.root.parent, folder, out, "--rankers", "vbpr")
    assert result.exit_code == 1, result.output
    assert rule in result.output and "Traceback" not in result.output
    assert not out.exists() and not out.with_suffix(".items.csv").exists()


def test_each_level_sees_what_it_is_granted(tiny_rankers, tmp_path, in_process):
    # the attack asserts on its own context; a failed assertion would fail the evaluation
    body = """
    import torch
    assert ctx.knowledge == "expert" and ctx.epsilon == 8 and ctx.cold_images.dtype == np.uint8
    assert ctx.hook_image.shape == ctx.cold_images.shape[1:] and ctx.catalog_images.shape[0] > ctx.hook_item
    feats = ctx.image_model(torch.from_numpy(np.asarray(ctx.cold_images[:2])))
    assert feats.shape[0] == 2
    return ctx.cold_images
    """
    folder = code_submission(tmp_path, body, knowledge="expert")
    result = cli(tiny_rankers.root.parent, folder, tmp_path / "r.json", "--rankers", "dvbpr,vbpr")
    assert result.exit_code == 0, result.output
    doc = load_results(tmp_path / "r.json")
    assert [r["attack_target"] for r in doc["results"]] == ["dvbpr", "extractor"]
    # unchanged images: nothing moves, and the statistics say so
    row = doc["results"][0]
    assert row["delta"]["hr"]["5"] == 0 and row["hr_test"]["p"] == 1 and row["image_quality"]["unchanged_images"] > 0


@pytest.mark.parametrize("knowledge", ["insider", "expert", "semantic", "classifier"])
def test_a_context_holds_exactly_its_grants(tiny_prepared, knowledge):
    import pickle

    from aipbench.attacks.context import GRANTS, PUBLIC, KnowledgeError
    from aipbench.attacks.grants import build_context

    ctx = build_context(tiny_prepared, tiny_prepared.ranker("dvbpr"), knowledge, epsilon=8)
    assert set(ctx.available()) == set(PUBLIC) | GRANTS[knowledge]
    assert set(pickle.loads(pickle.dumps(ctx)).available()) == set(ctx.available())
    for name in GRANTS["insider"] - GRANTS[knowledge]:
        with pytest.raises(KnowledgeError, match=f"{name} is not available to {knowledge} attacks"):
            getattr(ctx, name)
    if "popular_class" in GRANTS[knowledge]:
        assert 0 <= ctx.popular_class < 320  # the synthetic extractor's joint classes
        assert ctx.classifier(ctx.cold_images[:2]).shape == (2, 320)


def test_every_level_is_granted_from_a_cache_that_holds_only_dvbpr(tiny_rankers, tmp_path):
    """A cache holding DVBPR alone plus CONTEXT_ARTIFACTS (what every evaluation prepares) grants every
    level: the insider and classifier levels load Φ and the cached catalog features, which DVBPR itself
    does not need (found by `reproduce all` from an empty cache)."""
    from aipbench.attacks.context import GRANTS, PUBLIC
    from aipbench.attacks.grants import CONTEXT_ARTIFACTS, build_context
    from aipbench.pipeline.prepared import Prepared

    names = ["dataset", "bpr", "candidates", *CONTEXT_ARTIFACTS, "dvbpr"]
    copy_artifacts(tiny_rankers, names, tmp_path)
    built = []
    prepared = Prepared("tiny", home=tmp_path, needs=[*CONTEXT_ARTIFACTS, "dvbpr"], log=built.append)
    assert built == [] and not (prepared.store.root / "alexrank").exists()  # nothing beyond what was asked for
    for knowledge in GRANTS:
        ctx = build_context(prepared, prepared.ranker("dvbpr"), knowledge, epsilon=8)
        assert set(ctx.available()) == set(PUBLIC) | GRANTS[knowledge]


# -- bad input: exit 1, one line naming the file and the rule, no results file ----------------------------


BAD_CODE = [
    ("raise ValueError('no luck')", "attack.py: Attack failed: ValueError: no luck"),
    ("return ctx.cold_images.astype(np.float32)", "must be uint8"),
    ("return ctx.cold_images[:, :1]", "must be N×3×H×W"),
    ("return ctx.cold_images[:-1]", "images for"),
    ("return ctx.cold_images[:, :, :32, :32]", "image size 32×32"),
    ("return np.clip(ctx.cold_images.astype(int) + 9, 0, 255).astype(np.uint8)", "L∞ distance 9 exceeds the budget"),
    ("return [object()]", "must return an array of images"),
]
# What only a child process can show: a time limit (start-up included), a crash, and the errors above
# reported across the process boundary.
BAD_IN_A_CHILD = [
    ("import time\ntime.sleep(600)", "ran past its time limit of 8 s"),
    ("import os\nos._exit(3)", "exited with status 3 and no images"),
    BAD_CODE[0],
    BAD_CODE[1],
]


def _refused(result, out: Path, rule: str) -> None:
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and rule in line, result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not out.with_suffix(".items.csv").exists()


@pytest.mark.parametrize(("body", "rule"), BAD_CODE)
def test_each_bad_code_submission_is_one_line(tiny_rankers, tmp_path, in_process, body, rule):
    folder = code_submission(tmp_path, body)
    out = tmp_path / "r.json"
    _refused(cli(tiny_rankers.root.parent, folder, out, "--rankers", "vbpr"), out, rule)


@pytest.mark.parametrize(("body", "rule"), BAD_IN_A_CHILD)
def test_a_bad_child_process_is_one_line(tiny_rankers, tmp_path, body, rule):
    folder = code_submission(tmp_path, body)
    out = tmp_path / "r.json"
    limit = ("--time-limit", "8") if "time limit" in rule else ()  # the limit includes the child's start-up
    _refused(cli(tiny_rankers.root.parent, folder, out, "--rankers", "vbpr", *limit), out, rule)


def test_a_missing_class_is_named(tiny_rankers, tmp_path):
    folder = code_submission(tmp_path, "return ctx.cold_images")
    (folder / "submission.toml").write_text(toml(entry='entry = "attack.py:Nope"'))
    result = cli(tiny_rankers.root.parent, folder, tmp_path / "r.json", "--rankers", "vbpr")
    assert result.exit_code == 1 and "attack.py: defines no Nope; known: Attack" in result.output


BAD_FOLDERS = [
    (lambda d: next(d.glob("*.png")).unlink(), "cold items have no image"),
    (lambda d: (d / "99999.png").write_bytes((next(d.glob("*.png"))).read_bytes()), "99999 is not a cold item"),
    (lambda d: (d / "readme.txt").write_text("x"), "name must be <cold_item_id>.png"),
    (lambda d: (p := next(d.glob("*.png"))).write_bytes(p.read_bytes()[:100]), "unreadable or truncated PNG"),
    (lambda d: next(d.glob("*.png")).write_bytes(b"GIF89a" + bytes(64)), "not a PNG file"),
    (lambda d: Image.new("RGBA", (64, 64)).save(next(d.glob("*.png"))), "mode RGBA"),
    (lambda d: Image.new("RGB", (65, 65)).save(next(d.glob("*.png"))), "size 65×65"),
    (lambda d: Image.new("RGB", (9000, 9000)).save(next(d.glob("*.png"))), "pixel limit|too large"),
    (lambda d: os.symlink("/etc/hostname", d / "link.png"), "symbolic link"),
    (lambda d: Image.new("RGB", (64, 64), "white").save(next(d.glob("*.png"))), "L∞ distance"),
]


@pytest.mark.parametrize(("damage", "rule"), BAD_FOLDERS)
def test_each_bad_image_folder_is_one_line(tiny_rankers, tmp_path, damage, rule):
    import re

    folder = image_submission(tmp_path, tiny_rankers)
    damage(folder / "images")
    out = tmp_path / "r.json"
    result = cli(tiny_rankers.root.parent, folder, out)
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and re.search(rule, line), result.output
    assert not out.exists() and not out.with_suffix(".items.csv").exists()


def test_bad_manifest_and_unknown_ranker(tiny_rankers, tmp_path):
    folder = code_submission(tmp_path, "return ctx.cold_images")
    result = cli(tiny_rankers.root.parent, folder, tmp_path / "r.json", "--rankers", "vbprr")
    assert result.exit_code == 1 and "did you mean 'vbpr'" in result.output.lower()
    (folder / "submission.toml").write_text(toml(knowledge="oracle"))
    result = cli(tiny_rankers.root.parent, folder, tmp_path / "r.json")
    assert result.exit_code == 1 and "submission.toml" in result.output and "knowledge" in result.output
    assert not (tmp_path / "r.json").exists()
    (folder / "submission.toml").write_text(toml())  # its name is "t"; a leaderboard folder files it as t.json
    misnamed = tmp_path / "results" / "tiny" / "other-name.json"
    one_error(cli(tiny_rankers.root.parent, folder, misnamed), f"write it as {misnamed.with_name('t.json')}")
    assert not misnamed.parent.exists() or not any(misnamed.parent.iterdir())


# -- a good evaluation ------------------------------------------------------------------------------------


def test_image_submission_results_schema_and_csv(tiny_rankers, tmp_path):
    folder = image_submission(tmp_path, tiny_rankers, shift=4)
    out = tmp_path / "res" / "imgs.json"
    result = cli(tiny_rankers.root.parent, folder, out)
    assert result.exit_code == 0, result.output
    assert "| alexrank" in result.output and "| amr" in result.output
    doc = load_results(out)
    assert doc["examples"]["rows"] == ["cooperative", "any"] and out.with_suffix(".examples.png").is_file()
    assert doc["protocol"]["sha256"] == tiny_rankers.protocol.sha256
    assert doc["artifacts"] == tiny_rankers.hashes() and doc["submission"]["source"] == "images"
    assert {r["ranker"] for r in doc["results"]} == {"alexrank", "vbpr", "dvbpr", "amr"}
    for row in doc["results"]:
        assert row["image_quality"]["max_linf"] == 4 and row["attack_target"] == "any"
        assert row["image_quality"]["mean_psnr"] > 30 and 0.9 < row["image_quality"]["mean_ssim"] <= 1
    import pandas as pd

    items = pd.read_csv(out.with_suffix(".items.csv"))
    assert len(items) == 4 * len(load_dataset(tiny_rankers).cold_items)
    vbpr = items[items.ranker == "vbpr"]
    assert vbpr["adversarial_hr@5"].mean() == pytest.approx(doc["results"][1]["adversarial"]["hr"]["5"], abs=1e-6)


def test_every_schema_key_is_documented():
    def walk(node, path):
        if isinstance(node, dict):
            for key, child in node.get("properties", {}).items():
                assert "description" in child, f"{path}/{key} has no description"
                walk(child, f"{path}/{key}")
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    walk(node[key], f"{path}/{key}")

    for kind in ("attack", "defense", "reproduction"):
        walk(results_schema(kind), kind)


def test_a_tampered_results_file_is_refused(tmp_path):
    sample = REPO / "tests" / "data" / "results-tiny-noise.json"  # written by `aipbench evaluate`
    doc = load_results(sample)  # the untouched file passes
    for damage, rule in [
        (lambda d: d["results"][0]["adversarial"]["hr"].update({"5": "0.5"}), "is not of type 'number'"),
        (lambda d: d["protocol"].update(sha256="abc"), "does not match"),
        (lambda d: d.pop("results"), "'results' is a required property"),
        (lambda d: d["results"][0].update(extra=1), "Additional properties"),
        (lambda d: d["results"][0]["adversarial"]["hr"].update({"5": 0.5}), "content does not match its sha256"),
    ]:
        bad = json.loads(json.dumps(doc))
        damage(bad)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError) as info:
            load_results(path)
        assert str(info.value).startswith(str(path)) and rule in str(info.value), str(info.value)
    (tmp_path / "trunc.json").write_text(json.dumps(doc)[:200])
    with pytest.raises(InputError, match="not valid JSON"):
        load_results(tmp_path / "trunc.json")


def test_python_api_resume_and_controls(tiny_rankers, tmp_path, in_process):
    """INSA promotes on every ranker, the noise control does not, and a second run reuses the images."""
    import shutil

    home = tiny_rankers.root.parent
    logs: list[str] = []
    # a private copy (another hash), so that images cached by other tests are not reused here
    folder = shutil.copytree(REPO / "submissions" / "insa", tmp_path / "insa")
    (folder / "attack.py").write_text((folder / "attack.py").read_text() + "\n# private copy\n")
    insa = aipbench.evaluate(folder, protocol="tiny", home=home, log=logs.append)
    noise = aipbench.evaluate(REPO / "submissions" / "noise", protocol="tiny", home=home, log=logs.append)
    for row in noise.rows:
        assert not row["hr_test"]["significant"], row["ranker"]
        assert row["image_quality"]["max_linf"] == 32
    for row in insa.rows:
        assert row["hr_test"]["significant"] and row["delta"]["hr"]["5"] > 0.04, row["ranker"]
        assert row["timing"]["reused"] is False
    again = aipbench.evaluate(folder, protocol="tiny", home=home, rankers=["dvbpr"], log=logs.append)
    assert again.row("dvbpr")["timing"]["reused"] is True
    assert again.row("dvbpr")["adversarial"] == insa.row("dvbpr")["adversarial"]
    assert any("reusing the finished attack images" in m for m in logs)


def test_a_reference_attack_makes_the_same_images_in_a_child_and_in_process(tiny_prepared, tmp_path):
    """The regression pipeline runs the trusted reference code in-process: it must be the same computation
    as the child process (same seeds, same deterministic kernels, same bytes)."""
    from aipbench.attacks.grants import build_context
    from aipbench.harness.isolation.attack_run import run_attack

    entry = REPO / "submissions" / "insa" / "attack.py"
    ranker = tiny_prepared.ranker("vbpr")
    context = build_context(tiny_prepared, ranker, "insider", epsilon=32, items=tiny_prepared.dataset.cold_items[:5])
    reports = {"child": [], "here": []}
    child = run_attack(entry, "INSA", context, workdir=tmp_path / "child", isolation="process",
                       progress=lambda done, total: reports["child"].append((done, total)))
    here = run_attack(entry, "INSA", context, workdir=tmp_path / "here", isolation="none",
                      progress=lambda done, total: reports["here"].append((done, total)))
    assert child.shape == (5, 3, 64, 64) and np.array_equal(child, here)
    assert not np.array_equal(here, context.cold_images)
    # its progress (image-steps of Algorithm 1, 5 images x 50 steps) reaches the harness from the child too,
    # throttled there, ending with the whole
    assert reports["child"][-1] == reports["here"][-1] == (250.0, 250.0)
    assert len(reports["here"]) == 51 and 2 <= len(reports["child"]) <= 51


@pytest.mark.parametrize(("epsilon", "extra", "rule"), [
    (64, (), "threat.epsilon 64 is above protocol 'tiny''s budget of 32"),
    (8, ("--eps", "4,64"), "--eps 64 is above protocol 'tiny''s budget of 32"),
])
def test_a_budget_above_the_protocols_is_refused_before_any_work(tmp_path, epsilon, extra, rule):
    """The protocol's threat.epsilon is the most a bounded attack may declare or sweep (a larger one is
    another threat model); refused before a cache is even opened."""
    folder = code_submission(tmp_path, "return ctx.cold_images", epsilon=epsilon)
    out = tmp_path / "r.json"
    _refused(cli(tmp_path / "home", folder, out, *extra), out, rule)
    assert not (tmp_path / "home").exists()


def test_exported_cold_images_edited_elsewhere_are_an_image_submission(tiny_rankers, tmp_path):
    """`data export-cold` writes the cold items' catalog photos (exact pixels, hook.png, the ids); edited with
    any tool (here: +4 on every pixel) and put in images/, they are read as an image-folder submission is; a
    second export into the same folder is one line and changes nothing."""
    import json as _json

    home = tiny_rankers.root.parent
    out = tmp_path / "cold"
    export = ["data", "export-cold", "--protocol", "tiny", "--out", str(out)]
    made = CliRunner().invoke(main, export, env={"AIPBENCH_HOME": str(home)})
    assert made.exit_code == 0, made.output
    dataset = load_dataset(tiny_rankers)
    listing = _json.loads((out / "cold_items.json").read_text())
    assert listing["cold_items"] == [int(i) for i in dataset.cold_items] and listing["hook_item"] == dataset.hook_item
    assert sorted(p.name for p in out.iterdir()) == sorted([*(f"{i}.png" for i in dataset.cold_items), "hook.png",
                                                            "cold_items.json"])
    item = int(dataset.cold_items[0])
    assert np.array_equal(np.asarray(Image.open(out / f"{item}.png")).transpose(2, 0, 1), dataset.images[item])
    again = CliRunner().invoke(main, export, env={"AIPBENCH_HOME": str(home)})
    assert again.exit_code == 1 and "exists and is not an empty folder" in again.output
    folder = tmp_path / "edited"
    (folder / "images").mkdir(parents=True)
    (folder / "submission.toml").write_text(toml(knowledge="semantic", epsilon=8, entry='images = "images/"'))
    for i in listing["cold_items"]:
        edited = np.clip(np.asarray(Image.open(out / f"{i}.png")).astype(int) + 4, 0, 255).astype(np.uint8)
        Image.fromarray(edited).save(folder / "images" / f"{i}.png")
    from aipbench.harness.image_checks import read_image_folder  # what evaluate reads an image folder with

    read = read_image_folder(folder / "images", dataset.cold_items, dataset.image_size)
    moved = read.astype(int) - np.asarray(dataset.images[dataset.cold_items]).astype(int)
    assert read.shape[0] == len(listing["cold_items"]) and 0 < np.abs(moved).max() <= 4
