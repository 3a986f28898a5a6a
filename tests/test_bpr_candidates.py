"""First stage: BPR training, its validation-based selection, and the candidate-set rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipbench.firststage.bpr import BPR, sample_negatives, train_bpr
from aipbench.firststage.candidates import base_sets, candidate_sets
from aipbench.firststage.heldout import heldout_auc, popularity_auc
from aipbench.pipeline.loaders import load_base_sets, load_bpr, load_candidates, load_dataset


@pytest.fixture(scope="module")
def dataset(tiny_store):
    return load_dataset(tiny_store)


def test_bpr_beats_popularity_on_validation_items(tiny_store, dataset):
    model = load_bpr(tiny_store)
    args = {"train_indptr": dataset.train_indptr, "train_items": dataset.train_items,
            "heldout_items": dataset.validation_items, "excluded_items": dataset.cold_items}
    bpr = np.nanmean(heldout_auc(model.user_factors.weight, model.item_factors.weight, model.item_bias.weight[:, 0], **args))
    pop = np.nanmean(popularity_auc(**args, n_items=dataset.n_items))
    assert bpr > pop + 0.01, (bpr, pop)


def test_bpr_training_is_deterministic_and_selects_the_best_epoch(tiny, dataset):
    a, hist = train_bpr(dataset, tiny.bpr)
    b, _ = train_bpr(dataset, tiny.bpr)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    assert hist["best_validation_auc"] == max(hist["validation_auc"])
    assert hist["validation_auc"][hist["best_epoch"] - 1] == hist["best_validation_auc"]
    assert hist["loss"][-1] < hist["loss"][0]


def test_sgd_step_matches_autograd_of_the_summed_loss():
    model = BPR(5, 7, 3, init_std=0.3, seed=0)
    u, i, j = torch.tensor([0, 1, 1, 4]), torch.tensor([2, 3, 3, 6]), torch.tensor([5, 0, 1, 2])
    lam, lr = 0.01, 0.1
    ref = BPR(5, 7, 3, init_std=0.3, seed=0)
    P, Q, B = ref.user_factors.weight, ref.item_factors.weight, ref.item_bias.weight[:, 0]
    x = (P[u] * (Q[i] - Q[j])).sum(1) + B[i] - B[j]
    reg = P[u].pow(2).sum() + Q[i].pow(2).sum() + Q[j].pow(2).sum() + B[i].pow(2).sum() + B[j].pow(2).sum()
    loss = torch.nn.functional.softplus(-x).sum() + lam / 2 * reg
    loss.backward()
    model.sgd_step(u, i, j, lr=lr, weight_decay=lam)
    for name, p in ref.named_parameters():
        assert torch.allclose(model.state_dict()[name], p.detach() - lr * p.grad, atol=1e-6), name


def test_negative_sampling_avoids_positives():
    gen = torch.Generator().manual_seed(0)
    users = torch.tensor([0] * 500 + [1] * 500)
    keys = torch.sort(torch.tensor([0 * 10 + 1, 0 * 10 + 2, 1 * 10 + 3]))[0]
    pool = torch.tensor([1, 2, 3, 4])
    j = sample_negatives(users, pool, keys, n_items=10, generator=gen)
    assert set(j[:500].tolist()) == {3, 4} and set(j[500:].tolist()) == {1, 2, 4}
    with pytest.raises(ValueError, match="every catalog item"):
        sample_negatives(torch.tensor([0]), torch.tensor([1, 2]), keys, n_items=10, generator=gen)


def test_candidate_invariants(tiny_store, dataset):
    cands = load_candidates(tiny_store)
    n = tiny_store.protocol.bpr.n_candidates
    assert cands.shape == (dataset.n_users, n) and cands.dtype == np.int32
    cold = set(dataset.cold_items.tolist())
    for u in range(dataset.n_users):  # invariant check, not a hot path
        row = cands[u]
        assert len(set(row.tolist())) == n
        assert not cold & set(row.tolist())
        assert not set(dataset.user_train_items(u).tolist()) & set(row.tolist())
    base = load_base_sets(tiny_store)
    assert base.shape == (dataset.n_users, n + 1)
    assert np.array_equal(base[:, -1], dataset.test_items)
    assert ((base == dataset.test_items[:, None]).sum(1) == 1).all()  # the test item exactly once


def test_candidates_are_the_exact_top_n(tiny_store, dataset):
    """The thresholded chunked algorithm equals a brute-force full sort."""
    model = load_bpr(tiny_store)
    scores = model.score(torch.arange(dataset.n_users), torch.arange(dataset.n_items)).detach().numpy()
    scores[:, dataset.cold_items] = -np.inf
    scores[dataset.train_users, dataset.train_items] = -np.inf
    scores[np.arange(dataset.n_users), dataset.test_items] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, : tiny_store.protocol.bpr.n_candidates]
    assert np.array_equal(order, load_candidates(tiny_store))


@pytest.mark.parametrize("chunk", [7, 64, 1024])
def test_candidates_do_not_depend_on_chunking(chunk):
    from aipbench.data.splits import to_csr

    gen = torch.Generator().manual_seed(1)
    U, V, b = torch.randn(50, 8, generator=gen), torch.randn(3000, 8, generator=gen), torch.randn(3000, generator=gen)
    rng = np.random.default_rng(0)
    indptr, items = to_csr(np.repeat(np.arange(50), 3), rng.integers(0, 2900, size=150), 50)
    test, cold = np.full(50, 2950), np.arange(2990, 3000)
    rule = {"train_indptr": indptr, "train_items": items, "test_items": test, "cold_items": cold, "n_candidates": 100}
    ref = candidate_sets(U, V, b, **rule, chunk_users=1024)
    got = candidate_sets(U, V, b, **rule, chunk_users=chunk)
    assert np.array_equal(ref, got)
    # and both equal the brute-force rule
    scores = (U @ V.T + b).numpy()
    scores[:, cold] = -np.inf
    scores[np.repeat(np.arange(50), np.diff(indptr)), items] = -np.inf
    scores[:, 2950] = -np.inf
    assert np.array_equal(ref, np.argsort(-scores, axis=1, kind="stable")[:, :100])


def test_base_sets_reject_a_test_item_among_the_candidates():
    with pytest.raises(ValueError, match="user 1's test item"):
        base_sets(np.array([[1, 2], [3, 4]]), np.array([9, 4]))


def test_too_few_eligible_items_is_an_error():
    with pytest.raises(ValueError, match="n_candidates"):
        candidate_sets(torch.ones(2, 2), torch.ones(5, 2), None, train_indptr=np.array([0, 0, 0]),
                       train_items=np.array([], dtype=np.int64), test_items=np.array([0, 1]), cold_items=np.array([4]),
                       n_candidates=10)


@pytest.mark.parametrize("chunk", [7, 1024])
def test_the_authors_rule_ranks_training_and_test_items_too(chunk):
    """"all-items" (the AIP reference code's gen_candidate_set.py): the plain top-N of every catalog item,
    a user's own training items and test item included; ours leaves them out. The test item then may sit
    twice in the base set, and the copy counts against it like any item scored equal."""
    from aipbench.data.splits import to_csr
    from aipbench.scoring.metrics import BaseSetSummary

    gen = torch.Generator().manual_seed(3)
    U, V, b = torch.randn(40, 8, generator=gen), torch.randn(500, 8, generator=gen), torch.randn(500, generator=gen)
    scores = (U @ V.T + b).numpy()
    best = np.argsort(-scores, axis=1, kind="stable")
    train = best[:, :3]  # every user trained on its three best-scored items, and tested on its fourth
    indptr, items = to_csr(np.repeat(np.arange(40), 3), train.reshape(-1), 40)
    test, cold = best[:, 3].copy(), np.array([], dtype=np.int64)
    rule = {"train_indptr": indptr, "train_items": items, "test_items": test, "cold_items": cold, "n_candidates": 20}
    ours = candidate_sets(U, V, b, **rule, chunk_users=chunk)
    authors = candidate_sets(U, V, b, **rule, exclude_seen=False, chunk_users=chunk)
    assert np.array_equal(authors, best[:, :20])  # training items first, the test item among them
    assert not (ours[:, :, None] == train[:, None, :]).any() and not (ours == test[:, None]).any()
    with pytest.raises(ValueError, match="test item is already among its candidates"):
        base_sets(authors, test)
    base = base_sets(authors, test, test_may_repeat=True)
    assert ((base == test[:, None]).sum(1) == 2).all()
    summary = BaseSetSummary(torch.from_numpy(np.take_along_axis(scores, base, 1)), (5,))
    assert (summary.test_rank == 4).all()  # three training items and its own copy rank at or above it
