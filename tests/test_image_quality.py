"""Image quality figures: L∞, PSNR and SSIM against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aipbench.scoring.image_quality import image_quality


@pytest.fixture
def originals():
    return np.random.default_rng(0).integers(40, 200, (4, 3, 32, 32), dtype=np.uint8)


def test_constant_shift_has_known_psnr(originals):
    adv = originals + np.uint8(5)  # every pixel +5: MSE 25
    q = image_quality(adv, originals)
    assert q.linf.tolist() == [5, 5, 5, 5]
    assert q.psnr == pytest.approx(10 * math.log10(255**2 / 25))
    assert (q.ssim < 1).all() and (q.ssim > 0.9).all()  # a small shift keeps the structure


def test_identical_images_are_perfect_and_counted(originals):
    q = image_quality(originals, originals)
    assert np.isinf(q.psnr).all() and q.ssim == pytest.approx(1.0)
    s = q.summary()
    assert s == {"max_linf": 0, "mean_psnr": None, "mean_ssim": pytest.approx(1.0), "unchanged_images": 4}


def test_ssim_matches_the_reference_definition():
    """SSIM of a pair with a flat window equals Wang et al.'s formula computed by hand (constant images,
    where every Gaussian-weighted window sees the same statistics)."""
    a = np.full((1, 3, 16, 16), 100, np.uint8)
    b = np.full((1, 3, 16, 16), 120, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)  # σ terms are 0: the contrast-structure factor is 1
    assert image_quality(b, a).ssim[0] == pytest.approx(expected, rel=1e-6)


def test_batching_does_not_change_anything(originals):
    adv = np.clip(originals.astype(int) + np.random.default_rng(1).integers(-9, 10, originals.shape), 0, 255).astype(np.uint8)
    a, b = image_quality(adv, originals, batch_size=1), image_quality(adv, originals, batch_size=3)
    assert np.array_equal(a.linf, b.linf) and np.allclose(a.psnr, b.psnr) and np.allclose(a.ssim, b.ssim)
