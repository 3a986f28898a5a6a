"""CNN-F (Chatfield et al. 2014), the image embedding network Φ_e that DVBPR trains end to end."""

from __future__ import annotations

import torch
from torch import nn

from aipbench.rankers.nets.alexnet import conv_trunk, normalize

__all__ = ["CNNF"]


class CNNF(nn.Module):
    """conv 11/4 → LRN → pool, conv 5 → LRN → pool, conv 3 ×3 → pool, fc, fc, fc→K (no ReLU at the end).

    With widths (64, 256, 256, 256, 256) and fc (4096, 4096) this is the paper's CNN-F; synthetic
    protocols narrow the widths (written in the protocol) to fit a CPU budget. Dropout after each hidden
    fc layer acts only in training mode. ``lrn=False`` drops the two local response normalisations (they
    cost 4x the rest of the network on a CPU); the protocol says which.
    """

    def __init__(
        self, conv_widths: tuple[int, ...], fc_widths: tuple[int, ...], *, out_dim: int, dropout: float, lrn: bool = True
    ) -> None:
        super().__init__()
        c5 = conv_widths[4]
        f1, f2 = fc_widths
        self.features = conv_trunk(conv_widths, lrn=lrn)
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.head = nn.Sequential(
            nn.Linear(c5 * 36, f1),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(f1, f2),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(f2, out_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Item embeddings Φ_e(x) of uint8 or [0, 1] float images."""
        h = self.pool(self.features(normalize(images)))
        return self.head(torch.flatten(h, 1))
