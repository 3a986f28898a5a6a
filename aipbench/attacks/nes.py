"""A black-box attack: NES gradient estimates from a rank oracle, sign steps in an L∞ ball (Ilyas et al.,
ICML '18, applied to item promotion as in Cohen et al., WSDM '21)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from aipbench.attacks.perturb import quantize
from aipbench.progress import report

__all__ = ["nes_rank_attack"]


def _loss(ranks: np.ndarray) -> torch.Tensor:
    """What the attack lowers: mean over the probe users of log(1 + rank) — a move near the top of a list
    counts more than one deep down, where no top-N is won."""
    return torch.from_numpy(np.log1p(ranks.astype(np.float64))).mean(1)


def nes_rank_attack(oracle, images: np.ndarray, noise: list[np.random.Generator], *, epsilon: int, pairs: int = 10,
                    sigma: float = 16 / 255, step: float = 2 / 255, resolution: int = 16) -> np.ndarray:
    """Adversarial versions of uint8 ``images`` (N×3×S×S) using only ``oracle.query`` (ranks per probe user).

    Each step estimates every image's gradient of the loss from ``pairs`` antithetic pairs of Gaussian
    directions drawn at ``resolution``² and upsampled to S² (a low-dimensional search space: far fewer
    queries for a useful estimate), all N images' queries in one batch, then takes a sign step of ``step``
    projected onto ±ε/255 and [0, 1]. Steps run while the budget lasts (2·pairs images per image and
    step); the result is quantized to 8 bits within ε. ``noise`` holds one generator per image (the
    context's ``item_rng``), so an image's directions do not depend on which others it is batched with."""
    n, _, s, _ = images.shape
    x = torch.from_numpy(np.asarray(images)).double() / 255
    delta = torch.zeros_like(x)
    eps = epsilon / 255
    steps = oracle.remaining // (n * 2 * pairs)
    for k in range(steps):
        low = torch.from_numpy(np.stack([g.standard_normal((pairs, 3, resolution, resolution)) for g in noise]))
        u = F.interpolate(low.reshape(n * pairs, 3, resolution, resolution), size=(s, s), mode="nearest")
        u = u.reshape(n, pairs, 3, s, s)
        base = (x + delta)[:, None]
        probes = torch.cat([base + sigma * u, base - sigma * u], 1).clamp(0, 1)  # n × 2·pairs × 3 × S × S
        queried = torch.round(probes * 255).to(torch.uint8).reshape(n * 2 * pairs, 3, s, s)
        loss = _loss(oracle.query(queried.numpy())).reshape(n, 2 * pairs)
        diff = (loss[:, :pairs] - loss[:, pairs:])[:, :, None, None, None]  # f(x + σu) − f(x − σu)
        grad = (diff * u).mean(1) / (2 * sigma)
        delta = (delta - step * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
        report(k + 1, steps)  # the harness's live bar, when it listens
    return quantize((x + delta).float(), x.float(), epsilon).numpy()
