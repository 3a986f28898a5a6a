"""INSA: the exact shortcut equals the plain sum of Eq. 6, the budget holds, and the attack promotes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipbench.attacks.insa import insa, insa_objective
from aipbench.harness.image_checks import check_adversarial
from aipbench.pipeline.loaders import load_base_sets, load_dataset, load_ranker
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.base import Ranker
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.vbpr import VBPR
from aipbench.scoring.metrics import cold_item_metrics, summarize_base_sets

RANKERS = ["alexrank", "vbpr", "dvbpr", "amr"]


def plain_objective(ranker: Ranker, features: torch.Tensor, form: str) -> torch.Tensor:
    """Eq. 6 summed user by user (the reference the shortcuts are tested against; slow on purpose)."""
    users = ranker.all_users()
    if form == "exp":  # Σ_u exp(p_{u,i}) of the full score, in float64, then its logarithm
        return torch.log(torch.exp(ranker.score_features(users, features).double()).sum(0)).float()
    if isinstance(ranker, AlexRank):
        return ranker.score_features(users, features).sum(0)
    if isinstance(ranker, VBPR):
        visual = ranker.visual_embedding(features)
        return torch.stack([sum(ranker.theta_user[u] @ v for u in users) for v in visual])
    if isinstance(ranker, DVBPR):
        return torch.stack([sum(ranker.theta_user[u] @ e for u in users) for e in features])
    raise TypeError(type(ranker).__name__)


@pytest.mark.parametrize("form", ["linear", "exp"])
@pytest.mark.parametrize("name", RANKERS)
def test_objective_equals_the_plain_sum_over_users(tiny_rankers, name, form):
    ranker = load_ranker(tiny_rankers, name)
    feats = ranker.catalog[:5] * (0.05 if form == "exp" and name == "alexrank" else 1)  # exp stays finite
    got, ref = insa_objective(ranker, form)(feats), plain_objective(ranker, feats, form)
    assert torch.isfinite(ref).all()
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-3 * ref.abs().max().item())


def test_unknown_objective_is_refused(tiny_rankers):
    with pytest.raises(ValueError, match="not one of"):
        insa_objective(load_ranker(tiny_rankers, "vbpr"), "cubic")


@pytest.fixture(scope="module")
def cold(tiny_rankers):
    dataset = load_dataset(tiny_rankers)
    return dataset.cold_items[:8], np.array(dataset.images[dataset.cold_items[:8]])


@pytest.mark.parametrize("name", RANKERS)
def test_insa_respects_the_budget_and_is_deterministic(tiny_rankers, cold, name):
    ranker = load_ranker(tiny_rankers, name)
    items, images = cold
    a = insa(ranker, images, epsilon=8, steps=5, learning_rate=0.01, batch_size=3)
    b = insa(ranker, images, epsilon=8, steps=5, learning_rate=0.01, batch_size=8)
    assert a.dtype == np.uint8 and np.array_equal(a, b)  # batching does not change the result
    check_adversarial(a, images, cold_items=items, returned_items=items, epsilon=8, source="insa")
    assert np.abs(a.astype(int) - images.astype(int)).max() == 8  # it uses the budget


@pytest.mark.parametrize("name", RANKERS)
@pytest.mark.parametrize("form", ["linear", "exp"])
def test_insa_raises_its_objective(tiny_rankers, cold, name, form):
    ranker = load_ranker(tiny_rankers, name)
    _, images = cold
    with torch.no_grad():  # the attack turns gradients on for itself
        adv = insa(ranker, images, epsilon=32, steps=30, learning_rate=0.01, objective=form)
    objective = insa_objective(ranker, form)
    with torch.no_grad():
        before = objective(ranker.encode(torch.from_numpy(images)))
        after = objective(ranker.encode(torch.from_numpy(adv)))
    assert (after > before).all()


def test_insa_pushes_cold_items_into_dvbpr_top_lists(tiny_rankers, cold):
    ranker = load_ranker(tiny_rankers, "dvbpr")
    _, images = cold
    summary = summarize_base_sets(ranker, load_base_sets(tiny_rankers), (5,))
    users = ranker.all_users()
    adv = insa(ranker, images, epsilon=32, steps=30, learning_rate=0.01)
    with torch.no_grad():
        before = cold_item_metrics(ranker.score_images(users, torch.from_numpy(images)), summary)
        after = cold_item_metrics(ranker.score_images(users, torch.from_numpy(adv)), summary)
    # measured on tiny: 0.003 -> 0.50
    assert after.hit_rate[5].mean() > 10 * max(before.hit_rate[5].mean(), 0.01)
