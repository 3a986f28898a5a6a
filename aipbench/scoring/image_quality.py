"""Image-quality figures of adversarial images against their cooperative originals: L∞, PSNR, SSIM."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

__all__ = ["ImageQuality", "image_quality"]


@dataclasses.dataclass(frozen=True)
class ImageQuality:
    """Per image (aligned with the inputs): L∞ distance in 8-bit units, PSNR in dB (inf for an
    unchanged image) and SSIM (Gaussian window 11, σ 1.5, as Wang et al. 2004; pytorch-msssim)."""

    linf: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray

    def summary(self) -> dict:
        """Max L∞, mean PSNR over the changed images, mean SSIM, and how many images are unchanged."""
        finite = self.psnr[np.isfinite(self.psnr)]
        return {
            "max_linf": int(self.linf.max(initial=0)),
            "mean_psnr": float(finite.mean()) if finite.size else None,
            "mean_ssim": float(self.ssim.mean()) if self.ssim.size else None,
            "unchanged_images": int((~np.isfinite(self.psnr)).sum()),
        }


@torch.no_grad()
def image_quality(adversarial: np.ndarray, original: np.ndarray, *, batch_size: int = 500) -> ImageQuality:
    """Quality of uint8 N×3×H×W ``adversarial`` images against ``original``, batched."""
    from pytorch_msssim import ssim

    linf, psnr, sim = [], [], []
    for s in range(0, len(original), batch_size):
        a = torch.from_numpy(np.asarray(adversarial[s : s + batch_size])).double()
        b = torch.from_numpy(np.asarray(original[s : s + batch_size])).double()
        linf.append((a - b).abs().amax(dim=(1, 2, 3)))
        mse = (a - b).pow(2).mean(dim=(1, 2, 3))
        psnr.append(10 * torch.log10(255.0**2 / mse))  # mse = 0 gives inf
        # SSIM's 11-px window needs images of at least 11 px, which every protocol has (>= 64 px)
        sim.append(ssim(a, b, data_range=255, size_average=False))
    cat = lambda xs: torch.cat(xs).numpy() if xs else np.zeros(0)  # noqa: E731
    return ImageQuality(cat(linf).astype(np.int64), cat(psnr), cat(sim))
