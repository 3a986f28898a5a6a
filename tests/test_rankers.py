"""The four rankers: formulas against naive implementations, gradients, determinism, the feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipbench.data.splits import to_csr
from aipbench.pipeline.loaders import load_dataset, load_feature_cache, load_ranker
from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.extractor import class_log_probs, extract_features, make_extractor
from aipbench.rankers.nets.cnnf import CNNF
from aipbench.rankers.registry import ranker_names, ranker_spec
from aipbench.rankers.vbpr import VBPR, _adversarial_delta, _vbpr_difference

N_USERS, N_ITEMS, DIM = 6, 12, 5


@pytest.fixture
def small():
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(N_ITEMS, DIM, generator=gen) * 3
    rng = np.random.default_rng(0)
    indptr, items = to_csr(np.repeat(np.arange(N_USERS), 3), rng.integers(0, N_ITEMS, N_USERS * 3), N_USERS)
    return feats, indptr, items


def test_alexrank_equals_the_loop_of_eq1(small, tiny):
    feats, indptr, items = small
    ranker = AlexRank.fit(make_extractor(tiny), feats, train_indptr=indptr, train_items=items)
    got = ranker.score_items(ranker.all_users(), torch.arange(N_ITEMS))
    naive = torch.empty(N_USERS, N_ITEMS)
    for u in range(N_USERS):
        for i in range(N_ITEMS):
            js = items[indptr[u]:indptr[u + 1]]
            naive[u, i] = -np.mean([float(((feats[i] - feats[j]) ** 2).sum()) for j in js])
    assert torch.allclose(got, naive, atol=1e-4)
    # new images' features go through the same formula
    assert torch.allclose(ranker.score_features(ranker.all_users(), feats[:3]), naive[:, :3], atol=1e-4)


def test_vbpr_equals_eq2_term_by_term(small, tiny):
    feats, _, _ = small
    gen = torch.Generator().manual_seed(1)
    model = VBPR(make_extractor(tiny), feats, N_USERS, factors=4, embedding_length=3, visual_bias=True,
                 generator=gen, init_std=1.0)
    with torch.no_grad():
        model.beta_item.normal_(generator=gen)
        model.beta_visual.normal_(generator=gen)
    got = model.score_items(model.all_users(), torch.arange(N_ITEMS))
    cold = model.score_features(model.all_users(), feats)
    for u in range(N_USERS):
        for i in range(N_ITEMS):
            alpha = beta_u = 0.0  # not identifiable under the BPR loss; fixed at zero
            visual = model.theta_user[u] @ (model.E @ feats[i]) + model.beta_visual @ feats[i]
            x = alpha + beta_u + model.beta_item[i] + model.gamma_user[u] @ model.gamma_item[i] + visual
            assert torch.allclose(got[u, i], x, atol=1e-5)
            assert torch.allclose(cold[u, i], visual, atol=1e-5)  # image-only: γ_i = 0, β_i = 0


def test_dvbpr_equals_theta_dot_cnn(tiny):
    cfg = tiny.rankers.dvbpr
    torch.manual_seed(0)
    cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=0.5, lrn=True)
    model = DVBPR(cnn, 4, torch.zeros(3, cfg.embedding_length), generator=torch.Generator().manual_seed(2), init_std=1.0).eval()
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    got = model.score_images(torch.arange(4), images)
    emb = cnn.eval()(images)
    for u in range(4):
        for i in range(3):
            assert torch.allclose(got[u, i], model.theta_user[u] @ emb[i], atol=1e-4)
    assert torch.equal(got, model.score_images(torch.arange(4), images))  # dropout off: repeatable


@pytest.mark.parametrize("name", ["alexrank", "vbpr", "dvbpr", "amr"])
def test_gradient_wrt_pixels_is_finite_and_nonzero(tiny_rankers, name):
    ranker = load_ranker(tiny_rankers, name)
    dataset = load_dataset(tiny_rankers)
    x = (torch.from_numpy(np.array(dataset.images[dataset.cold_items[:4]])).float() / 255).requires_grad_(True)
    scores = ranker.score_images(torch.arange(50), x)
    scores.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ranker.parameters())  # frozen ranker


@pytest.mark.parametrize("name", ["alexrank", "vbpr", "dvbpr", "amr"])
def test_scoring_twice_is_identical_and_images_match_cache(tiny_rankers, name):
    ranker = load_ranker(tiny_rankers, name)
    dataset = load_dataset(tiny_rankers)
    cold = torch.as_tensor(dataset.cold_items[:8])
    images = torch.from_numpy(np.array(dataset.images[cold]))
    a = ranker.score_images(ranker.all_users(), images)
    b = ranker.score_images(ranker.all_users(), images)
    assert torch.equal(a, b)
    # pixels through the network agree with the cached catalog representation of the same images
    assert torch.allclose(a, ranker.score_features(ranker.all_users(), ranker.catalog[cold]), rtol=1e-4, atol=1e-3)


def test_amr_perturbation_has_size_epsilon_and_raises_the_loss(tiny_rankers):
    model = load_ranker(tiny_rankers, "vbpr")
    u, i, j = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8])
    delta = _adversarial_delta(model, u, i, j, ("user", "item", "visual"), 0.5)
    assert torch.allclose(delta["item"].norm(dim=1), torch.full((6,), 0.5))
    assert torch.allclose(delta["user_theta"].norm(dim=1), torch.full((3,), 0.5))
    assert torch.allclose(delta["user_gamma"].norm(dim=1), torch.full((3,), 0.5))
    clean = torch.nn.functional.softplus(-_vbpr_difference(model, u, i, j)).sum()
    attacked = torch.nn.functional.softplus(-_vbpr_difference(model, u, i, j, delta)).sum()
    assert attacked > clean


def test_amr_batch_normalized_epsilon_on_gamma_only_as_in_the_authors_code(tiny_rankers):
    """adv_norm "batch" (the AIP reference code): Δ = ε·g/‖g‖_F over the batch's whole gradient, so rows get
    about ε/sqrt(batch); "user_gamma" perturbs γ_u and not θ_u. The direction is the row rule's."""
    model = load_ranker(tiny_rankers, "vbpr")
    gen = torch.Generator().manual_seed(0)
    u, i, j = (torch.randint(0, 300, (64,), generator=gen) for _ in range(3))
    batch = _adversarial_delta(model, u, i, j, ("user_gamma", "item"), 0.5, "batch")
    row = _adversarial_delta(model, u, i, j, ("user_gamma", "item"), 0.5, "row")
    assert set(batch) == {"user_gamma", "item"}
    for k in batch:
        assert torch.allclose(batch[k].norm(), torch.tensor(0.5)) and torch.allclose(row[k].norm(dim=1), torch.full((len(row[k]),), 0.5))
        cos = torch.nn.functional.cosine_similarity(batch[k], row[k], dim=1)
        assert torch.allclose(cos[batch[k].norm(dim=1) > 0], torch.ones(1), atol=1e-5)
    assert batch["user_gamma"].norm(dim=1).mean() < 0.5 / 4  # about 0.5/sqrt(64) a row
    clean = torch.nn.functional.softplus(-_vbpr_difference(model, u, i, j)).sum()
    assert torch.nn.functional.softplus(-_vbpr_difference(model, u, i, j, batch)).sum() > clean


