"""INSA (paper §4.1, Eq. 6, Algorithm 1): the insider pushes each cold image's predicted preference,
summed over all users, by an L∞-bounded perturbation; batched across cold items."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from aipbench.attacks.perturb import adam_perturbation
from aipbench.rankers.base import Ranker

__all__ = ["DEFAULT_OBJECTIVE", "OBJECTIVES", "insa", "insa_objective"]

OBJECTIVES = ("linear", "exp")


class _PerRanker(dict):
    """Forms by ranker family; any other ranker (a submitted one) gets the sum of exponentials: it needs only
    the bilinear sides every ranker has, and the plain sum follows the mean user direction, which on our data
    matches no taste segment (VBPR's cold items do not rise under it at all; docs/attacks.md)."""

    def __missing__(self, name: str) -> str:
        return "exp"


# The reference submission's form per ranker: Eq. 6 as the paper writes it for AlexRank (linear) and
# DVBPR (exp), and as the authors' code computes it for VBPR (exp of the full score; AMR is a VBPR).
DEFAULT_OBJECTIVE = _PerRanker({"alexrank": "linear", "vbpr": "exp", "amr": "exp", "dvbpr": "exp"})


def insa_objective(ranker: Ranker, form: str | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Eq. 6 for ``ranker`` as a function of the images' representations (one value per image).

    The paper's text and its authors' code disagree on the form, so both are offered:

    - ``"linear"``: Σ_u p_{u,i}, as Eq. 6 writes it for AlexRank and VBPR (and as the authors' code
      computes it for DVBPR), folded into one product per image by the ranker itself
      (``Ranker.summed_preference``) instead of a sum over users — AlexRank: ⟨Σ_u [2 m_u, −1], [f, ‖f‖²]⟩
      − Σ_u q_u (a quadratic in Φ); VBPR / AMR (θ term only, as Eq. 6 writes it): ⟨Σ_u θ_u, E f⟩; DVBPR:
      ⟨Σ_u θ_u, e⟩.
    - ``"exp"``: Σ_u exp(p_{u,i}), as Eq. 6 writes it for DVBPR (and the authors' code computes it for
      VBPR, on the full score), maximized through its logarithm — same maximizer, no overflow — as one
      (users × images) product and a logsumexp.
    """
    form = form or DEFAULT_OBJECTIVE[ranker.name]
    if form not in OBJECTIVES:
        raise ValueError(f"INSA objective {form!r} is not one of {OBJECTIVES}")
    if form == "linear":
        return ranker.summed_preference()
    users = ranker.user_side(ranker.all_users())
    vec, bias = users.vec.detach(), users.bias.detach()

    def soft_max(f: torch.Tensor) -> torch.Tensor:
        items = ranker.item_side(f)
        return torch.logsumexp(items.vec @ vec.T + bias[None] + items.bias[:, None], dim=1)

    return soft_max


def insa(
    ranker: Ranker,
    images: np.ndarray,
    *,
    epsilon: int,
    steps: int,
    learning_rate: float,
    objective: str | None = None,
    batch_size: int = 250,
    progress: bool = False,
) -> np.ndarray:
    """Adversarial versions of uint8 ``images`` (N×3×S×S): Adam on δ in [0, 1] pixel units to maximize
    Eq. 6 in the given ``objective`` form (default: ``DEFAULT_OBJECTIVE``), δ clipped to ±ε/255 and x + δ to [0, 1] after every step
    (Algorithm 1), then quantized to 8 bits by rounding and re-clipped so the 8-bit L∞ distance is at
    most ε. Deterministic."""
    obj = insa_objective(ranker, objective)
    return adam_perturbation(
        images, lambda x, _: -obj(ranker.encode(x)), epsilon=epsilon, steps=steps, learning_rate=learning_rate,
        device=ranker.catalog.device, batch_size=batch_size, progress=progress, desc=f"INSA {ranker.name}",
    )
