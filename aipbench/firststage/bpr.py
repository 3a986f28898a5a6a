"""First-stage BPR matrix factorization (Rendle et al.): deterministic minibatch SGD with validation-AUC selection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from aipbench.firststage.heldout import heldout_auc
from aipbench.firststage.triples import BestEpoch, TripleSampler, sample_negatives

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset
    from aipbench.protocol.schema import BPRConfig

__all__ = ["BPR", "sample_negatives", "train_bpr"]


class BPR(torch.nn.Module):
    """x_ui = p_u · q_i + b_i, with ``user_factors`` (U×K), ``item_factors`` (I×K) and ``item_bias`` (I×1).

    Factors start from N(0, init_std²) drawn from ``generator`` (or a fresh one seeded with ``seed``);
    the item bias starts at zero.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int,
        *,
        init_std: float = 0.1,
        seed: int = 0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        gen = generator if generator is not None else torch.Generator().manual_seed(seed)
        self.user_factors = torch.nn.Embedding(n_users, factors)
        self.item_factors = torch.nn.Embedding(n_items, factors)
        self.item_bias = torch.nn.Embedding(n_items, 1)
        with torch.no_grad():
            self.user_factors.weight.copy_(torch.randn(n_users, factors, generator=gen) * init_std)
            self.item_factors.weight.copy_(torch.randn(n_items, factors, generator=gen) * init_std)
            self.item_bias.weight.zero_()

    @property
    def n_users(self) -> int:
        return self.user_factors.num_embeddings

    @property
    def n_items(self) -> int:
        return self.item_factors.num_embeddings

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of every (user, item) pair: a ``len(users) × len(items)`` matrix."""
        p = self.user_factors.weight[users]
        q = self.item_factors.weight[items]
        return torch.addmm(self.item_bias.weight[items, 0], p, q.T)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of aligned pairs ``(users[n], items[n])``."""
        p = self.user_factors.weight[users]
        q = self.item_factors.weight[items]
        return (p * q).sum(-1) + self.item_bias.weight[items, 0]

    @torch.no_grad()
    def sgd_step(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, *, lr: float, weight_decay: float) -> float:
        """One SGD step on a batch of triples; returns the batch's summed BPR loss.

        Objective per triple: −ln σ(x_ui − x_uj) + (λ/2)(‖p_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²), summed
        over the batch (so each triple takes Rendle's classic per-sample update; gradients of the batch
        are computed from the same parameters and accumulated with ``index_add_``).
        """
        P, Q, B = self.user_factors.weight, self.item_factors.weight, self.item_bias.weight[:, 0]
        pu, qi, qj = P[u], Q[i], Q[j]
        x = (pu * (qi - qj)).sum(1) + B[i] - B[j]
        g = torch.sigmoid(-x)  # −d loss / d x
        gu = g[:, None] * (qi - qj) - weight_decay * pu  # descent directions
        gi = g[:, None] * pu - weight_decay * qi
        gj = -g[:, None] * pu - weight_decay * qj
        gbi = g - weight_decay * B[i]
        gbj = -g - weight_decay * B[j]
        P.index_add_(0, u, gu, alpha=lr)
        Q.index_add_(0, i, gi, alpha=lr)
        Q.index_add_(0, j, gj, alpha=lr)
        bias = self.item_bias.weight
        bias.index_add_(0, i, gbi[:, None], alpha=lr)
        bias.index_add_(0, j, gbj[:, None], alpha=lr)
        return float(F.softplus(-x).sum())


def train_bpr(dataset: "Dataset", cfg: "BPRConfig", *, device: str = "cpu", progress: bool = False) -> tuple[BPR, dict]:
    """Train BPR on ``dataset``'s training interactions as ``cfg`` says; keep the best validation epoch.

    Each epoch visits every training pair (u, i) once in a seeded random order, in ⌈nnz / batch_size⌉
    steps; each pair gets a negative j drawn uniformly from the catalog (cold items never take part in
    training, not even as negatives), redrawn while j is among u's training items. After each epoch the
    per-user AUC of the validation item (``aipbench.firststage.heldout.heldout_auc``, against all catalog items
    the user has not trained on) is averaged over users; the epoch with the best mean AUC (earliest on a
    tie) is kept. Everything follows from ``cfg.seed``: two runs on CPU give identical weights. The
    factors live and train on ``device``; the triples are drawn on the CPU (the same draws anywhere).

    Returns the model and a JSON-ready history: ``loss`` (mean BPR loss per triple) and
    ``validation_auc`` per epoch, ``best_epoch`` (counted from 1) and ``best_validation_auc``.
    """
    if cfg.selection != "validation-auc":
        raise ValueError(f"unknown BPR model selection rule {cfg.selection!r}")
    gen = torch.Generator().manual_seed(cfg.seed)
    model = BPR(dataset.n_users, dataset.n_items, cfg.factors, init_std=cfg.init_std, generator=gen).to(device)
    sampler = TripleSampler(dataset, cfg.batch_size, gen)
    best = BestEpoch("BPR", cfg.epochs, progress=progress)
    for epoch in best.epochs:
        total = sum(model.sgd_step(u, i, j, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
                    for u, i, j in sampler.epoch(device))
        auc = heldout_auc(
            model.user_factors.weight.detach(),
            model.item_factors.weight.detach(),
            model.item_bias.weight.detach()[:, 0],
            train_indptr=dataset.train_indptr,
            train_items=dataset.train_items,
            heldout_items=dataset.validation_items,
            excluded_items=dataset.cold_items,
            device=device,
        )
        best.update(model, epoch, loss=total / sampler.n_pairs, auc=float(np.nanmean(auc)))
    return model.eval(), best.restore(model, "lower bpr.learning_rate")
