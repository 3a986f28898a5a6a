"""Vectorized held-out evaluation: per-user AUC of a held-out item against the user's unseen catalog items."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["heldout_auc", "interactions_and_mask", "popularity_auc", "to_device", "user_item_pairs"]


def to_device(x, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A tensor or array-like as a (detached) tensor of ``dtype`` on ``device``."""
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(device=device, dtype=dtype)


def interactions_and_mask(train_indptr, train_items, per_user, *, excluded, n_users: int, n_items: int,
                          device: torch.device, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training CSR (indptr, items) and one item per user (``per_user``, called ``name`` in errors) on
    ``device``, checked for shape, and the mask of items not ``excluded``."""
    indptr, items = to_device(train_indptr, device, torch.long), to_device(train_items, device, torch.long)
    one = to_device(per_user, device, torch.long)
    if indptr.shape != (n_users + 1,) or one.shape != (n_users,):
        raise ValueError(f"train_indptr needs n_users + 1 entries and {name} one item per user")
    keep = torch.ones(n_items, dtype=torch.bool, device=device)
    keep[to_device(excluded, device, torch.long)] = False
    return indptr, items, one, keep


def user_item_pairs(indptr: torch.Tensor, items: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR rows ``users`` flattened into ``(row, item)`` pairs, ``row`` indexing into ``users``.

    Vectorized: no loop over users. ``indptr`` / ``items`` are int64 tensors on the same device."""
    starts, ends = indptr[users], indptr[users + 1]
    counts = ends - starts
    rows = torch.repeat_interleave(torch.arange(users.numel(), device=users.device), counts)
    if rows.numel() == 0:
        return rows, rows.clone()
    first = torch.cumsum(counts, 0) - counts  # offset of each row's first pair in the flat output
    flat = torch.arange(rows.numel(), device=users.device) - first[rows] + starts[rows]
    return rows, items[flat]


def heldout_auc(
    user_vecs,
    item_vecs,
    item_bias,
    *,
    train_indptr,
    train_items,
    heldout_items,
    excluded_items,
    chunk: int = 1024,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-user AUC of ``heldout_items[u]`` under scores ``user_vecs @ item_vecs.T + item_bias``.

    The eligible items of user u are all items except ``excluded_items`` (e.g. the cold items), the
    user's training items (CSR ``train_indptr`` / ``train_items``) and the held-out item itself. The AUC
    is the fraction of eligible items scored strictly below the held-out item, ties counting one half;
    a user with no eligible item gets NaN. ``item_bias`` may be None. Scores are float32, computed in
    chunks of ``chunk`` users (a chunk × items matrix at a time); returns float64, one value per user.
    """
    dev = torch.device(device)
    U, V = to_device(user_vecs, dev, torch.float32), to_device(item_vecs, dev, torch.float32)
    n_users, n_items = U.shape[0], V.shape[0]
    b = torch.zeros(n_items, device=dev) if item_bias is None else to_device(item_bias, dev, torch.float32).reshape(n_items)
    indptr, items, held, keep = interactions_and_mask(train_indptr, train_items, heldout_items, excluded=excluded_items,
                                                      n_users=n_users, n_items=n_items, device=dev, name="heldout_items")
    if not bool(keep[held].all()):
        raise ValueError("a held-out item is among the excluded items")
    eligible = torch.nonzero(keep).squeeze(1)
    pos = torch.full((n_items,), -1, dtype=torch.long, device=dev)  # item -> column of the score matrix
    pos[eligible] = torch.arange(eligible.numel(), device=dev)
    Vt, bc = V[eligible].T.contiguous(), b[eligible]
    m = eligible.numel()
    out = torch.empty(n_users, dtype=torch.float64, device=dev)
    for s in range(0, n_users, chunk):
        users = torch.arange(s, min(s + chunk, n_users), device=dev)
        scores = torch.addmm(bc, U[users], Vt)
        rows = torch.arange(users.numel(), device=dev)
        h = scores[rows, pos[held[users]]].unsqueeze(1)  # the held-out item's score, from the same matmul
        r, it = user_item_pairs(indptr, items, users)
        cols = pos[it]
        r, cols = r[cols >= 0], cols[cols >= 0]
        flat = scores.view(-1)
        flat[r * m + cols] = float("nan")  # NaN compares false: drops the training items ...
        flat[rows * m + pos[held[users]]] = float("nan")  # ... and the held-out item itself
        less = (scores < h).sum(1, dtype=torch.float64)
        ties = (scores == h).sum(1, dtype=torch.float64)
        n = (~torch.isnan(scores)).sum(1, dtype=torch.float64)
        out[users] = (less + 0.5 * ties) / n  # 0/0 -> NaN for a user with nothing eligible
    return out.cpu().numpy()


def popularity_auc(
    train_indptr,
    train_items,
    heldout_items,
    *,
    excluded_items,
    n_items: int,
    chunk: int = 1024,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``heldout_auc`` of the popularity baseline: every user scores an item by its training count."""
    indptr = np.asarray(train_indptr)
    counts = np.bincount(np.asarray(train_items, dtype=np.int64), minlength=n_items).astype(np.float32)
    zeros_u = np.zeros((indptr.shape[0] - 1, 1), dtype=np.float32)
    zeros_i = np.zeros((n_items, 1), dtype=np.float32)
    return heldout_auc(zeros_u, zeros_i, counts, train_indptr=indptr, train_items=train_items, heldout_items=heldout_items,
                       excluded_items=excluded_items, chunk=chunk, device=device)
