"""A contact sheet of a data set's item images, with the hook item and some cold items marked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["contact_sheet", "sheet_items"]

HOOK_COLOUR = (220, 30, 30)
COLD_COLOUR = (30, 90, 220)
_BORDER = 3
_CAPTION = 18


def sheet_items(dataset: "Dataset", *, n_cold: int = 15, n_popular: int = 24, n_random: int = 24) -> list[tuple[int, str]]:
    """Which items the sheet shows, as ``(item, role)``: the hook, the most popular training items,
    evenly spaced cold items and evenly spaced other catalog items (deterministic, no randomness)."""
    counts = dataset.item_train_counts()
    popular = [int(i) for i in np.argsort(-counts, kind="stable") if i != dataset.hook_item][:n_popular]
    cold = dataset.cold_items[np.linspace(0, len(dataset.cold_items) - 1, min(n_cold, len(dataset.cold_items))).astype(int)]
    rest = np.setdiff1d(dataset.catalog_items, [dataset.hook_item, *popular])
    others = rest[np.linspace(0, len(rest) - 1, min(n_random, len(rest))).astype(int)] if len(rest) else rest
    return (
        [(int(dataset.hook_item), "hook")]
        + [(i, "popular") for i in popular]
        + [(int(i), "cold") for i in np.unique(cold)]
        + [(int(i), "catalog") for i in others]
    )


def contact_sheet(dataset: "Dataset", out_path: Path, *, columns: int = 16, size: int | None = None) -> Path:
    """Write a grid (PNG; JPEG for a .jpg/.jpeg name): the hook item (red frame), popular items, cold items
    (blue frames), other items; ``size``: each photo resized to that many pixels (antialiased)."""
    chosen = sheet_items(dataset)
    ids = np.array([i for i, _ in chosen])
    images = torch.from_numpy(np.asarray(dataset.images[np.sort(ids)]))[np.argsort(np.argsort(ids))]
    if size is not None and size != images.shape[-1]:
        from torchvision.transforms.v2.functional import resize

        images = resize(images, [size, size], antialias=True)
    framed = torch.full((len(chosen), 3, images.shape[2] + 2 * _BORDER, images.shape[3] + 2 * _BORDER), 255, dtype=torch.uint8)
    for n, (_, role) in enumerate(chosen):
        if role in ("hook", "cold"):
            framed[n] = torch.tensor(HOOK_COLOUR if role == "hook" else COLD_COLOUR, dtype=torch.uint8)[:, None, None]
    framed[:, :, _BORDER:-_BORDER, _BORDER:-_BORDER] = images
    grid = make_grid(framed, nrow=columns, padding=2, pad_value=255)
    sheet = Image.fromarray(grid.permute(1, 2, 0).numpy())
    canvas = Image.new("RGB", (sheet.width, sheet.height + _CAPTION), (255, 255, 255))
    canvas.paste(sheet, (0, _CAPTION))
    draw = ImageDraw.Draw(canvas)
    stats = dataset.statistics()
    draw.text((4, 3), f"red: hook item {stats.hook_item} ({stats.hook_train_interactions} training interactions)",
              fill=HOOK_COLOUR)
    draw.text((canvas.width // 2, 3), f"blue: cold items ({stats.cold_items} in all); then popular, then other items",
              fill=COLD_COLOUR)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    jpeg = out_path.suffix.lower() in (".jpg", ".jpeg")
    canvas.save(tmp, format="JPEG" if jpeg else "PNG", **({"quality": 90} if jpeg else {}))
    tmp.replace(out_path)
    return out_path
