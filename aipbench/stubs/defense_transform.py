"""A transform defense to start from: a Gaussian blur of every image the ranker sees — catalog images and
uploads alike — at ``kernel`` pixels, a family evaluated level by level (submission.toml's ``parameter`` and
``levels``). Gradient attacks see through it with straight-through (BPDA) gradients, which the harness adds."""

import torch
from torchvision.transforms.v2 import functional as F


class Defense:
    kernel = 3  # set per level by the harness (parameter = "kernel" in submission.toml)

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (N×3×H×W) → uint8 images of the same shape; the same input gives the same output."""
        return F.gaussian_blur(images, kernel_size=[self.kernel, self.kernel], sigma=self.kernel / 3)
