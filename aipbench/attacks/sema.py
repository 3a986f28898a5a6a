"""c-SEMA (paper §4.3): the compositing semantic attack — the hook item's image inset on the right of
the cold item's image, with a short line of text. No model, no budget; deterministic."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["composite", "hook_copy"]


def _font(size: int) -> ImageFont.ImageFont:
    # Pillow's bundled font (scalable where Pillow has FreeType, its bitmap font otherwise)
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def composite(cold_images: np.ndarray, hook_image: np.ndarray, *, text: str = "match your look",
              inset: float = 0.5) -> np.ndarray:
    """Every cold image (uint8 N×3×S×S) with the hook image resized to ``inset``·S (Lanczos) pasted
    centred on its right edge, and ``text`` drawn along the bottom in black on a white strip, scaled
    to fit the width. Returns uint8 N×3×S×S."""
    size = cold_images.shape[-1]
    side = max(1, round(inset * size))
    hook = Image.fromarray(np.ascontiguousarray(np.asarray(hook_image).transpose(1, 2, 0))).resize(
        (side, side), Image.Resampling.LANCZOS)
    font_size = max(6, size // 8)
    font = _font(font_size)
    draw = ImageDraw.Draw(Image.new("RGB", (size, size)))
    box = draw.textbbox((0, 0), text, font=font)
    while box[2] - box[0] > size - 2 and font_size > 6:  # shrink until the line fits
        font_size -= 1
        font = _font(font_size)
        box = draw.textbbox((0, 0), text, font=font)
    strip = box[3] - box[1] + 2
    # the overlay (hook inset + text strip) is the same for every item: draw it once, apply it to all
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    overlay.paste(hook.convert("RGBA"), (size - side, (size - side) // 2))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, size - strip, size, size), fill=(255, 255, 255, 255))
    draw.text((1 - box[0], size - strip + 1 - box[1]), text, fill=(0, 0, 0, 255), font=font)
    rgba = np.asarray(overlay).transpose(2, 0, 1)
    covered = rgba[3:] > 0
    return np.where(covered[None], rgba[None, :3], cold_images).astype(np.uint8)


def hook_copy(cold_images: np.ndarray, hook_image: np.ndarray) -> np.ndarray:
    """The upper control: every cold image replaced by the hook's image."""
    return np.broadcast_to(np.asarray(hook_image, dtype=np.uint8), cold_images.shape).copy()
