"""TAaMR (paper §6.3): classifier-targeted adversarial images — FGSM and PGD toward the most popular
class of the pre-trained classifier; batched across cold items."""

from __future__ import annotations

import numpy as np
import torch

from aipbench.attacks.perturb import sign_perturbation

__all__ = ["taamr"]


def taamr(
    classifier: torch.nn.Module,
    images: np.ndarray,
    target_class: int,
    *,
    epsilon: int,
    steps: int,
    step_size: float | None = None,
    device="cpu",
    batch_size: int = 250,
    progress: bool = False,
) -> np.ndarray:
    """Targeted FGSM (``steps=1``: one signed step of ε) or PGD (``steps`` signed steps of ``step_size``
    8-bit units, default 2.5·ε/steps as in Madry et al.) minimizing −log p(target | x)."""
    step_size = float(epsilon) if steps == 1 and step_size is None else step_size or 2.5 * epsilon / steps

    def loss(x: torch.Tensor, _) -> torch.Tensor:
        return -classifier(x)[:, target_class]  # the classifier returns log-probabilities

    desc = "TAaMR FGSM" if steps == 1 else f"TAaMR PGD-{steps}"
    return sign_perturbation(images, loss, epsilon=epsilon, steps=steps, step_size=step_size, device=device,
                             batch_size=batch_size, progress=progress, desc=desc)
