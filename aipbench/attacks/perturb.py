"""The L∞-bounded perturbation loops the reference attacks share: Adam (Algorithm 1) and sign-gradient
steps (FGSM / PGD), batched across images, clipped to the budget and to valid pixels, quantized."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from aipbench.progress import LiveBar, report

__all__ = ["adam_perturbation", "quantize", "sign_perturbation"]

# A loss maps a batch of [0, 1] images (and the indices of those images in the full input) to one value
# per image; the loops minimize it.
Loss = Callable[[torch.Tensor, slice], torch.Tensor]


def quantize(x: torch.Tensor, original: torch.Tensor, epsilon: int) -> torch.Tensor:
    """[0, 1] float images → uint8 by rounding, re-clipped so the 8-bit L∞ distance to ``original``
    ([0, 1] floats of uint8 pixels) is at most ``epsilon``."""
    adv, orig = torch.round(x * 255), torch.round(original * 255)
    return torch.minimum(torch.maximum(adv, orig - epsilon), orig + epsilon).clamp(0, 255).to(torch.uint8)


class _Ticks:
    """Image-steps done, reported as they happen: to ``progress`` when it is a callable (``context.progress``);
    with ``True`` to the harness's live bar when the harness listens (``aipbench.progress``), else to a tqdm bar
    of our own; nowhere with ``False``."""

    def __init__(self, progress: bool | Callable[[float, float], None], total: int, desc: str) -> None:
        self.done, self.total, self.bar = 0, total, None
        if callable(progress):
            self.send = progress
        elif progress and not report(0, total):
            self.bar = LiveBar(desc, enabled=True)
            self.send = self.bar
        else:
            self.send = report if progress else None

    def __call__(self, n: int) -> None:
        self.done += n
        if self.send is not None:
            self.send(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _project(delta: torch.Tensor, x: torch.Tensor, eps: float) -> None:
    delta.clamp_(-eps, eps)
    delta.copy_((x + delta).clamp(0, 1) - x)


def adam_perturbation(
    images: np.ndarray, loss: Loss, *, epsilon: int, steps: int, learning_rate: float, device="cpu",
    schedule: str = "constant", batch_size: int = 250, progress: bool | Callable[[float, float], None] = False,
    desc: str = "attack",
) -> np.ndarray:
    """Algorithm 1: Adam on δ (in [0, 1] pixel units, from 0) minimizing ``loss`` per image; after every
    step δ is clipped to ±ε/255 and x + δ to [0, 1]; the result is quantized to 8 bits. ``schedule``
    ``"cosine"`` anneals the learning rate to 0 over the steps (settles in fewer steps than a constant
    rate). Images are optimized independently (a different batch size changes only float rounding in
    the kernels); the same inputs give the same bytes. Works under ``torch.no_grad()``."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule {schedule!r} is not 'constant' or 'cosine'")
    out = np.empty_like(images)
    eps = epsilon / 255.0
    ticks = _Ticks(progress, len(images) * steps, desc)
    for s in range(0, len(images), batch_size):
        part = slice(s, min(s + batch_size, len(images)))
        x = torch.from_numpy(np.asarray(images[part])).to(device).float() / 255
        delta = torch.zeros_like(x, requires_grad=True)
        opt = torch.optim.Adam([delta], lr=learning_rate)
        for k in range(steps):
            if schedule == "cosine":
                opt.param_groups[0]["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * k / steps))
            with torch.enable_grad():
                value = loss(x + delta, part).sum()
                opt.zero_grad(set_to_none=True)
                value.backward()
            opt.step()
            with torch.no_grad():
                _project(delta, x, eps)
            ticks(len(x))
        with torch.no_grad():
            out[part] = quantize(x + delta, x, epsilon).cpu().numpy()
    ticks.close()
    return out


def sign_perturbation(
    images: np.ndarray, loss: Loss, *, epsilon: int, steps: int, step_size: float, device="cpu",
    batch_size: int = 250, progress: bool | Callable[[float, float], None] = False, desc: str = "attack",
) -> np.ndarray:
    """FGSM (``steps=1``, ``step_size=ε``) and PGD (Madry et al.: ``steps`` signed-gradient steps of
    ``step_size`` 8-bit units from x, projected onto the ε-ball and [0, 1]), minimizing ``loss``."""
    out = np.empty_like(images)
    eps, alpha = epsilon / 255.0, step_size / 255.0
    ticks = _Ticks(progress, len(images) * steps, desc)
    for s in range(0, len(images), batch_size):
        part = slice(s, min(s + batch_size, len(images)))
        x = torch.from_numpy(np.asarray(images[part])).to(device).float() / 255
        delta = torch.zeros_like(x)
        for _ in range(steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(loss(x + delta, part).sum(), delta)
            with torch.no_grad():
                delta = delta - alpha * grad.sign()
                _project(delta, x, eps)
            ticks(len(x))
        with torch.no_grad():
            out[part] = quantize(x + delta, x, epsilon).cpu().numpy()
    ticks.close()
    return out
