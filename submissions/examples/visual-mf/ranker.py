"""Visual matrix factorization as a ranker submission: p(u, i) = θ_u · (E Φ(x_i)) + β' · Φ(x_i), VBPR's visual
terms alone, trained with the BPR loss (Eq. 4) on the platform's training interactions. Written only against
aipbench's public ranker interface, as an outside author would write a ranker."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aipbench.rankers.base import Ranker, Side


class VisualMF(Ranker):
    """Scores are one matrix product: user side [θ_u] against item side [E Φ(x)], with the bias β'·Φ(x)."""

    name = "visual-mf"
    image_model_name = "extractor"  # it scores the protocol's pre-trained Φ: an expert attacks Φ

    def __init__(self, extractor: nn.Module, catalog_features: torch.Tensor, n_users: int, k: int = 32) -> None:
        super().__init__(catalog_features)
        self.extractor = extractor
        self.theta_user = nn.Parameter(torch.zeros(n_users, k))
        self.E = nn.Parameter(torch.zeros(k, catalog_features.shape[1]))
        self.beta_visual = nn.Parameter(torch.zeros(catalog_features.shape[1]))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features @ self.E.T, features @ self.beta_visual)

    def user_side(self, users: torch.Tensor) -> Side:
        return Side(self.theta_user[users], torch.zeros(len(users)))

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None) -> "VisualMF":
        state = artifacts.state("visual-mf", "ranker.pt")
        model = cls(artifacts.extractor(), artifacts.features(), n_users=state["theta_user"].shape[0],
                    k=state["theta_user"].shape[1])
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extractor.")}, strict=False)
        return model


def train(context) -> VisualMF:
    """BPR on (user, training item, random catalog item) triples, Adam, a few epochs."""
    dataset, features = context.dataset, context.features.float()
    model = VisualMF(context.feature_extractor, features, dataset.n_users)
    gen = torch.Generator().manual_seed(int(context.seed))
    with torch.no_grad():
        model.theta_user.normal_(0, 0.01, generator=gen)
        model.E.normal_(0, 0.01, generator=gen)
    users = torch.from_numpy(np.asarray(dataset.train_users, dtype=np.int64))
    items = torch.from_numpy(np.asarray(dataset.train_items, dtype=np.int64))
    catalog = torch.from_numpy(np.setdiff1d(np.arange(dataset.n_items), dataset.cold_items))
    optimizer = torch.optim.Adam([model.theta_user, model.E, model.beta_visual], lr=0.01)
    epochs = 10
    for epoch in range(epochs):
        order = torch.randperm(len(users), generator=gen)
        for s in range(0, len(order), 1024):
            batch = order[s : s + 1024]
            u, i = users[batch], items[batch]
            j = catalog[torch.randint(len(catalog), (len(batch),), generator=gen)]
            user = model.user_side(u)
            pos, neg = model.item_side(features[i]), model.item_side(features[j])
            x = (user.vec * (pos.vec - neg.vec)).sum(1) + pos.bias - neg.bias
            loss = -torch.nn.functional.logsigmoid(x).mean() + 1e-4 * (user.vec.pow(2).sum(1).mean() + model.E.pow(2).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        context.progress(epoch + 1, epochs)
    return model.eval()
