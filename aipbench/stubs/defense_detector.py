"""A detector defense to start from, at the upload gate: an L∞ perturbation adds high-frequency energy, so
score an image by the log energy of its residual against a 3×3 local mean, standardized on clean catalog
images. The harness sets the threshold at its false-alarm rate and rejects the uploads scored above it.
``fit`` sees catalog training items only — clean (``train_images``) and attacked by the reference attacks
(``adversarial``: attack name → images aligned with ``train_items``) — never the evaluated cold items."""

import numpy as np
import torch
import torch.nn.functional as F


class Defense(torch.nn.Module):
    training_items = 20  # catalog items it learns from, clean and attacked (attacked once, then kept): more learn more

    def fit(self, context) -> None:
        clean = self._energy(torch.from_numpy(np.ascontiguousarray(context.train_images)))
        attacked = [self._energy(torch.from_numpy(np.ascontiguousarray(v))) for v in context.adversarial.values()]
        context.progress(1, 1)
        self.register_buffer("center", clean.mean())
        self.register_buffer("scale", clean.std().clamp_min(1e-6))
        self.register_buffer("attacked_mean", torch.cat(attacked).mean() if attacked else clean.mean())

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """One score per image, higher = more suspicious; differentiable in float pixels (adaptive attacks)."""
        return (self._energy(images) - self.center) / self.scale

    @staticmethod
    def _energy(images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images
        residual = x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return torch.log(residual.square().mean((1, 2, 3)) + 1e-8)
