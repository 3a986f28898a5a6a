"""INSA (paper §4.1, Eq. 6, Algorithm 1): the insider pushes each cold image's predicted preference,
summed over all users, by an L∞-bounded perturbation; batched across cold items."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from aipbench.rankers.alexrank import AlexRank
from aipbench.rankers.base import Ranker
from aipbench.rankers.dvbpr import DVBPR
from aipbench.rankers.vbpr import VBPR

__all__ = ["insa", "insa_objective"]


@torch.no_grad()
def _user_sum(ranker: Ranker) -> tuple[torch.Tensor, torch.Tensor]:
    side = ranker.user_side(ranker.all_users())
    return side.vec.sum(0), side.bias.sum()


def insa_objective(ranker: Ranker) -> Callable[[torch.Tensor], torch.Tensor]:
    """Eq. 6 for ``ranker`` as a function of the images' representations (one value per image), using
    the exact shortcut that makes it one dot product per image instead of a sum over users:

    - AlexRank: Σ_u −mean_j ‖f − f_j‖² = ⟨Σ_u [2 m_u, −1], [f, ‖f‖²]⟩ − Σ_u q_u;
    - VBPR / AMR: Σ_u θ_u·(E f) = ⟨Σ_u θ_u, E f⟩ (Eq. 6 uses the θ term only);
    - DVBPR: log Σ_u exp(θ_u·e) — Eq. 6's sum of exponentials, maximized through its logarithm
      (same maximizer, no overflow), as one (users × images) product and a logsumexp.
    """
    if isinstance(ranker, AlexRank):
        total, bias = _user_sum(ranker)
        return lambda f: ranker.item_side(f).vec @ total + bias
    if isinstance(ranker, VBPR):
        theta = ranker.theta_user.detach().sum(0)
        return lambda f: ranker.visual_embedding(f) @ theta
    if isinstance(ranker, DVBPR):
        theta = ranker.theta_user.detach()
        return lambda e: torch.logsumexp(e @ theta.T, dim=1)
    raise TypeError(f"INSA has no objective for {type(ranker).__name__}")


def insa(
    ranker: Ranker,
    images: np.ndarray,
    *,
    epsilon: int,
    steps: int,
    learning_rate: float,
    batch_size: int = 250,
    progress: bool = False,
) -> np.ndarray:
    """Adversarial versions of uint8 ``images`` (N×3×S×S): Adam on δ in [0, 1] pixel units to maximize
    Eq. 6, δ clipped to ±ε/255 and x + δ to [0, 1] after every step (Algorithm 1), then quantized to
    8 bits by rounding and re-clipped so the 8-bit L∞ distance is at most ε. Deterministic."""
    obj = insa_objective(ranker)
    device = ranker.catalog.device
    out = np.empty_like(images)
    eps = epsilon / 255.0
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"INSA {ranker.name}", unit="batch")
    for s in starts:
        x = torch.from_numpy(np.asarray(images[s : s + batch_size])).to(device).float() / 255
        delta = torch.zeros_like(x, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=learning_rate)
        for _ in range(steps):
            with torch.enable_grad():  # also when called under torch.no_grad()
                loss = -obj(ranker.encode(x + delta)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()
            with torch.no_grad():
                delta.clamp_(-eps, eps)
                delta.copy_((x + delta).clamp(0, 1) - x)
        with torch.no_grad():
            adv = torch.round((x + delta) * 255)
            orig = x * 255
            adv = torch.minimum(torch.maximum(adv, orig - epsilon), orig + epsilon).clamp(0, 255)
        out[s : s + batch_size] = adv.to(torch.uint8).cpu().numpy()
    return out
