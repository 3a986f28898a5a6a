"""What every trained ranker's fitting shares: the validation AUC that picks its best epoch, and the
per-user learning rate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from aipbench.firststage.heldout import heldout_auc

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.rankers.base import Ranker

__all__ = ["catalog_auc", "user_learning_rate"]


@torch.no_grad()
def catalog_auc(ranker: "Ranker", dataset: "Dataset", heldout: np.ndarray) -> float:
    """Mean per-user AUC of ``heldout[u]`` (the validation or the test items) against every catalog item
    the user has not trained on, scored with the catalog images."""
    user, item = ranker.user_side(ranker.all_users()), ranker.catalog_side()
    auc = heldout_auc(user.vec, item.vec, item.bias, train_indptr=dataset.train_indptr, train_items=dataset.train_items,
                      heldout_items=heldout, excluded_items=dataset.cold_items, device=item.vec.device)
    return float(np.nanmean(auc))


def user_learning_rate(train) -> float:
    """Per-user parameters see only a handful of updates per epoch; the protocol may give them their own rate."""
    return train.learning_rate if train.user_learning_rate is None else train.user_learning_rate
