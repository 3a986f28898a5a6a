"""DVBPR (Eq. 5): p(u, i) = θ_u · Φ_e(x_i), Φ_e a CNN-F trained end to end; dropout only in training."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aipbench.rankers.base import Ranker, Side
from aipbench.rankers.lengths import with_length
from aipbench.rankers.replicas import replica_artifact
from aipbench.rankers.nets.cnnf import CNNF

__all__ = ["DVBPR"]


class DVBPR(Ranker):
    """``catalog`` holds Φ_e of every catalog image (recomputed after training, in eval mode)."""

    name = "dvbpr"
    _image_attr = "cnn"
    image_model_name = "dvbpr"

    def __init__(
        self,
        cnn: CNNF,
        n_users: int,
        catalog_embeddings: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(catalog_embeddings)
        self.cnn = cnn
        gen = generator or torch.Generator().manual_seed(0)
        self.theta_user = nn.Parameter(torch.randn(n_users, catalog_embeddings.shape[1], generator=gen) * init_std)

    @classmethod
    def load(cls, artifacts, *, length: int | None = None, replica: int | None = None) -> "DVBPR":
        cfg = with_length(artifacts.protocol.rankers.dvbpr, length)
        step = replica_artifact("dvbpr" if length is None else f"dvbpr-k{length}", replica)
        state = artifacts.state(step, "dvbpr.pt")
        cnn = CNNF(cfg.conv_widths, cfg.fc_widths, out_dim=cfg.embedding_length, dropout=cfg.dropout,
                   lrn=cfg.local_response_norm)
        model = cls(cnn, state["theta_user"].shape[0], torch.from_numpy(artifacts.array(step, "item_embeddings.npy")))
        model.load_state_dict(state)
        if step != "dvbpr":
            model.variant = step
        return model

    @property
    def n_users(self) -> int:
        return self.theta_user.shape[0]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images)

    def item_side(self, features: torch.Tensor, items: torch.Tensor | None = None) -> Side:
        return Side(features, features.new_zeros(features.shape[0]))

    def user_side(self, users: torch.Tensor) -> Side:
        t = self.theta_user[users]
        return Side(t, t.new_zeros(t.shape[0]))

    @torch.no_grad()
    def embed_catalog(self, images, *, batch_size: int = 512) -> torch.Tensor:
        """Φ_e of uint8 images (N×3×H×W: a tensor, an array, or packed images decoded batch by batch) in
        eval mode, batched, on the model's device."""
        was = self.cnn.training
        self.cnn.eval()
        device = self.theta_user.device

        def batch(s: int) -> torch.Tensor:
            part = images[s : s + batch_size]
            return (part if isinstance(part, torch.Tensor) else torch.from_numpy(np.array(part))).to(device)

        out = torch.cat([self.cnn(batch(s)) for s in range(0, len(images), batch_size)])
        self.cnn.train(was)
        return out
