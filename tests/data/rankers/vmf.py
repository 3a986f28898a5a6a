"""Visual matrix factorization added to aipbench as one file (docs/rankers.md, "Adding a ranker"): its section
``[rankers.vmf]``, its class, its training, registered in one place. Copied into aipbench/rankers/ by
tests/test_ranker_spec.py, which adds nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aipbench.firststage.triples import TripleSampler
from aipbench.protocol.config import Range, field_with
from aipbench.protocol.rankers import TrainConfig
from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.checkpoint import own_state, save_state
from aipbench.rankers.replicas import replica_artifact
from aipbench.rankers.spec import BuildInputs, RankerSpec, register_ranker


@dataclasses.dataclass(frozen=True)
class VMFConfig:
    """[rankers.vmf]: the length of θ_u and of the projection E Φ(x), and the BPR training settings."""

    embedding_length: int = field_with(Range(1))
    train: TrainConfig


class VMF(Ranker):
    """p(u, i) = θ_u · E Φ(x_i): VBPR's visual term alone."""

    name = "vmf"

    def __init__(self, extractor: nn.Module, catalog_features: torch.Tensor, n_users: int, k: int) -> None:
        super().__init__(catalog_features)
        self.extractor = extractor.eval().requires_grad_(False)
        self.theta_user = nn.Parameter(torch.zeros(n_users, k))
        self.E = nn.Parameter(torch.zeros(k, catalog_features.shape[1]))

    @classmethod
    def load(cls, artifacts, *, length=None, replica=None) -> "VMF":
        state = artifacts.state(replica_artifact("vmf", replica), "vmf.pt")
        model = cls(artifacts.extractor(), artifacts.features(), *state["theta_user"].shape)
        model.load_state_dict(state, strict=False)
        return model

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features @ self.E.T, features.new_zeros(features.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        return Side(self.theta_user[users], self.theta_user.new_zeros(len(users)))


def _build(inputs: BuildInputs, section: VMFConfig, out: Path) -> None:
    """BPR (Eq. 4) with Adam for the section's epochs, from the section's seed."""
    dataset, features, train = inputs.dataset(), inputs.features(), section.train
    gen = torch.Generator().manual_seed(train.seed)
    model = VMF(inputs.extractor(), features, dataset.n_users, section.embedding_length)
    with torch.no_grad():
        model.theta_user.normal_(0, 0.01, generator=gen)
        model.E.normal_(0, 0.01, generator=gen)
    sampler = TripleSampler(dataset, train.batch_size, gen)
    optimizer = torch.optim.Adam([model.theta_user, model.E], lr=train.learning_rate)
    for _ in range(train.epochs):
        for u, i, j in sampler.epoch("cpu"):
            user, item = model.user_side(u), model.item_side(features[torch.cat([i, j])])
            x = (user.vec * (item.vec[: len(u)] - item.vec[len(u):])).sum(1)
            loss = F.softplus(-x).mean() + train.weight_decay * user.vec.pow(2).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    save_state(own_state(model), out / "vmf.pt")


SPEC = register_ranker(RankerSpec(
    name="vmf", ranker=VMF, section=VMFConfig, build=_build, files=("vmf.pt",), needs=("dataset", "features"),
    description="visual MF (θ_u · E Φ(x), BPR)", replicated=True))
