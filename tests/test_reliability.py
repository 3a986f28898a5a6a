"""Numbers a reviewer accepts: the bootstrap intervals (coverage, recorded method), tied ranks, ranker
replicas, and every reliability flag — each raised by a purpose-built submission on the tiny protocol and
not by a reference one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from conftest import attack_folder, defense_folder, trusting_test_code

import aipbench
from aipbench.leaderboard.render import tied_ranks
from aipbench.scoring.intervals import Bootstrap

REPO = Path(__file__).resolve().parents[1]


def test_the_interval_covers_the_true_mean_95_percent_of_the_time():
    """1,000 data sets of 200 items from Beta(2, 5) (mean 2/7, skewed like per-item hit rates): the 95 %
    interval covers the mean in 95 % ± 2 % of them. One (resamples × items) @ (items × data sets) product."""
    data = np.random.default_rng(0).beta(2, 5, size=(1000, 200))
    found = Bootstrap(200, seed=1, resamples=1000).intervals({str(k): row for k, row in enumerate(data)})
    low, high = np.array(list(found.values())).T
    coverage = float(((low <= 2 / 7) & (2 / 7 <= high)).mean())
    assert 0.93 <= coverage <= 0.97, coverage


def test_intervals_are_paired_and_seeded():
    boot = Bootstrap(50, seed=3)
    a = np.random.default_rng(1).random(50)
    first, again = boot.intervals({"a": a, "b": a + 0.5}), Bootstrap(50, seed=3).intervals({"a": a})
    assert first["a"] == again["a"] and np.allclose(np.array(first["b"]) - 0.5, first["a"])  # the same resamples
    assert Bootstrap(50, seed=4).intervals({"a": a})["a"] != first["a"]
    assert boot.describe() == {"method": "paired percentile bootstrap over cold items", "resamples": 2000,
                               "level": 0.95, "seed": 3}


def test_overlapping_intervals_share_a_rank():
    # best first: A and B overlap (tied 1st); C is below both; D overlaps C only
    assert tied_ranks([[0.5, 0.9], [0.4, 0.6], [0.1, 0.3], [0.0, 0.2]]) == [1, 1, 3, 3]
    assert tied_ranks([[3, 3], [2, 2], [1, 1]]) == [1, 2, 3]
    # a chain of overlaps is not one tie: C overlaps B but not A, so it starts its own rank
    assert tied_ranks([[0.5, 0.9], [0.35, 0.6], [0.2, 0.4], [0.0, 0.1]]) == [1, 1, 3, 4]


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 0.3)), min_size=1, max_size=12))
def test_every_two_entries_sharing_a_rank_overlap(centres):
    intervals = sorted(([c - w, c + w] for c, w in centres), key=lambda iv: -(iv[0] + iv[1]))
    ranks = tied_ranks(intervals)
    assert ranks[0] == 1 and ranks == sorted(ranks)
    for i in range(len(intervals)):
        for j in range(i + 1, len(intervals)):
            if ranks[i] == ranks[j]:
                (lo_i, hi_i), (lo_j, hi_j) = intervals[i], intervals[j]
                assert lo_i <= hi_j and lo_j <= hi_i
            else:  # competition ranking: a rank is one more than the entries above it
                assert ranks[j] == j + 1 or ranks[j] == ranks[j - 1]


def _attack(tmp_path: Path, body: str, *, epsilon: int = 8) -> Path:
    return attack_folder(tmp_path / "attack", body, name="probe", knowledge="semantic", epsilon=epsilon,
                         imports="import numpy as np")


def _flags(doc: dict) -> set[str]:
    return {f["flag"] for row in doc["results"] for f in row["flags"]}


def _evaluate(folder, home, **kw) -> dict:
    with trusting_test_code():  # the probes run in-process, as trusted test code
        return aipbench.evaluate(folder, protocol="tiny", home=home, items=10, isolation="none", log=lambda m: None,
                                 **kw).document


ATTACK_PROBES = {
    "unused-budget": "rng = np.random.default_rng(ctx.seed)\n"
                     "return np.clip(ctx.cold_images.astype(int) + rng.integers(-1, 2, ctx.cold_images.shape), 0, 255)"
                     ".astype(np.uint8)",
    "nondeterministic": "rng = np.random.default_rng()  # not seeded from the context\n"
                        "return np.clip(ctx.cold_images.astype(int) + rng.integers(-8, 9, ctx.cold_images.shape), 0, 255)"
                        ".astype(np.uint8)",
    "objective-not-improved": "return ctx.cold_images",
}


@pytest.mark.parametrize("flag", list(ATTACK_PROBES))
def test_an_attack_flag_is_raised_by_its_probe(tiny_rankers, tmp_path, flag):
    doc = _evaluate(_attack(tmp_path, ATTACK_PROBES[flag]), tiny_rankers.root.parent, rankers=["vbpr"])
    assert flag in doc["checks"] and flag in _flags(doc)
    raised = next(f for f in doc["results"][0]["flags"] if f["flag"] == flag)
    assert raised["message"] and raised["numbers"]


def test_the_reference_insa_raises_no_attack_flag(tiny_rankers):
    doc = _evaluate(REPO / "submissions" / "insa", tiny_rankers.root.parent, rankers=["vbpr", "dvbpr"])
    assert set(doc["checks"]) == {"unused-budget", "nondeterministic", "objective-not-improved", "noise-floor"}
    assert _flags(doc) == set()
    for row in doc["results"]:  # every mean with its interval, the noise floor beside it
        low, high = row["intervals"]["adversarial"]["hr"]["5"]
        assert low <= row["adversarial"]["hr"]["5"] <= high and not row["noise_floor"]["significant"]
    assert doc["intervals"]["resamples"] == 2000


def test_a_significant_noise_control_raises_the_noise_floor(tiny_rankers, monkeypatch):
    """The noise floor is the protocol's: stand in a control that promotes (INSA) for the noise one."""
    from aipbench.harness import submission

    real = submission.reference_submission
    monkeypatch.setattr(submission, "reference_submission",
                        lambda name, kind: real("insa" if name == "noise" else name, kind=kind))
    doc = _evaluate(REPO / "submissions" / "c-sema", tiny_rankers.root.parent, rankers=["dvbpr"])
    assert "noise-floor" in _flags(doc) and doc["results"][0]["noise_floor"]["significant"]