def test_amr_is_trained_beyond_its_vbpr_start(tiny_rankers):
    vbpr, amr = load_ranker(tiny_rankers, "vbpr"), load_ranker(tiny_rankers, "amr")
    assert not torch.equal(vbpr.gamma_user, amr.gamma_user)


def test_feature_cache_reads_known_images_and_computes_new_ones(tiny_rankers):
    cache = load_feature_cache(tiny_rankers)
    dataset = load_dataset(tiny_rankers)
    known = np.array(dataset.images[:5])
    assert torch.equal(cache(known), cache.table[0][:5]) and cache.misses == 0
    new = known.copy()
    new[:, 0, 0, 0] ^= 1
    fresh = cache(new)
    assert cache.misses == 5
    assert torch.allclose(fresh, extract_features(cache.extractor, new), atol=1e-6)
    cache(new)
    assert cache.misses == 5  # remembered


def test_joint_class_log_probs_are_normalized():
    logits = torch.randn(4, 22, generator=torch.Generator().manual_seed(0))
    lp = class_log_probs(logits)
    assert lp.shape == (4, 320)
    assert torch.allclose(lp.logsumexp(1), torch.zeros(4), atol=1e-5)


def test_registry_knows_the_four_rankers_and_suggests_names():
    from aipbench.errors import InputError

    assert ranker_names() == ["alexrank", "vbpr", "dvbpr", "amr"]
    with pytest.raises(InputError, match="did you mean 'dvbpr'"):
        ranker_spec("dvbrp")
