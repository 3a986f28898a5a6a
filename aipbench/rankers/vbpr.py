"""VBPR (Eq. 2): α + β_u + β_i + γ_u·γ_i + θ_u·(E Φ(x_i)) + β'·Φ(x_i); AMR (Eq. 10–11) shares the model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aipbench.errors import ArtifactError
from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.lengths import with_length
from aipbench.rankers.replicas import replica_artifact

__all__ = ["VBPR"]


class VBPR(Ranker):
    """Parameters: γ_u, θ_u (users), γ_i, β_i (items), E (embedding_length × feature_dim), β' (feature_dim).

    α and β_u are not identifiable under the BPR loss (they cancel in x_ui − x_uj) and are fixed at 0.
    A new item known only by its image (a cold item's upload) has no learned γ_i, β_i: its score uses the
    visual terms only (γ_i = 0, β_i = 0) — this is the protocol's reading of "cold item" in Eq. 2.
    """

    name = "vbpr"

    def __init__(
        self,
        extractor: nn.Module,
        catalog_features: torch.Tensor,
        n_users: int,
        *,
        factors: int,
        embedding_length: int,
        visual_bias: bool,
        generator: torch.Generator | None = None,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(catalog_features)
        self.extractor = extractor.eval().requires_grad_(False)
        n_items, dim = catalog_features.shape
        gen = generator or torch.Generator().manual_seed(0)

        def param(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=gen) * init_std)

        self.gamma_user, self.theta_user = param(n_users, factors), param(n_users, embedding_length)
        self.gamma_item, self.beta_item = param(n_items, factors), nn.Parameter(torch.zeros(n_items))
        self.E = param(embedding_length, dim)
        self.beta_visual = nn.Parameter(torch.zeros(dim), requires_grad=visual_bias)
        self.visual_bias = visual_bias

    @classmethod
    def from_config(cls, cfg, *, extractor: nn.Module, catalog_features: torch.Tensor, n_users: int,
                    generator: torch.Generator | None = None) -> "VBPR":
        """A model shaped as the protocol's section for it says (``VBPRConfig``; AMR: ``AMRConfig``)."""
        return cls(extractor, catalog_features, n_users, factors=cfg.factors, embedding_length=cfg.embedding_length,
                   visual_bias=cfg.visual_bias, generator=generator)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "VBPR":
        """From the checkpoint of the protocol's section of the same name (``rankers.vbpr`` / ``rankers.amr``);
        Φ comes from its own artifact."""
        cfg = with_length(getattr(artifacts.protocol.rankers, cls.name), length)
        step = replica_artifact(cls.name if length is None else f"{cls.name}-k{length}", replica)
        state = artifacts.state(step, f"{cls.name}.pt")
        model = cls.from_config(cfg, extractor=artifacts.extractor(), catalog_features=artifacts.features(),
                                n_users=state["gamma_user"].shape[0])
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("extractor.") for k in missing):
            raise ArtifactError(f"{artifacts.path(step, f'{cls.name}.pt')}: checkpoint does not match the protocol's {step}")
        if step != cls.name:
            model.variant = step  # a VBPR all the same (same attack objective), but its own attack target
        return model

    def summed_preference(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """Eq. 6 writes VBPR's sum over users with the θ term alone: ⟨Σ_u θ_u, E Φ(x)⟩."""
        theta = self.theta_user.detach().sum(0)
        return lambda features: self.visual_embedding(features) @ theta

    @property
    def n_users(self) -> int:
        return self.gamma_user.shape[0]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)

    def visual_embedding(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.E.T

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None, *, delta: dict | None = None) -> Side:
        visual = self.visual_embedding(features)
        if delta and "visual" in delta:
            visual = visual + delta["visual"]
        vbias = features @ self.beta_visual if self.visual_bias else features.new_zeros(features.shape[0])
        if items is None:
            gamma = features.new_zeros(features.shape[0], self.gamma_item.shape[1])
            bias = features.new_zeros(features.shape[0])
        else:
            gamma, bias = self.gamma_item[items], self.beta_item[items]
            if delta and "item" in delta:
                gamma = gamma + delta["item"]
        return Side(torch.cat([gamma, visual, vbias[:, None]], 1), bias)

    def user_side(self, users: torch.Tensor, *, delta: dict | None = None) -> Side:
        g, t = self.gamma_user[users], self.theta_user[users]
        if delta and "user_gamma" in delta:
            g = g + delta["user_gamma"]
        if delta and "user_theta" in delta:
            t = t + delta["user_theta"]
        return Side(torch.cat([g, t, torch.ones_like(g[:, :1])], 1), g.new_zeros(g.shape[0]))
