"""Training and detector defenses on the tiny protocol: AMR trained as a defense equals the prepared
AMR; a detector never sees the evaluated cold items (enforced); the hinge makes attacks evade it; bad input."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import shared_dir, trusting_test_code

import aipbench
from aipbench.attacks.context import KnowledgeError
from aipbench.cli import main
from aipbench.defenses.detector import (
    DetectorContext,
    FeatureDetector,
    Penalized,
    detector_training_items,
    threshold_at,
)
from aipbench.defenses.training import train_defended
from aipbench.defenses.transforms import load_defense
from aipbench.errors import InputError
from aipbench.harness.gate import fit_gate
from aipbench.harness.submission import load_submission
from aipbench.hashing import state_sha256
from aipbench.pipeline.loaders import load_dataset, load_extractor, load_ranker
from aipbench.reproduce.pins import compare_pins, defense_pins
from aipbench.results.document import validate_results

REPO = Path(__file__).resolve().parents[1]


def test_amr_as_a_training_defense_reproduces_the_prepared_amr(tiny_rankers):
    """The reference training defense runs the protocol's AMR training from the undefended VBPR: its
    state is bit-identical to the ``amr`` artifact ``aipbench prepare`` built."""
    sub = load_submission(REPO / "submissions" / "amr")
    assert (sub.defense.type, sub.defense.defends) == ("training", "vbpr")
    trained = train_defended(load_defense(sub.entry_file, sub.entry_class), store=tiny_rankers,
                             dataset=load_dataset(tiny_rankers), undefended=load_ranker(tiny_rankers, "vbpr"))
    assert state_sha256(trained) == state_sha256(load_ranker(tiny_rankers, "amr"))
    assert state_sha256(trained) != state_sha256(load_ranker(tiny_rankers, "vbpr"))


def test_a_training_defense_must_return_a_ranker(tiny_rankers, tmp_path):
    (tmp_path / "defense.py").write_text("class T:\n    def train(self, context):\n        return context.features\n")
    defense = load_defense(tmp_path / "defense.py", "T")
    with pytest.raises(InputError, match="train\\(\\) must return an aipbench Ranker, got Tensor"):
        train_defended(defense, store=tiny_rankers, dataset=load_dataset(tiny_rankers),
                       undefended=load_ranker(tiny_rankers, "vbpr"))


def test_a_training_defense_is_evaluated_on_the_ranker_it_defends(tiny_rankers):
    sub = load_submission(REPO / "submissions" / "amr")
    with pytest.raises(InputError, match="defends = 'vbpr' is not among the rankers evaluated"):
        aipbench.evaluate(sub, protocol="tiny", rankers=["dvbpr"], home=tiny_rankers.root.parent, log=lambda m: None)


# -- detectors ---------------------------------------------------------------------------------------------


def test_detector_training_items_are_never_cold_items(tiny_rankers):
    dataset = load_dataset(tiny_rankers)
    train = detector_training_items(dataset, 300, seed=7)
    assert len(train) == 300 and np.all(np.diff(train) > 0)
    assert not np.isin(train, dataset.cold_items).any() and dataset.hook_item not in train
    assert np.array_equal(train, detector_training_items(dataset, 300, seed=7))


def test_the_detector_context_refuses_cold_items(tiny_rankers):
    dataset = load_dataset(tiny_rankers)
    train = detector_training_items(dataset, 10, seed=0)
    fields = dict(train_images=np.asarray(dataset.images[train]), adversarial={}, feature_extractor=None, seed=0,
                  device="cpu")
    context = DetectorContext(cold_items=dataset.cold_items, train_items=train, **fields)
    with pytest.raises(KnowledgeError, match="cold_images is not available to a detector's training"):
        context.cold_images  # noqa: B018
    with pytest.raises(KnowledgeError, match="never the evaluated cold items"):
        context.catalog_images  # noqa: B018
    leaky = np.append(train[1:], dataset.cold_items[0])
    with pytest.raises(ValueError, match="detector training items include 1 evaluated cold items"):
        DetectorContext(cold_items=dataset.cold_items, train_items=leaky, **fields)


SPY = '''
import numpy as np
from aipbench.defenses.detector import FeatureDetector

SEEN = []


class Spy(FeatureDetector):
    training_items = 40  # as DETECTOR_ITEMS below: the attacked training images are made once

    def fit(self, context):
        SEEN.append(np.asarray(context.train_images))
        SEEN.extend(np.asarray(v) for v in context.adversarial.values())
        for name in ("cold_images", "cold_items", "catalog_images"):
            try:
                getattr(context, name)
                SEEN.append(name)
            except PermissionError:
                pass
        super().fit(context)
'''


@pytest.mark.slow  # INSA and EXPA made for 40 training items (22 s); the detector's pins and flags run by default
def test_fitting_a_detector_sees_no_evaluated_cold_image(tiny_prepared, tmp_path):
    """End to end through the harness: everything the detector's ``fit`` receives is an image of a
    training item — no image equals any cold item's image, and asking for the cold items fails."""
    folder = tmp_path / "spy"
    shutil.copytree(REPO / "submissions" / "detector", folder)
    (folder / "defense.py").write_text(SPY)
    (folder / "submission.toml").write_text((folder / "submission.toml").read_text().replace(
        'entry = "defense.py:Detector"', 'entry = "defense.py:Spy"').replace('name = "detector"', 'name = "spy"'))
    sub = load_submission(folder)
    dataset = tiny_prepared.dataset
    with trusting_test_code():
        gate = fit_gate(sub, tiny_prepared, ["dvbpr"], time_limit=600, isolation="none", log=lambda m: None)
    seen = type(gate.detector).fit.__globals__["SEEN"]  # the spy's module-level record
    assert not any(isinstance(s, str) for s in seen), seen
    assert gate.info["training_sets"] == ["expa/dvbpr", "insa/dvbpr"]
    cold = {bytes(np.asarray(img)) for img in dataset.images[dataset.cold_items]}
    seen_images = [img for batch in seen for img in batch]
    assert len(seen_images) == 3 * 40 and not any(bytes(img) in cold for img in seen_images)


