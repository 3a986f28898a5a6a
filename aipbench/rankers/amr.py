"""AMR (Eq. 10–11): a VBPR trained with adversarial perturbations of its embeddings; the same model."""

from __future__ import annotations

from aipbench.rankers.vbpr import VBPR

__all__ = ["AMR"]


class AMR(VBPR):
    """VBPR's parameters and score; trained by ``aipbench.rankers.training.train_amr`` (``rankers.amr``)."""

    name = "amr"
