"""A graph multimodal recommender in the style of FREEDOM (Zhou & Shen, MM '23) and LATTICE (Zhang et al., MM '21),
as an aipbench ranker submission written only against the public ranker interface.

An item–item kNN graph is built once from the items' visual features Φ(x) and kept frozen (as FREEDOM freezes
it); user and item ID embeddings are propagated over the user–item graph by LightGCN layers (He et al., SIGIR
'20) and the item embeddings once more over the item–item graph; the BPR loss trains them. Scores are one matrix
product: user side [u] against item side [h_i + W Φ(x_i)]. A cold item has no interactions, so it enters through
its visual neighbours: its image → Φ → cosine similarity to the catalog → a softmax over its k nearest catalog
items → their propagated embeddings, weighted — differentiable in the pixels, so an insider attack can follow
the gradient through the neighbour weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aipbench.rankers.base import Ranker, Side


class FreedomGraph(Ranker):
    """The trained model as it serves: user embeddings, every item's propagated embedding, the visual projection W,
    and which catalog items a new image may have as neighbours (never a cold item)."""

    image_model_name = "extractor"  # it reads the protocol's pre-trained Φ: an expert attacks Φ
    k_neighbours = 10
    temperature = 0.05  # of the softmax over a new image's neighbour similarities

    def __init__(self, extractor: nn.Module, catalog_features: torch.Tensor, *, n_users: int, dim: int,
                 neighbour_ids: torch.Tensor) -> None:
        super().__init__(catalog_features)
        self.extractor = extractor
        n_items = catalog_features.shape[0]
        self.user_final = nn.Parameter(torch.zeros(n_users, dim))
        self.item_final = nn.Parameter(torch.zeros(n_items, dim))
        self.W = nn.Parameter(torch.zeros(dim, catalog_features.shape[1]))
        self.register_buffer("neighbour_ids", neighbour_ids.long())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def neighbours(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights, catalog item ids) of each new image's k nearest catalog items by cosine similarity of Φ."""
        candidates = F.normalize(self.catalog[self.neighbour_ids], dim=1)
        similarity = F.normalize(features, dim=1) @ candidates.T
        top, index = similarity.topk(self.k_neighbours, dim=1)
        return torch.softmax(top / self.temperature, dim=1), self.neighbour_ids[index]

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        visual = features @ self.W.T
        if items is not None:  # catalog items: their own propagated embeddings
            vec = self.item_final[items] + visual
        else:  # new images: through their visual neighbours
            weights, ids = self.neighbours(features)
            vec = (weights.unsqueeze(2) * self.item_final[ids]).sum(1) + visual
        return Side(vec, torch.zeros(len(features), device=features.device))

    def user_side(self, users: torch.Tensor) -> Side:
        return Side(self.user_final[users], torch.zeros(len(users), device=self.user_final.device))

    @property
    def n_users(self) -> int:
        return self.user_final.shape[0]

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None) -> "FreedomGraph":
        state = artifacts.state(cls.name, "ranker.pt")
        model = cls(artifacts.extractor(), artifacts.features(), n_users=state["user_final"].shape[0],
                    dim=state["user_final"].shape[1], neighbour_ids=state["neighbour_ids"])
        model.load_state_dict({k: v for k, v in state.items() if not k.startswith("extractor.")}, strict=False)
        return model


def knn_graph(features: torch.Tensor, allowed: torch.Tensor, k: int) -> torch.Tensor:
    """The frozen item–item graph: each item's k most similar allowed items (cosine of Φ), symmetric-normalized
    (D^-1/2 S D^-1/2), as a sparse matrix."""
    unit = F.normalize(features, dim=1)
    similarity = unit @ unit[allowed].T
    similarity[allowed, torch.arange(len(allowed))] = -1.0  # not its own neighbour
    index = similarity.topk(k, dim=1).indices
    rows, cols = torch.arange(len(features)).repeat_interleave(k), allowed[index.reshape(-1)]
    in_degree = torch.bincount(cols, minlength=len(features)).float().clamp_min(1)
    values = k ** -0.5 * in_degree[cols].rsqrt()  # every row has k neighbours
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (len(features), len(features))).coalesce()


def bipartite(users: torch.Tensor, items: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    """LightGCN's symmetric-normalized user–item adjacency over users then items."""
    rows = torch.cat([users, items + n_users])
    cols = torch.cat([items + n_users, users])
    degree = torch.bincount(rows, minlength=n_users + n_items).float().clamp_min(1)
    values = degree[rows].rsqrt() * degree[cols].rsqrt()
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n_users + n_items,) * 2).coalesce()


def train(context) -> FreedomGraph:
    """BPR over (user, training item, random catalog item) with Adam: LightGCN layers over the user–item graph,
    one item–item layer over the frozen kNN graph; a few epochs; reports each."""
    dim, layers, epochs, batch, lr, l2 = 32, 2, 20, 1024, 0.01, 1e-4
    dataset, features = context.dataset, context.features.float()
    n_users, n_items = dataset.n_users, dataset.n_items
    gen = torch.Generator().manual_seed(int(context.seed))
    catalog = torch.from_numpy(np.setdiff1d(np.arange(n_items), dataset.cold_items))
    users = torch.from_numpy(np.asarray(dataset.train_users, dtype=np.int64))
    items = torch.from_numpy(np.asarray(dataset.train_items, dtype=np.int64))
    graph, items_graph = bipartite(users, items, n_users, n_items), knn_graph(features, catalog, FreedomGraph.k_neighbours)
    user_emb = nn.Parameter(torch.randn(n_users, dim, generator=gen) * 0.1)
    item_emb = nn.Parameter(torch.randn(n_items, dim, generator=gen) * 0.1)
    W = nn.Parameter(torch.randn(dim, features.shape[1], generator=gen) * 0.01)
    optimizer = torch.optim.Adam([user_emb, item_emb, W], lr=lr)

    def propagate():
        x = torch.cat([user_emb, item_emb])
        mean = x
        for _ in range(layers):
            x = torch.sparse.mm(graph, x)
            mean = mean + x
        mean = mean / (layers + 1)
        u, i = mean[:n_users], mean[n_users:]
        return u, i + torch.sparse.mm(items_graph, item_emb)  # FREEDOM: the item–item layer on the ID embeddings

    for epoch in range(epochs):
        order = torch.randperm(len(users), generator=gen)
        for s in range(0, len(order), batch):
            b = order[s : s + batch]
            u, i = users[b], items[b]
            j = catalog[torch.randint(len(catalog), (len(b),), generator=gen)]
            with torch.enable_grad():
                u_all, i_all = propagate()
                pos = i_all[i] + features[i] @ W.T
                neg = i_all[j] + features[j] @ W.T
                x = (u_all[u] * (pos - neg)).sum(1)
                loss = -F.logsigmoid(x).mean() + l2 * (user_emb[u].pow(2).sum(1).mean() + item_emb[i].pow(2).sum(1).mean())
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
        context.progress(epoch + 1, epochs)
    model = FreedomGraph(context.feature_extractor, features, n_users=n_users, dim=dim, neighbour_ids=catalog)
    with torch.no_grad():
        u_all, i_all = propagate()
        model.user_final.copy_(u_all)
        model.item_final.copy_(i_all)
        model.W.copy_(W)
    return model.eval()
