"""Detector defenses: a scorer of uploaded images (higher = more suspicious) that the platform trains on
its own catalog — never on the cold items under evaluation — and a wrapper that makes any gradient
attack also lower the detector's score (the adaptive attack against a detector)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from aipbench.attacks.context import KnowledgeError
from aipbench.defenses.guard import call_defense
from aipbench.defenses.handover import Handover
from aipbench.errors import InputError
from aipbench.defenses.transforms import Wrapped

__all__ = ["DetectorContext", "FeatureDetector", "Penalized", "detector_scores", "detector_training_items",
           "threshold_at"]

# what a detector's training may see; everything else — the cold items above all — is refused
DETECTOR_FIELDS = ("train_items", "train_images", "adversarial", "feature_extractor", "seed", "device")


class DetectorContext(Handover):
    """The hand-over to ``detector.fit``: clean images of ``train_items`` (catalog items, none of them a
    cold item — checked here), ``adversarial`` versions of the same images made by the reference attacks
    (name → images aligned with ``train_items``), the feature extractor Φ, the seed and the device.
    Nothing else is reachable: asking for the cold items raises ``KnowledgeError``."""

    FIELDS = DETECTOR_FIELDS

    def __init__(self, *, cold_items: np.ndarray, **fields: Any) -> None:
        super().__init__(**fields)
        train = np.asarray(fields["train_items"])
        leaked = np.intersect1d(train, np.asarray(cold_items))
        if leaked.size:
            raise ValueError(f"detector training items include {leaked.size} evaluated cold items "
                             f"(e.g. {int(leaked[0])}); a detector never trains on them")
        n = len(train)
        if len(fields["train_images"]) != n or any(len(v) != n for v in fields["adversarial"].values()):
            raise ValueError("detector training images are not aligned with train_items")

    def missing(self, name: str) -> Exception:
        """What asking for ``name`` raises: a KnowledgeError (a detector never sees the cold items)."""
        return KnowledgeError(f"{name} is not available to a detector's training: it sees only catalog training "
                              f"items ({', '.join(DETECTOR_FIELDS)}), never the evaluated cold items")


def detector_training_items(dataset, n: int, seed: int) -> np.ndarray:
    """``n`` catalog items (seeded; sorted) that are neither cold items nor the hook item."""
    pool = np.setdiff1d(np.arange(dataset.n_items), np.append(dataset.cold_items, dataset.hook_item))
    rng = np.random.default_rng([seed, 0xDE7EC7])  # a stream of its own: the data's draws are untouched
    return np.sort(rng.choice(pool, size=min(n, pool.size), replace=False))


@torch.no_grad()
def detector_scores(detector, images: np.ndarray, *, batch_size: int = 500, device: str = "cpu") -> np.ndarray:
    """``detector.score`` over uint8 images in batches, as float64."""
    out = []
    for s in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size])).to(device)
        scores = call_defense(detector, "score", batch)
        if not isinstance(scores, torch.Tensor) or scores.numel() != len(batch) or not torch.isfinite(scores).all():
            file = getattr(detector, "_aipbench_source", ("the detector",))[0]
            raise InputError(f"{file}: score() must return one finite number per image ({len(batch)}), got "
                             f"{type(scores).__name__}{tuple(scores.shape) if isinstance(scores, torch.Tensor) else ''}")
        out.append(scores.detach().double().cpu().reshape(-1))
    return torch.cat(out).numpy() if out else np.zeros(0)


def threshold_at(clean_scores: np.ndarray, false_alarm_rate: float) -> float:
    """The lowest observed clean score such that flagging every upload scoring above it flags at most
    ``false_alarm_rate`` of the clean uploads (ties stay unflagged, so never more)."""
    ordered = np.sort(np.asarray(clean_scores, dtype=float))
    flagged = int(np.floor(false_alarm_rate * len(ordered) + 1e-9))
    return float(ordered[len(ordered) - flagged - 1]) if flagged < len(ordered) else float("-inf")


class FeatureDetector(nn.Module):
    """Reference detector: logistic regression on Φ(x) and the log energy of each channel's
    high-frequency residual (x minus its 3×3 local mean — L∞ perturbations add exactly such energy),
    standardized; trained on clean vs adversarial training items with class-balanced weights and an L2
    penalty by L-BFGS (deterministic). ``score`` is the logit, differentiable in float pixels."""

    training_items = 300
    l2 = 1e-3

    def fit(self, context) -> None:
        self.__dict__["extractor"] = context.feature_extractor  # the protocol's frozen Φ, not a parameter
        clean = self._features(context.train_images)
        adversarial = torch.cat([self._features(v) for v in context.adversarial.values()])
        x = torch.cat([clean, adversarial]).double()
        y = torch.cat([torch.zeros(len(clean)), torch.ones(len(adversarial))]).double().to(x.device)
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        z = (x - mean) / std
        weights = torch.where(y == 1, 0.5 / len(adversarial), 0.5 / len(clean))
        w = torch.zeros(z.shape[1], dtype=torch.float64, device=z.device, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = (weights * F.binary_cross_entropy_with_logits(z @ w + b, y, reduction="none")).sum() \
                + self.l2 * w.square().sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        for name, value in {"mean": mean, "std": std, "weight": w.detach(), "bias": b.detach()}.items():
            self.register_buffer(name, value.float())

    @torch.no_grad()
    def _features(self, images: np.ndarray, batch_size: int = 500) -> torch.Tensor:
        return torch.cat([self._raw(torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size])))
                          for s in range(0, len(images), batch_size)])

    def _raw(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        x = x.to(next(self.extractor.parameters()).device)
        residual = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        energy = torch.log(residual.square().mean((2, 3)) + 1e-8)
        return torch.cat([self.extractor(x), energy], 1)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        z = (self._raw(images) - self.mean) / self.std
        return z @ self.weight + self.bias


class _AddGradient(torch.autograd.Function):
    """Identity forward; backward adds a precomputed gradient (scaled per image to ``strength`` times
    the norm of the gradient flowing back), so the caller's loss is minimized together with a penalty."""

    @staticmethod
    def forward(ctx, images, extra, strength):
        ctx.save_for_backward(extra)
        ctx.strength = strength
        return images.view_as(images)

    @staticmethod
    def backward(ctx, grad):
        (extra,) = ctx.saved_tensors
        dims = tuple(range(1, grad.dim()))
        scale = ctx.strength * grad.square().sum(dims, keepdim=True).sqrt() \
            / extra.square().sum(dims, keepdim=True).sqrt().clamp_min(1e-20)
        return grad + scale * extra, None, None


class Penalized(Wrapped):
    """``model`` whose float inputs carry the gradient of a hinge on the detector's score: wherever an
    image still scores above ``threshold − margin``, the gradient that reaches it also pushes the score
    down (``strength`` × the attack's own gradient norm). Any gradient attack through this model — INSA,
    EXPA, TAaMR — thus becomes one that evades the detector, without its code knowing about it. The
    forward values are the model's own; uint8 inputs (scoring) pass unchanged."""

    _portable_attr = "detector"

    def __init__(self, model: nn.Module, detector, *, threshold: float, margin: float, strength: float = 10.0) -> None:
        super().__init__()
        self.model = model
        self.__dict__["detector"] = detector  # not a submodule: it is not part of the ranker
        self.threshold, self.margin, self.strength = float(threshold), float(margin), float(strength)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8 or not images.requires_grad:
            return self.model(images)
        with torch.enable_grad():
            x = images.detach().requires_grad_(True)
            hinge = F.relu(self.detector.score(x) - (self.threshold - self.margin)).sum()
            (extra,) = torch.autograd.grad(hinge, x) if hinge.requires_grad else (torch.zeros_like(x),)
        return self.model(_AddGradient.apply(images, extra, self.strength))