def test_replicas_report_the_spread_across_ranker_seeds(tiny_rankers, tmp_path):
    """`--replicas 2`: VBPR re-trained with a derived seed (artifact vbpr-r2), attacked and scored too."""
    home = tmp_path / "home"
    from conftest import copy_artifacts

    copy_artifacts(tiny_rankers, ["dataset", "bpr", "candidates", "extractor", "features", "vbpr"], home)
    doc = _evaluate(REPO / "submissions" / "insa", home, rankers=["vbpr"], replicas=2, check_determinism=False)
    spread = doc["results"][0]["replicas"]
    assert spread["count"] == 2 and spread["seeds"][0] == 4 and spread["seeds"][1] != 4
    assert spread["adversarial_hr"][0] == doc["results"][0]["adversarial"]["hr"]["5"]
    assert spread["adversarial_hr"][1] != spread["adversarial_hr"][0] and spread["sd"]["adversarial_hr"] > 0
    assert (next(home.iterdir()) / "vbpr-r2" / "vbpr.pt").is_file()


# -- defenses -----------------------------------------------------------------------------------------------

MASKED = '''
import torch


class NoGradient(torch.nn.Module):
    """The same forward; no gradient reaches the pixels (zero, not undefined)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        return self.model(images * 0 + images.detach())


class Masking:
    def train(self, context):
        return context.undefended.with_image_model(NoGradient)
'''
TRANSFORMS = {
    "randomized-transform": "return torch.clamp(images.int() + torch.randint(-2, 3, images.shape), 0, 255).to(torch.uint8)",
    "clean-cost": "return torch.zeros_like(images)",
}


def _defense(tmp_path: Path, kind: str, code: str, cls: str, extra: str) -> Path:
    return defense_folder(tmp_path / "defense", code, name="probe", kind=kind, cls=cls, extra=extra)


