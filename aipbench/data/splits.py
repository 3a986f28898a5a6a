"""The protocol's split rules: leave-two-out per user, seeded cold-item choice, and the hook item."""

from __future__ import annotations

import numpy as np

from aipbench.data.dataset import Dataset

__all__ = ["build_dataset", "checked_cold_items", "choose_cold_items", "cold_subset", "hook_item", "leave_two_out",
           "to_csr"]


def to_csr(users: np.ndarray, items: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Group (user, item) pairs by user; within a user items are sorted and unique."""
    keys = np.unique(users.astype(np.int64) * (int(items.max(initial=0)) + 1) + items.astype(np.int64))
    stride = int(items.max(initial=0)) + 1
    u, i = keys // stride, keys % stride
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=n_users), out=indptr[1:])
    return indptr, i.astype(np.int64)


def leave_two_out(
    indptr: np.ndarray, items: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split each user's interaction set: after a seeded shuffle within the user, the last item is the
    test item and the one before it the validation item; the rest is training.

    Returns ``(train_indptr, train_items, validation_items, test_items)``. Every user needs ≥ 3 items.
    """
    counts = np.diff(indptr)
    if counts.size and counts.min() < 3:
        raise ValueError(f"leave-two-out needs at least 3 interactions per user, user {int(counts.argmin())} has {int(counts.min())}")
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(counts.size), counts)
    # Shuffle within users without a Python loop: sort by (user, random key).
    order = np.lexsort((rng.random(items.size), users))
    shuffled = items[order]
    last = indptr[1:] - 1
    test_items = shuffled[last]
    validation_items = shuffled[last - 1]
    keep = np.ones(items.size, dtype=bool)
    keep[last] = False
    keep[last - 1] = False
    train_indptr, train_items = to_csr(users[keep], shuffled[keep], counts.size)
    return train_indptr, train_items, validation_items.astype(np.int64), test_items.astype(np.int64)


def choose_cold_items(interacted: np.ndarray, n_cold: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of ``n_cold`` items among those with no interaction at all (sorted)."""
    pool = np.flatnonzero(~interacted)
    if pool.size < n_cold:
        raise ValueError(f"only {pool.size} items have no interactions; the protocol asks for {n_cold} cold items")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=n_cold, replace=False)).astype(np.int64)


def checked_cold_items(listed: np.ndarray, interacted: np.ndarray) -> np.ndarray:
    """Listed cold items, sorted, after checking that each is an item id nobody interacted with."""
    listed = np.asarray(listed, dtype=np.int64)
    outside = listed[(listed < 0) | (listed >= interacted.size)]
    if outside.size:
        raise ValueError(f"listed cold item {int(outside[0])} is not an item id (itemnum={interacted.size})")
    used = np.sort(listed[interacted[listed]])
    if used.size:
        shown = ", ".join(str(int(i)) for i in used[:10]) + (", ..." if used.size > 10 else "")
        raise ValueError(f"{used.size} listed cold items have interactions (the paper's cold items have none): {shown}")
    return np.sort(listed)


def cold_subset(cold_items: np.ndarray, k: int | None, *, rule: str | None, seed: int) -> np.ndarray:
    """The protocol's subset of ``k`` cold items (all when ``k`` is None or covers them), in id order:
    the ``k`` lowest ids (rule "first" or None, as released), or the first ``k`` of a permutation seeded
    by ``seed`` ("seeded-random"; a smaller subset lies inside a larger one)."""
    cold = np.sort(np.asarray(cold_items, dtype=np.int64))
    if k is None or k >= cold.size:
        return cold
    k = max(1, int(k))
    if rule in (None, "first"):
        return cold[:k]
    order = np.random.default_rng([seed, 0x5B5E7]).permutation(cold.size)  # a stream of its own
    return np.sort(cold[order[:k]])


def hook_item(train_items: np.ndarray, n_items: int) -> int:
    """The item with the most training interactions; ties go to the lowest item id."""
    return int(np.argmax(np.bincount(train_items, minlength=n_items)))


def build_dataset(
    images: np.ndarray,
    *,
    train_indptr: np.ndarray,
    train_items: np.ndarray,
    validation_items: np.ndarray,
    test_items: np.ndarray,
    n_cold: int,
    seed: int,
    listed: np.ndarray | None = None,
) -> Dataset:
    """Apply the cold-item and hook rules to already split interactions and check the invariants. Cold
    items: the ``listed`` ids (none of which may appear in an interaction), else a seeded sample of
    ``n_cold`` uninteracted items."""
    n_items = images.shape[0]
    interacted = np.zeros(n_items, dtype=bool)
    interacted[train_items] = True
    interacted[validation_items] = True
    interacted[test_items] = True
    cold = choose_cold_items(interacted, n_cold, seed) if listed is None else checked_cold_items(listed, interacted)
    return Dataset(
        images=images,
        train_indptr=train_indptr,
        train_items=train_items,
        validation_items=validation_items,
        test_items=test_items,
        cold_items=cold,
        hook_item=hook_item(train_items, n_items),
    )
