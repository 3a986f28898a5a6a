"""A contact sheet of a few cold items, cooperative and adversarial, for the leaderboard (PNG bytes)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["example_sheet"]


def example_sheet(rows: list[np.ndarray], *, gap: int = 2) -> bytes:
    """One row per entry of ``rows`` (each uint8 n×3×S×S, same n), images side by side on white with
    ``gap`` pixels between them; deterministic PNG bytes."""
    n, _, size, _ = rows[0].shape
    sheet = np.full((len(rows) * (size + gap) - gap, n * (size + gap) - gap, 3), 255, np.uint8)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            sheet[r * (size + gap) : r * (size + gap) + size, c * (size + gap) : c * (size + gap) + size] = image.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()
