"""Φ: an AlexNet-layout feature extractor (fc7 after ReLU) with its classifier head kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from aipbench.protocol.rankers import ExtractorConfig

__all__ = ["FeatureExtractor", "conv_trunk", "build_extractor", "normalize", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images, or float images in [0, 1], to ImageNet-normalized floats (differentiable)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def conv_trunk(conv_widths: tuple[int, ...], *, lrn: bool) -> nn.Sequential:
    """AlexNet's / CNN-F's five convolutions: 11/4, pool, 5, pool, 3, 3, 3, pool (LRN after the first two
    when ``lrn``; without it the module indices equal torchvision's ``alexnet.features``)."""
    c1, c2, c3, c4, c5 = conv_widths

    def block(cin: int, cout: int, k: int, *, stride: int = 1, norm: bool = False, pool: bool = False) -> list[nn.Module]:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=2 if k > 3 else 1),
                                   nn.ReLU(inplace=True)]
        if norm and lrn:
            layers.append(nn.LocalResponseNorm(5))
        if pool:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        return layers

    return nn.Sequential(
        *block(3, c1, 11, stride=4, norm=True, pool=True),
        *block(c1, c2, 5, norm=True, pool=True),
        *block(c2, c3, 3),
        *block(c3, c4, 3),
        *block(c4, c5, 3, pool=True),
    )


class FeatureExtractor(nn.Module):
    """AlexNet's layer layout (torchvision's exactly when the widths are 64-192-384-256-256 / 4096).

    ``forward`` gives fc7 after ReLU; ``logits`` gives the classifier head's output. Dropout is in
    the module for torchvision weight compatibility but the extractor is always used in eval mode.
    """

    def __init__(self, conv_widths: tuple[int, ...], fc_width: int, num_classes: int) -> None:
        super().__init__()
        c5 = conv_widths[4]
        self.features = conv_trunk(conv_widths, lrn=False)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5),
            nn.Linear(c5 * 6 * 6, fc_width),
            nn.ReLU(inplace=True),
            nn.Dropout(p=0.5),
            nn.Linear(fc_width, fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(fc_width, num_classes),
        )
        self.feature_dim = fc_width

    def fc7(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier[:6](h)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """fc7 features (after ReLU) of uint8 or [0, 1] float images."""
        return self.fc7(normalize(images))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier[6](self.forward(images))


def build_extractor(cfg: "ExtractorConfig", num_classes: int) -> FeatureExtractor:
    """An untrained extractor of the protocol's layout (``torchvision-alexnet``: torchvision's AlexNet,
    whose ImageNet weights the pipeline's extractor step loads offline, ``aipbench.rankers.nets.weights``)."""
    return FeatureExtractor(cfg.conv_widths, cfg.fc_width, num_classes if cfg.kind == "alexnet-style" else 1000)
