"""Split invariants: leave-two-out, cold items untouched, the hook item."""

from __future__ import annotations

import numpy as np
import pytest

from aipbench.data.splits import choose_cold_items, hook_item, leave_two_out, to_csr
from aipbench.pipeline.loaders import load_dataset


@pytest.fixture(scope="module")
def dataset(tiny_store):
    return load_dataset(tiny_store)


def test_cold_items_have_no_interactions_anywhere(dataset):
    cold = set(dataset.cold_items.tolist())
    assert len(cold) == len(dataset.cold_items) == 40
    assert not cold & set(dataset.train_items.tolist())
    assert not cold & set(dataset.validation_items.tolist())
    assert not cold & set(dataset.test_items.tolist())


def test_one_test_and_one_validation_item_per_user_outside_training(dataset):
    assert dataset.test_items.shape == dataset.validation_items.shape == (dataset.n_users,)
    for u in range(dataset.n_users):  # invariant check, not a hot path
        train = set(dataset.user_train_items(u).tolist())
        assert dataset.test_items[u] not in train
        assert dataset.validation_items[u] not in train
        assert dataset.test_items[u] != dataset.validation_items[u]
        assert len(train) >= 1


def test_hook_is_the_most_interacted_training_item(dataset):
    counts = dataset.item_train_counts()
    assert counts[dataset.hook_item] == counts.max()
    assert dataset.hook_item == np.flatnonzero(counts == counts.max())[0]
    assert dataset.hook_item not in set(dataset.cold_items.tolist())


def test_leave_two_out_keeps_every_interaction_once():
    users = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    items = np.array([5, 3, 9, 1, 2, 3, 4, 7, 8, 0])
    indptr, flat = to_csr(users, items, 3)
    tr_ptr, tr_items, val, test = leave_two_out(indptr, flat, seed=0)
    for u in range(3):
        got = sorted([*tr_items[tr_ptr[u]:tr_ptr[u + 1]], val[u], test[u]])
        assert got == sorted(items[users == u])
    # seeded: same seed, same split; the split depends on the seed
    assert np.array_equal(leave_two_out(indptr, flat, seed=0)[3], test)
    assert any(not np.array_equal(leave_two_out(indptr, flat, seed=s)[3], test) for s in range(1, 6))


def test_leave_two_out_rejects_users_with_too_few_items():
    indptr, flat = to_csr(np.array([0, 0, 1, 1, 1]), np.array([1, 2, 1, 2, 3]), 2)
    with pytest.raises(ValueError, match="user 0 has 2"):
        leave_two_out(indptr, flat, seed=0)


def test_cold_items_are_a_seeded_sample_of_uninteracted_items():
    interacted = np.zeros(100, dtype=bool)
    interacted[:50] = True
    a = choose_cold_items(interacted, 10, seed=1)
    assert len(np.unique(a)) == 10 and (a >= 50).all()
    assert np.array_equal(a, choose_cold_items(interacted, 10, seed=1))
    assert not np.array_equal(a, choose_cold_items(interacted, 10, seed=2))
    with pytest.raises(ValueError, match="only 50 items"):
        choose_cold_items(interacted, 51, seed=1)


def test_hook_ties_go_to_the_lowest_id():
    assert hook_item(np.array([4, 4, 2, 2, 7]), 10) == 2


def test_a_seeded_random_subset_is_nested_sorted_and_reproducible():
    from aipbench.data.splits import cold_subset

    cold = np.arange(1000, 2000, 3)
    first = cold_subset(cold, 10, rule=None, seed=1)
    assert first.tolist() == cold[:10].tolist() and cold_subset(cold, 10, rule="first", seed=1).tolist() == first.tolist()
    small, large = (cold_subset(cold, k, rule="seeded-random", seed=1) for k in (10, 100))
    assert small.tolist() == sorted(small.tolist()) and set(small) <= set(large) and set(small) <= set(cold)
    assert small.tolist() != first.tolist() and small.max() > cold[50]  # spread over the sample, not its lowest ids
    assert cold_subset(cold, 10, rule="seeded-random", seed=1).tolist() == small.tolist()
    assert cold_subset(cold, 10, rule="seeded-random", seed=2).tolist() != small.tolist()
    assert cold_subset(cold, None, rule="seeded-random", seed=1).tolist() == cold.tolist()
