"""A ranker to start from: visual matrix factorization, p(u, i) = θ_u · (E Φ(x_i)) + β' · Φ(x_i) — VBPR's visual
terms alone (He & McAuley, AAAI '16) — trained with the BPR loss on the platform's training interactions.
aipbench trains it in its sandbox (``train(context)``) and judges it with every reference attack. Every score
is one matrix product: ``user_side`` against ``item_side``."""

import numpy as np
import torch
from torch import nn

from aipbench.rankers.base import Ranker, Side


class MyRanker(Ranker):
    image_model_name = "extractor"  # it scores the protocol's pre-trained Φ, so an expert attacks Φ

    def __init__(self, extractor: nn.Module, catalog_features: torch.Tensor, n_users: int, k: int = 32) -> None:
        super().__init__(catalog_features)  # every catalog image's representation (here Φ's features)
        self.extractor = extractor
        self.theta_user = nn.Parameter(torch.zeros(n_users, k))
        self.E = nn.Parameter(torch.zeros(k, catalog_features.shape[1]))
        self.beta_visual = nn.Parameter(torch.zeros(catalog_features.shape[1]))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels (uint8, or float in [0, 1]) → the representation item_side takes, differentiably."""
        return self.extractor(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features @ self.E.T, features @ self.beta_visual)

    def user_side(self, users: torch.Tensor) -> Side:
        return Side(self.theta_user[users], torch.zeros(len(users), device=self.theta_user.device))

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None) -> "MyRanker":
        """Rebuild the trained ranker from the state aipbench kept (its own checkpoint of what train returned)."""
        state = artifacts.state(cls.name, "ranker.pt")
        model = cls(artifacts.extractor(), artifacts.features(), n_users=state["theta_user"].shape[0],
                    k=state["theta_user"].shape[1])
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extractor.")}, strict=False)
        return model


def train(context) -> MyRanker:
    """BPR on (user, training item, random catalog item) triples with Adam; reports its epochs."""
    dataset, features = context.dataset, context.features.float()
    model = MyRanker(context.feature_extractor, features, dataset.n_users)
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
            with torch.enable_grad():
                user, pos, neg = model.user_side(u), model.item_side(features[i]), model.item_side(features[j])
                x = (user.vec * (pos.vec - neg.vec)).sum(1) + pos.bias - neg.bias
                loss = -nn.functional.logsigmoid(x).mean() + 1e-4 * (user.vec.pow(2).sum(1).mean() + model.E.pow(2).sum())
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
        context.progress(epoch + 1, epochs)
    return model.eval()