def _defend(folder, home, ranker="vbpr") -> dict:
    return _evaluate(folder, home, rankers=[ranker], attacks=["insa"])


def test_masked_gradients_and_a_weaker_adaptive_attack_are_flagged(tiny_rankers, tmp_path):
    doc = _defend(_defense(tmp_path, "training", MASKED, "Masking", 'defends = "dvbpr"\n'), tiny_rankers.root.parent,
                  ranker="dvbpr")
    assert {"masked-gradients", "adaptive-weaker-than-transfer"} <= _flags(doc)


@pytest.mark.parametrize("flag", list(TRANSFORMS))
def test_a_transform_flag_is_raised_by_its_probe(tiny_rankers, tmp_path, flag):
    code = f"import torch\n\n\nclass T:\n    def transform(self, images):\n        {TRANSFORMS[flag]}\n"
    doc = _defend(_defense(tmp_path, "transform", code, "T", ""), tiny_rankers.root.parent)
    assert flag in doc["checks"] and flag in _flags(doc)
    if flag == "randomized-transform":  # the adaptive attack optimized the transform's expectation
        assert next(f for f in doc["results"][0]["flags"] if f["flag"] == flag)["numbers"]["eot_samples"] == 8


def test_the_reference_jpeg_raises_no_defense_flag(tiny_rankers):
    doc = _evaluate(REPO / "submissions" / "jpeg", tiny_rankers.root.parent, rankers=["vbpr"], attacks=["insa"],
                    levels=[90])
    assert set(doc["checks"]) == {"adaptive-weaker-than-transfer", "masked-gradients", "randomized-transform",
                                  "clean-cost"}
    assert _flags(doc) == set()
    side = doc["results"][0]["attacks"]["insa"]["adaptive"]
    assert side["interval"]["hr"][0] <= side["hr"] <= side["interval"]["hr"][1]


@pytest.mark.parametrize(("defended", "message"), [
    ({"test_auc": 0.60, "test_hr": 0.068}, "clean test AUC falls by 0.130 (tolerance 0.01) while HR rises by 36%"),
    ({"test_auc": 0.74, "test_hr": 0.040}, "clean test HR falls by 20% (tolerance 10%) while AUC rises by 0.010"),
    ({"test_auc": 0.72, "test_hr": 0.040}, "clean test HR falls by 20% (tolerance 10%), AUC by 0.010 (tolerance 0.01)"),
])
def test_the_clean_cost_flag_says_which_way_each_quantity_moved(defended, message):
    from aipbench.scoring.flags import clean_cost

    flag = clean_cost({"test_auc": 0.73, "test_hr": 0.050}, defended)
    assert flag["message"] == message and flag["numbers"]["hr_drop"] == pytest.approx(1 - defended["test_hr"] / 0.05)
    assert clean_cost({"test_auc": 0.73, "test_hr": 0.050}, {"test_auc": 0.725, "test_hr": 0.047}) is None


MEMORIZING = '''
import hashlib

import torch


class Memorizing(torch.nn.Module):
    """Flags exactly the images it was trained on: harmless on uploads, a false alarm on every catalog item it saw."""

    training_items = 40  # as test_defense_types' detector: the attacked training images are made once

    def fit(self, context):
        self.seen = {hashlib.sha256(img.tobytes()).digest() for img in context.train_images}

    def score(self, images):
        return torch.tensor([float(hashlib.sha256(img.contiguous().numpy().tobytes()).digest() in self.seen)
                             for img in images.to(torch.uint8).cpu()])
'''


@pytest.mark.slow  # a whole detector evaluation (23 s); the committed synthetic-v1 documents carry this flag
def test_a_detector_that_alarms_on_the_catalog_is_flagged(tiny_rankers, tmp_path):
    doc = _defend(_defense(tmp_path, "detector", MEMORIZING, "Memorizing", ""), tiny_rankers.root.parent, ranker="dvbpr")
    assert "detector-false-alarms" in _flags(doc) and doc["detector"]["catalog_false_alarm_rate"] > 0.03
