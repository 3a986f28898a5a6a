"""The cold items' images written out as PNG files, for an image-folder submission made with any tool
(``aipbench data export-cold``): the public catalog photos an attacker edits, never anything private."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from aipbench.errors import InputError

if TYPE_CHECKING:
    from aipbench.data.dataset import Dataset

__all__ = ["export_cold_images"]


def export_cold_images(dataset: "Dataset", out: Path, *, protocol: str) -> int:
    """Write ``out/<cold_item_id>.png`` for every cold item, ``out/hook.png`` (the hook item's public photo) and
    ``out/cold_items.json`` (the ids in the protocol's order, the hook's id); an image-folder submission's
    ``images/`` holds one edited PNG per cold item under the same names. ``out`` must not exist yet or be
    empty; it appears whole or not at all (written beside it, then renamed). Returns the images written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty folder; not overwriting")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for item in dataset.cold_items:
            _png(dataset.images[int(item)], staging / f"{int(item)}.png")
        _png(dataset.images[int(dataset.hook_item)], staging / "hook.png")
        (staging / "cold_items.json").write_text(json.dumps(
            {"protocol": protocol, "cold_items": [int(i) for i in dataset.cold_items],
             "hook_item": int(dataset.hook_item)}, indent=1) + "\n")
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(dataset.cold_items)


def _png(image, path: Path) -> None:
    """A uint8 3×H×W image as a PNG file (lossless: the submission's edits are judged on exact pixels)."""
    Image.fromarray(np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(1, 2, 0))).save(path)
