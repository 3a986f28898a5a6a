"""The internal data set: item images, per-user splits, cold items and the hook, as flat arrays."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "DatasetStatistics"]


@dataclasses.dataclass(frozen=True)
class DatasetStatistics:
    """The figures of the paper's Table 2, plus the split sizes."""

    users: int
    items: int
    interactions: int
    catalog_items: int
    cold_items: int
    train_interactions: int
    mean_interactions_per_user: float
    hook_item: int
    hook_train_interactions: int


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A data set in aipbench's internal format.

    Items are numbered ``0 .. n_items - 1``; ``images[i]`` is item ``i``'s uint8 image (3×H×W).
    Training interactions are stored CSR-style: user ``u`` trained on
    ``train_items[train_indptr[u]:train_indptr[u + 1]]`` (sorted, unique).
    Every user has exactly one ``validation_items[u]`` and one ``test_items[u]`` (the "ordinary" item),
    neither of which is among the user's training items. ``cold_items`` (sorted) appear nowhere in the
    interactions; ``hook_item`` is the catalog item with the most training interactions (ties: lowest id).
    """

    images: np.ndarray
    train_indptr: np.ndarray
    train_items: np.ndarray
    validation_items: np.ndarray
    test_items: np.ndarray
    cold_items: np.ndarray
    hook_item: int

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or len(self.images.shape) != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 N×3×H×W, got {self.images.dtype} {self.images.shape}")
        if self.train_indptr.shape != (self.n_users + 1,):
            raise ValueError("train_indptr must have n_users + 1 entries")
        for name in ("validation_items", "test_items"):
            if getattr(self, name).shape != (self.n_users,):
                raise ValueError(f"{name} must hold one item per user")

    @property
    def n_users(self) -> int:
        return int(self.validation_items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def train_users(self) -> np.ndarray:
        """The user of every training interaction (aligned with ``train_items``)."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.train_indptr))

    @property
    def catalog_items(self) -> np.ndarray:
        """Every item that is not cold, sorted."""
        mask = np.ones(self.n_items, dtype=bool)
        mask[self.cold_items] = False
        return np.flatnonzero(mask)

    def user_train_items(self, user: int) -> np.ndarray:
        return self.train_items[self.train_indptr[user] : self.train_indptr[user + 1]]

    def item_train_counts(self) -> np.ndarray:
        return np.bincount(self.train_items, minlength=self.n_items)

    def statistics(self) -> DatasetStatistics:
        n_train = int(self.train_items.shape[0])
        interactions = n_train + 2 * self.n_users
        return DatasetStatistics(
            users=self.n_users,
            items=self.n_items,
            interactions=interactions,
            catalog_items=self.n_items - int(self.cold_items.shape[0]),
            cold_items=int(self.cold_items.shape[0]),
            train_interactions=n_train,
            mean_interactions_per_user=round(interactions / self.n_users, 3),
            hook_item=int(self.hook_item),
            hook_train_interactions=int(self.item_train_counts()[self.hook_item]),
        )

    # -- persistence: one .npz for interactions, one .npy for images (memory-mappable) --------------

    def save(self, interactions_path: Path, images_path: Path) -> None:
        """Write the two files (callers write to temporary paths and rename: see ``artifacts``)."""
        self.save_interactions(interactions_path)
        with open(images_path, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self.images))

    def save_interactions(self, interactions_path: Path) -> None:
        """Write everything but the images (a real data set streams its images to disk itself)."""
        with open(interactions_path, "wb") as fh:
            np.savez(
                fh,
                train_indptr=self.train_indptr,
                train_items=self.train_items,
                validation_items=self.validation_items,
                test_items=self.test_items,
                cold_items=self.cold_items,
                hook_item=np.int64(self.hook_item),
            )

    @classmethod
    def load(cls, interactions_path: Path, images, *, mmap: bool = True) -> "Dataset":
        """The data set from its interactions file and its images: a ``.npy`` path (memory-mapped), or an
        image store that indexes like one (``aipbench.data.packed.PackedImages``)."""
        with np.load(interactions_path) as z:
            arrays = {k: z[k] for k in z.files}
        if isinstance(images, (str, Path)):
            images = np.load(images, mmap_mode="r" if mmap else None)
        return cls(images=images, hook_item=int(arrays.pop("hook_item")), **arrays)