class _ToyDetector(torch.nn.Module):
    """Score = mean brightness; differentiable."""

    def score(self, images):
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        return x.mean((1, 2, 3)) * 10


def test_the_hinge_adds_the_detector_gradient_only_where_the_score_is_too_high():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    x = torch.stack([torch.full((3, 4, 4), 0.9), torch.full((3, 4, 4), 0.1)]).requires_grad_(True)
    penalized = Penalized(model, _ToyDetector(), threshold=5.0, margin=0.5)
    assert torch.equal(penalized(x), model(x))
    penalized(x).sum().backward()
    with_hinge = x.grad.clone()
    x.grad = None
    model(x).sum().backward()
    plain = x.grad
    assert torch.equal(with_hinge[1], plain[1])  # score 1.0 < 4.5: untouched
    extra = with_hinge[0] - plain[0]  # score 9.0: the hinge pushes brightness down, 10x the loss gradient's norm
    assert torch.all(extra > 0) and torch.isclose(extra.norm(), 10 * plain[0].norm(), rtol=1e-4)


def test_a_fitted_detector_pickles_by_source_with_its_weights(tiny_rankers):
    detector = load_defense(REPO / "submissions" / "detector" / "defense.py", "Detector")
    detector.__dict__["extractor"] = load_extractor(tiny_rankers)
    for name, value in {"mean": torch.zeros(4099), "std": torch.ones(4099), "weight": torch.arange(4099.0),
                        "bias": torch.tensor(0.5)}.items():
        detector.register_buffer(name, value)
    wrapped = pickle.loads(pickle.dumps(Penalized(torch.nn.Identity(), detector, threshold=1.0, margin=0.1)))
    assert type(wrapped.detector).__name__ == "Detector" and torch.equal(wrapped.detector.weight, detector.weight)
    assert isinstance(wrapped.detector, FeatureDetector)


def test_threshold_flags_exactly_the_false_alarm_rate_or_less_with_ties():
    clean = np.random.default_rng(0).permutation(1000).astype(float)
    t = threshold_at(clean, 0.01)
    assert t == 989 and (clean > t).mean() == 0.01
    tied = np.r_[np.zeros(990), np.ones(10) * 5]
    assert threshold_at(tied, 0.01) == 0 and threshold_at(np.r_[np.zeros(995), np.ones(5)], 0.01) == 0


