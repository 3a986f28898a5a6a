"""Transform defenses on the tiny protocol: what the transforms do, that the defended ranker sees every
image through them (catalog included), straight-through gradients, adaptive beats transfer, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aipbench.errors import InputError
import torch
from click.testing import CliRunner

import aipbench
from aipbench.cli import main
from aipbench.defenses.defended import defend
from aipbench.defenses.transforms import JPEG, BitDepth, Transformed, apply_transform, load_defense
from aipbench.harness.submission import load_submission
from aipbench.pipeline.loaders import load_dataset, load_ranker
from aipbench.results.document import validate_results

REPO = Path(__file__).resolve().parents[1]


def make(cls, **params):
    obj = cls()
    for k, v in params.items():
        setattr(obj, k, v)
    return obj


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 3, 64, 64), dtype=np.uint8)


def test_bit_depth_keeps_only_its_levels(images):
    out = apply_transform(make(BitDepth, bits=3), images)
    levels = np.round(np.arange(8) * 255 / 7)
    assert set(np.unique(out)) <= set(levels.astype(np.uint8)) and np.abs(out.astype(int) - images).max() <= 19


def test_jpeg_is_deterministic_and_stronger_at_low_quality(images):
    hi, lo = apply_transform(make(JPEG, quality=90), images), apply_transform(make(JPEG, quality=10), images)
    assert np.array_equal(lo, apply_transform(make(JPEG, quality=10), images))
    err = lambda x: np.abs(x.astype(int) - images).mean()  # noqa: E731
    assert 0 < err(hi) < err(lo)


def test_a_transform_must_return_uint8_images(images):
    class Bad:
        def transform(self, x):
            return x.float()

    with pytest.raises(InputError, match=r"Bad.transform must return a uint8 tensor of shape .*, got Tensor torch.float32"):
        apply_transform(Bad(), images)


@pytest.mark.parametrize("name", ["alexrank", "vbpr", "dvbpr"])
def test_the_defended_ranker_sees_every_image_through_the_transform(tiny_rankers, name):
    dataset = load_dataset(tiny_rankers)
    ranker = load_ranker(tiny_rankers, name)
    squeeze = make(BitDepth, bits=2)
    defended = defend(ranker, squeeze, dataset)
    # the catalog was re-encoded from transformed images (every item changes)
    changed = (defended.catalog - ranker.catalog).abs().amax(1) > 1e-6
    assert changed.float().mean() > 0.99
    if name == "alexrank":
        assert not torch.allclose(defended.mean, ranker.mean)  # user profiles too
    # an upload is transformed before the ranker's own model sees it
    x = torch.from_numpy(np.array(dataset.images[dataset.cold_items[:4]]))
    users = ranker.all_users()[:50]
    want = defended.score_features(users, ranker.encode(torch.from_numpy(apply_transform(squeeze, x))))
    assert torch.allclose(defended.score_images(users, x), want, atol=1e-4)


def test_straight_through_gradients(tiny_rankers):
    ranker = load_ranker(tiny_rankers, "dvbpr")
    model = Transformed(ranker.cnn, make(JPEG, quality=30))
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    model(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_a_defense_instance_survives_pickling_by_source():
    import pickle

    defense = load_defense(REPO / "submissions" / "jpeg" / "defense.py", "JPEGDefense", quality=30)
    wrapped = pickle.loads(pickle.dumps(Transformed(torch.nn.Identity(), defense)))
    assert wrapped.defense.quality == 30 and type(wrapped.defense).__name__ == "JPEGDefense"


def test_adaptive_beats_transfer_against_jpeg(tiny_rankers):
    """The adaptive INSA (re-run through the JPEG with straight-through gradients) promotes more than the
    INSA images made against the undefended system."""
    sub = load_submission(REPO / "submissions" / "jpeg")
    doc = aipbench.evaluate(sub, protocol="tiny", rankers=["dvbpr"], attacks=["insa"], items=40, levels=[30],
                            home=tiny_rankers.root.parent, isolation="none", log=lambda m: None).document
    validate_results(doc, "jpeg")
    insa = doc["results"][0]["attacks"]["insa"]
    assert insa["adaptive"]["hr"] > insa["transfer"]["hr"]
    assert insa["transfer"]["hr"] < insa["undefended"]["hr"]  # JPEG does weaken the transferred images
    assert doc["results"][0]["clean"]["defended"]["test_auc"] != doc["results"][0]["clean"]["undefended"]["test_auc"]
    assert {c["mode"] for c in doc["table8"]} == {"transfer", "adaptive"}


GOOD = """entry = "defense.py:D"
[submission]
name = "d"
kind = "defense"
authors = ["T"]
description = "d"
link = ""
[defense]
type = "transform"
"""


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (GOOD.replace('[defense]\ntype = "transform"\n', ""), "a defense needs a [defense] table"),
        (GOOD.replace('type = "transform"', 'type = "magic"'), "key 'defense.type': expected one of"),
        (GOOD + "levels = [1, 2]\n", "give both parameter and levels, or neither"),
        (GOOD + '[threat]\nnorm = "unbounded"\n', "a defense takes no [threat] table"),
        (GOOD.replace('link = ""', 'link = ""\nknowledge = "insider"'), "no knowledge level"),
    ],
)
def test_a_malformed_defense_submission_is_one_line(tmp_path, text, rule):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "submission.toml").write_text(text)
    (folder / "defense.py").write_text("class D:\n    def transform(self, x):\n        return x\n")
    result = CliRunner().invoke(main, ["evaluate", str(folder), "--protocol", "tiny", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and rule in result.output, result.output
    assert not (tmp_path / "r.json").exists()


def test_the_cli_evaluates_a_defense_through_the_library(tiny_rankers, tmp_path, monkeypatch):
    """`aipbench evaluate` is a thin layer: a defense goes to the same `aipbench.evaluate` as an attack."""
    import aipbench.harness.evaluate

    calls = []

    class Stop(Exception):
        pass

    def stand_in(sub, **kw):
        calls.append((sub.submission.name, kw))
        raise Stop

    monkeypatch.setattr(aipbench.harness.evaluate, "evaluate", stand_in)
    result = CliRunner().invoke(main, ["evaluate", str(REPO / "submissions" / "jpeg"), "--protocol", "tiny",
                                       "--levels", "90,10", "--items", "5", "--out", str(tmp_path / "j.json")])
    assert isinstance(result.exception, Stop)
    assert calls[0][0] == "jpeg" and calls[0][1]["levels"] == [90, 10] and calls[0][1]["items"] == 5


def test_table8_is_the_weakest_level_that_brings_an_attack_down_to_cooperative():
    """Levels in the family's order (weakest first): the first at which the attack's HR@N is at or below
    the defended cooperative HR@N, per ranker, attack and mode; None where no level does."""
    from aipbench.harness.defense import _table8

    def row(level, coop, insa_transfer, insa_adaptive):
        return {"ranker": "vbpr", "level": level, "clean": {"defended": {"cooperative_hr": coop}},
                "attacks": {"insa": {"transfer": {"hr": insa_transfer}, "adaptive": {"hr": insa_adaptive}}}}

    rows = [row(90, 0.01, 0.05, 0.09), row(50, 0.01, 0.01, 0.04), row(10, 0.02, 0.0, 0.02)]
    assert _table8(rows, ["insa"]) == [{"ranker": "vbpr", "attack": "insa", "mode": "transfer", "level": 50},
                                       {"ranker": "vbpr", "attack": "insa", "mode": "adaptive", "level": 10}]
    assert _table8(rows[:2], ["insa"])[1]["level"] is None
