"""First-stage candidate sets: each user's top-n BPR items among the catalog items the user has not trained on."""

from __future__ import annotations

import math

import numpy as np
import torch

from aipbench.firststage.heldout import interactions_and_mask, to_device, user_item_pairs

__all__ = ["base_sets", "candidate_sets"]

# Items are scored in blocks of this many columns so that a (users × items) block stays in cache.
_BLOCK_ITEMS = 4096
# A pre-pass scores every _SAMPLE_STRIDE-th catalog item and takes a threshold that about
# _MARGIN * n_candidates items of the full row should pass; rows where fewer than n pass are redone exactly.
_SAMPLE_STRIDE = 16
_MARGIN = 2.0


def _stable_top(values: torch.Tensor, ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the first k entries by descending value; ties keep the column order (ids ascending)."""
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.gather(values, 1, order), torch.gather(ids, 1, order)


def candidate_sets(
    user_factors,
    item_factors,
    item_bias,
    *,
    train_indptr,
    train_items,
    test_items,
    cold_items,
    n_candidates: int,
    exclude_seen: bool = True,
    chunk_users: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Each user's candidate set: an ``int32`` array of shape ``(n_users, n_candidates)``.

    The rule (the protocol's ``bpr.n_candidates``): with BPR scores ``s_u(i) = p_u · q_i + b_i`` in
    float32, row u holds the ``n_candidates`` highest-scoring items among the *eligible* items, in
    descending score order, ties broken by the lower item id. An item is eligible for u if it is a
    catalog item (never one of ``cold_items``), not among u's training items (CSR ``train_indptr`` /
    ``train_items``) and not u's own test item, which ``base_sets`` adds separately, exactly once.
    With ``exclude_seen=False`` (the protocol's "all-items" rule) every catalog item is eligible, the
    user's training items and test item included. ``item_bias`` may be None. A user with fewer than
    ``n_candidates`` eligible items is an error.

    Computed ``chunk_users`` users at a time without materializing a full (users × items) matrix:
    a pre-pass on a strided sample of the catalog gives each user a score threshold; scores are then
    computed in cache-sized item blocks and only the entries at or above the threshold are kept; the
    rare users with fewer than ``n_candidates`` eligible survivors are recomputed exactly.
    """
    dev = torch.device(device)
    U, V = to_device(user_factors, dev, torch.float32), to_device(item_factors, dev, torch.float32)
    n_users, n_items = U.shape[0], V.shape[0]
    if U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"factor shapes do not match: users {tuple(U.shape)}, items {tuple(V.shape)}")
    b = torch.zeros(n_items, device=dev) if item_bias is None else to_device(item_bias, dev, torch.float32).reshape(n_items)
    if not (torch.isfinite(U).all() and torch.isfinite(V).all() and torch.isfinite(b).all()):
        raise ValueError("BPR factors or biases are not finite")
    indptr, items, test, keep = interactions_and_mask(train_indptr, train_items, test_items, excluded=cold_items,
                                                      n_users=n_users, n_items=n_items, device=dev, name="test_items")
    catalog = torch.nonzero(keep).squeeze(1)  # ascending ids: column order == item id order
    m, k = catalog.numel(), int(n_candidates)
    if not 1 <= k <= m:
        raise ValueError(f"n_candidates must be in [1, {m}] (the catalog size), got {k}")
    pos = torch.full((n_items,), -1, dtype=torch.long, device=dev)  # item id -> catalog column
    pos[catalog] = torch.arange(m, device=dev)
    Vt, bc = V[catalog].T.contiguous(), b[catalog].contiguous()
    stride = max(1, min(_SAMPLE_STRIDE, m // (4 * k)))
    sample = torch.arange(0, m, stride, device=dev)
    rank = k if stride == 1 else min(sample.numel(), math.ceil(_MARGIN * k / stride))
    spos = torch.full((m,), -1, dtype=torch.long, device=dev)  # catalog column -> sample column
    spos[sample] = torch.arange(sample.numel(), device=dev)
    Vs, bs = Vt[:, sample].contiguous(), bc[sample]

    out = torch.empty((n_users, k), dtype=torch.int32, device=dev)
    starts = range(0, n_users, chunk_users)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="candidates", unit="chunk")
    for s in starts:
        users = torch.arange(s, min(s + chunk_users, n_users), device=dev)
        c = users.numel()
        # The chunk's excluded (row, catalog column) pairs: training items and the test item (none when
        # ``exclude_seen`` is off: the authors' rule ranks every item).
        r, it = user_item_pairs(indptr, items, users)
        r = torch.cat([r, torch.arange(c, device=dev)])
        col = pos[torch.cat([it, test[users]])]
        keep_pair = (col >= 0) if exclude_seen else torch.zeros_like(col, dtype=torch.bool)
        r, col = r[keep_pair], col[keep_pair]
        # Pre-pass: threshold = rank-th best eligible score among the sampled columns.
        Uc = U[users]
        ss = torch.addmm(bs, Uc, Vs)
        sc = spos[col]
        ss.view(-1)[r[sc >= 0] * sample.numel() + sc[sc >= 0]] = float("-inf")
        thresh = torch.topk(ss, rank, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
        del ss
        # Block pass: keep every entry >= threshold, as (row, column, value) triples in row-major order.
        rows, cols, vals = [], [], []
        buf = torch.empty(c * min(_BLOCK_ITEMS, m), device=dev)
        for b0 in range(0, m, _BLOCK_ITEMS):
            w = min(_BLOCK_ITEMS, m - b0)
            blk = torch.addmm(bc[b0 : b0 + w], Uc, Vt[:, b0 : b0 + w], out=buf[: c * w].view(c, w))
            hit = torch.nonzero(blk >= thresh)
            rows.append(hit[:, 0])
            cols.append(hit[:, 1] + b0)
            vals.append(blk[hit[:, 0], hit[:, 1]])
        hr, hc, hv = torch.cat(rows), torch.cat(cols), torch.cat(vals)
        # Drop the excluded pairs, then order the survivors by (row, column).
        ex = torch.sort(r * m + col).values
        key = hr * m + hc
        if ex.numel():
            at = torch.searchsorted(ex, key).clamp_(max=ex.numel() - 1)
            ok = ex[at] != key
            key, hv = key[ok], hv[ok]
        key, order = torch.sort(key)
        hv = hv[order]
        hr, hc = key // m, key % m
        counts = torch.bincount(hr, minlength=c)
        # Pack each row's survivors (ascending columns) into a padded matrix and take the stable top k.
        width = max(int(counts.max()), k)
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(hr.numel(), device=dev) - first[hr]
        pv = torch.full((c, width), float("-inf"), device=dev)
        pc = torch.full((c, width), m, dtype=torch.long, device=dev)
        pv[hr, slot], pc[hr, slot] = hv, hc
        top_v, top_c = _stable_top(pv, pc, k)
        redo = torch.nonzero(counts < k).squeeze(1)
        if redo.numel():  # threshold was too high for these rows: score their whole row exactly
            full = torch.addmm(bc, Uc[redo], Vt)
            local = torch.full((c,), -1, dtype=torch.long, device=dev)
            local[redo] = torch.arange(redo.numel(), device=dev)
            sel = local[r] >= 0
            full[local[r[sel]], col[sel]] = float("-inf")
            ids = torch.arange(m, device=dev).expand(redo.numel(), m)
            top_v[redo], top_c[redo] = _stable_top(full, ids, k)
        if not bool(torch.isfinite(top_v).all()):
            bad = int(users[torch.nonzero(~torch.isfinite(top_v).all(1))[0, 0]])
            raise ValueError(f"user {bad} has fewer than n_candidates={k} eligible catalog items")
        out[users] = catalog[top_c].to(torch.int32)
    return out.cpu().numpy()


def base_sets(candidates: np.ndarray, test_items: np.ndarray, *, test_may_repeat: bool = False) -> np.ndarray:
    """Each user's base set B_u: the candidate row with the user's test item appended as the last column.

    Shape ``(n_users, n_candidates + 1)``, ``int32``. The test item must not already be a candidate, unless
    ``test_may_repeat`` (the "all-items" rule: then the copy among the candidates counts as another item
    scored equal to the test item, which the tie rule counts against the test item)."""
    cands = np.asarray(candidates)
    test = np.asarray(test_items).reshape(-1, 1)
    if cands.ndim != 2 or test.shape[0] != cands.shape[0]:
        raise ValueError(f"candidates {cands.shape} and test_items {test.shape[0]} disagree on the number of users")
    clash = np.flatnonzero((cands == test).any(axis=1))
    if clash.size and not test_may_repeat:
        raise ValueError(f"user {int(clash[0])}'s test item is already among its candidates")
    return np.concatenate([cands, test], axis=1).astype(np.int32)