@pytest.mark.parametrize(
    ("defense", "rule"),
    [
        ('type = "training"\n', "a training defense names the ranker it replaces"),
        ('type = "transform"\ndefends = "vbpr"\n', "a training defense names the ranker it replaces"),
        ('type = "detector"\nparameter = "x"\nlevels = [1]\n', "only a transform defense takes parameter and levels"),
        ('type = "training"\ndefends = "VBPR!"\n', "defends: unknown ranker 'VBPR!'"),
    ],
)
def test_a_malformed_training_or_detector_submission_is_one_line(tmp_path, defense, rule):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "submission.toml").write_text('entry = "defense.py:D"\n[submission]\nname = "d"\nkind = "defense"\n'
                                            f'authors = ["T"]\ndescription = "d"\nlink = ""\n[defense]\n{defense}')
    (folder / "defense.py").write_text("class D:\n    pass\n")
    result = CliRunner().invoke(main, ["evaluate", str(folder), "--protocol", "tiny", "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and rule in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


# -- the training and detector defenses as the regression pipeline evaluates them; their pins --------------

PINS = json.loads((REPO / "tests" / "data" / "pins-tiny.json").read_text())
PIN_ITEMS = 10  # the cold items of the regression pipeline's subset (test_regression.TINY_SUBSET)
DETECTOR_ITEMS = 40  # catalog items the detector learns from here (300 on real runs): the same code, fewer images
DEFENSE_RANKERS = {"amr": ["vbpr"], "detector": ["dvbpr"]}  # AMR replaces VBPR; the detector gates DVBPR here


def detector_folder(scratch: Path) -> Path:
    folder = shutil.copytree(REPO / "submissions" / "detector", scratch / "detector", dirs_exist_ok=True)
    code = (folder / "defense.py").read_text().replace("training_items = 300", f"training_items = {DETECTOR_ITEMS}")
    (folder / "defense.py").write_text(code)
    return folder


def defense_document(name: str, *, home: Path, scratch: Path) -> dict:
    """The AMR or detector document as the pins measure it, kept in ``scratch`` once made."""
    import fcntl

    kept = scratch / f"{name}.json"
    with open(scratch / f".{name}.lock", "w") as lock:  # another xdist worker making it: wait, then read it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.is_file():
            folder = REPO / "submissions" / "amr" if name == "amr" else detector_folder(scratch)
            with trusting_test_code():  # the detector with the pins' training items: a modified reference
                aipbench.evaluate(load_submission(folder), protocol="tiny", rankers=DEFENSE_RANKERS[name],
                                  items=PIN_ITEMS, home=home, isolation="none", out=kept, log=lambda m: None)
    return json.loads(kept.read_text())


@pytest.fixture(scope="module")
def defense_docs(tiny_rankers, tmp_path_factory):
    scratch = shared_dir(tmp_path_factory, "tiny-defenses")
    return lambda name: defense_document(name, home=tiny_rankers.root.parent, scratch=scratch)


@pytest.mark.slow  # 68 s (its document's 40 attacked training items and every reference attack): with -m slow
def test_detector_catches_transfer_attacks_and_the_adaptive_attack_evades_it(defense_docs):
    """The reference detector flags the transferred INSA images at 1% false alarms; INSA re-run through
    the hinge evades it and promotes again. Clean quality is untouched (the detector only gates uploads)."""
    doc = defense_docs("detector")
    validate_results(doc, "detector")
    (row,) = doc["results"]
    insa = row["attacks"]["insa"]
    assert insa["transfer"]["detection_rate"] >= 0.8 and insa["transfer"]["hr"] < insa["undefended"]["hr"] / 4
    assert insa["adaptive"]["detection_rate"] <= 0.2 and insa["adaptive"]["hr"] > 2 * insa["transfer"]["hr"]
    assert row["clean"]["defended"]["test_auc"] == row["clean"]["undefended"]["test_auc"]
    assert doc["detector"]["training_items"] == DETECTOR_ITEMS and doc["table8"] == []


@pytest.mark.parametrize("defense", ["amr", pytest.param("detector", marks=pytest.mark.slow)])
def test_the_tiny_defense_matches_its_pins(defense_docs, defense):
    pinned = {k: v for k, v in PINS.items() if k.startswith(f"defense/{defense}/")}
    problems = compare_pins(pinned, defense_pins(defense_docs(defense)))
    assert pinned and not problems, f"{len(problems)} numbers moved:\n" + "\n".join(problems[:40])
