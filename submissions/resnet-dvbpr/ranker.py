"""DVBPR (Kang et al., ICDM '17) with a ResNet-18 backbone (He et al., CVPR '16; torchvision's ``resnet18``) in place
of CNN-F, trained end to end from the protocol's seed, as an aipbench ranker submission written only against the
public ranker interface. p(u, i) = θ_u · Φ_e(x_i): every score is one matrix product of the user side [θ_u]
against the item side [Φ_e(x)], and Φ_e is the ranker's own network, so an expert attacks it, not the protocol's Φ."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from aipbench.rankers.base import Ranker, Side

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)  # ImageNet's, as torchvision's ResNets expect
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class Pixels(nn.Module):
    """The image model as the ranker interface wants it: uint8 (or [0, 1] float) pixels in, ImageNet-normalized
    for the ResNet, its embedding out — what ``image_model`` hands an expert attack."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        return self.net((x - MEAN.to(x.device)) / STD.to(x.device))


def make_cnn(dim: int) -> nn.Module:
    """ResNet-18 with a ``dim``-wide last layer, randomly initialized (seeded by the caller), behind ``Pixels``."""
    return Pixels(torchvision.models.resnet18(weights=None, num_classes=dim))


class ResNetDVBPR(Ranker):
    """``catalog`` holds Φ_e of every catalog image, recomputed after training in eval mode."""

    _image_attr = "cnn"
    image_model_name = "resnet-dvbpr"  # its own image model: an expert attack targets this instance's network

    def __init__(self, cnn: nn.Module, n_users: int, catalog_embeddings: torch.Tensor) -> None:
        super().__init__(catalog_embeddings)
        self.cnn = cnn
        self.theta_user = nn.Parameter(torch.zeros(n_users, catalog_embeddings.shape[1]))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features, features.new_zeros(features.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        theta = self.theta_user[users]
        return Side(theta, theta.new_zeros(theta.shape[0]))

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None) -> "ResNetDVBPR":
        state = artifacts.state(cls.name, "ranker.pt")
        catalog = torch.as_tensor(np.asarray(artifacts.array(cls.name, "catalog")))
        model = cls(make_cnn(state["theta_user"].shape[1]), state["theta_user"].shape[0], catalog)
        model.load_state_dict(state)
        return model


def _images(images, items: torch.Tensor) -> torch.Tensor:
    """uint8 images of ``items``, read in item order (a memory map, or packed JPEGs) and put back in batch order."""
    order = torch.argsort(items)
    out = torch.empty((len(items), *images.shape[1:]), dtype=torch.uint8)
    out[order] = torch.from_numpy(np.asarray(images[items[order].numpy()]))
    return out


@torch.no_grad()
def _embed(model: ResNetDVBPR, images, n_items: int, batch: int = 256) -> torch.Tensor:
    model.cnn.eval()
    return torch.cat([model.encode(torch.from_numpy(np.asarray(images[s : min(s + batch, n_items)])))
                      for s in range(0, n_items, batch)])


def train(context) -> ResNetDVBPR:
    """BPR on (user, training item, random catalog item) with the images in the loop (DVBPR's end-to-end training),
    Adam; the catalog's embeddings are computed once trained. Reports its epochs."""
    dim, epochs, batch, lr = 64, 3, 64, 1e-3
    dataset = context.dataset
    torch.manual_seed(int(context.seed))
    gen = torch.Generator().manual_seed(int(context.seed))
    model = ResNetDVBPR(make_cnn(dim), dataset.n_users, torch.zeros(dataset.n_items, dim))
    with torch.no_grad():
        model.theta_user.normal_(0, 0.01, generator=gen)
    users = torch.from_numpy(np.asarray(dataset.train_users, dtype=np.int64))
    items = torch.from_numpy(np.asarray(dataset.train_items, dtype=np.int64))
    catalog = torch.from_numpy(np.setdiff1d(np.arange(dataset.n_items), dataset.cold_items))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-5)
    for epoch in range(epochs):
        model.cnn.train()
        order = torch.randperm(len(users), generator=gen)
        for s in range(0, len(order), batch):
            b = order[s : s + batch]
            j = catalog[torch.randint(len(catalog), (len(b),), generator=gen)]
            with torch.enable_grad():
                emb = model.encode(_images(dataset.images, torch.cat([items[b], j])))
                pos, neg = emb[: len(b)], emb[len(b):]
                x = (model.theta_user[users[b]] * (pos - neg)).sum(1)
                loss = -F.logsigmoid(x).mean()
                optimizer.zero_grad()
                loss.backward()
            optimizer.step()
        context.progress(epoch + 1, epochs)
    trained = ResNetDVBPR(model.cnn, dataset.n_users, _embed(model, dataset.images, dataset.n_items))
    trained.load_state_dict(model.state_dict())
    return trained.eval()
