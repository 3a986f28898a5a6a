"""EXPA (paper §4.2, Eq. 7): the expert pulls each cold image's representation toward the hook's,
with the image model alone (Φ for AlexRank/VBPR/AMR, Φ_e for DVBPR); batched across cold items."""

from __future__ import annotations

import numpy as np
import torch

from aipbench.attacks.perturb import adam_perturbation

__all__ = ["expa", "expa_objective"]


@torch.no_grad()
def _target(image_model: torch.nn.Module, hook_image: np.ndarray, device) -> torch.Tensor:
    return image_model(torch.from_numpy(np.array(hook_image)[None]).to(device))


def expa_objective(image_model: torch.nn.Module, images: np.ndarray, hook_image: np.ndarray, *, device="cpu") -> np.ndarray:
    """Eq. 7's value per image: ‖Φ(x) − Φ(x_hook)‖₂ (lower is better for the attacker)."""
    target = _target(image_model, hook_image, device)
    with torch.no_grad():
        feats = image_model(torch.from_numpy(np.array(images)).to(device))
    return (feats - target).norm(dim=1).double().cpu().numpy()


def expa(
    image_model: torch.nn.Module,
    images: np.ndarray,
    hook_image: np.ndarray,
    *,
    epsilon: int,
    steps: int,
    learning_rate: float,
    schedule: str = "constant",
    device="cpu",
    batch_size: int = 250,
    progress: bool = False,
) -> np.ndarray:
    """Adversarial versions of uint8 ``images``: Algorithm 1's Adam loop minimizing Eq. 7,
    ‖Φ(x + δ) − Φ(x_hook)‖₂, per image, ε-clipped, pixel-clipped, quantized. Deterministic."""
    target = _target(image_model, hook_image, device)
    return adam_perturbation(
        images, lambda x, _: (image_model(x) - target).norm(dim=1), epsilon=epsilon, steps=steps,
        learning_rate=learning_rate, schedule=schedule, device=device, batch_size=batch_size, progress=progress, desc="EXPA",
    )
