"""VBPR as an MMRec-style model: ``forward()`` → (user embeddings, item embeddings) from the visual features
``self.v_feat``, ``calculate_loss`` (BPR plus L2 on the batch's embeddings) and ``full_sort_predict`` (every
item's score, one product). A model written for MMRec ports by reading its visual features from
``self.v_feat`` in ``forward`` (as this one does) and taking (users, items, dims) as arguments instead of
MMRec's config and data loader."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VBPR(nn.Module):
    def __init__(self, n_users: int, n_items: int, v_feat: torch.Tensor, *, embedding_size: int = 16,
                 reg_weight: float = 1e-4) -> None:
        super().__init__()
        self.v_feat = v_feat  # (items × feature length), as MMRec hands it over; not a parameter
        self.reg_weight = reg_weight
        self.u_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, 2 * embedding_size)))
        self.i_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_items, embedding_size)))
        self.item_linear = nn.Linear(v_feat.shape[1], embedding_size)

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        items = torch.cat([self.i_embedding, self.item_linear(self.v_feat)], -1)
        return self.u_embedding, items

    def calculate_loss(self, interaction) -> torch.Tensor:
        users, positives, negatives = interaction[0], interaction[1], interaction[2]
        user_e, item_e = self.forward()
        u, p, n = user_e[users], item_e[positives], item_e[negatives]
        bpr = -F.logsigmoid((u * p).sum(1) - (u * n).sum(1)).mean()
        return bpr + self.reg_weight * (u.pow(2).sum() + p.pow(2).sum() + n.pow(2).sum()) / len(users)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        user_e, item_e = self.forward()
        return user_e[interaction[0]] @ item_e.T
