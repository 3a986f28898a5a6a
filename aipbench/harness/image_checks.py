"""Output checks for adversarial images: image folders (untrusted files) and in-memory attack outputs."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from aipbench.errors import InputError

__all__ = ["MAX_PIXELS", "check_adversarial", "read_image_folder"]

# Anything larger than this many pixels is refused before decoding (a decompression bomb guard); real
# protocols use at most 512×512 images.
MAX_PIXELS = 4096 * 4096
_NAME = re.compile(r"^(0|[1-9][0-9]*)\.png$")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_png(path: Path, image_size: int) -> np.ndarray:
    from PIL import Image

    with open(path, "rb") as fh:
        head = fh.read(26)
    if head[:8] != _PNG_MAGIC:
        raise InputError(f"{path}: not a PNG file (images must be PNG)")
    if len(head) == 26 and head[12:16] == b"IHDR" and head[24] != 8:  # Pillow would silently cut 16 bits to 8
        raise InputError(f"{path}: {head[24]} bits per channel — images must be 8-bit RGB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise InputError(f"{path}: {img.width}×{img.height} pixels is over the {MAX_PIXELS}-pixel limit")
                if img.mode != "RGB":
                    raise InputError(f"{path}: mode {img.mode} — images must be 8-bit RGB (mode RGB, no alpha)")
                if img.size != (image_size, image_size):
                    raise InputError(f"{path}: size {img.width}×{img.height}, the protocol needs {image_size}×{image_size}")
                img.load()  # decodes everything: a truncated file fails here
                return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()
    except InputError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InputError(f"{path}: image is too large to decode safely (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: unreadable or truncated PNG ({err})") from None


def read_image_folder(folder: Path, cold_items: np.ndarray, image_size: int) -> np.ndarray:
    """Read ``<cold_item_id>.png`` for every cold item, in ``cold_items`` order: uint8 (n, 3, S, S).

    Refused, each with one line naming the file and the rule: entries that are links or not plain files,
    names that are not ``<id>.png`` of a cold item, missing ids, non-PNG, truncated, non-RGB, wrong size
    or oversized files."""
    folder = Path(folder)
    wanted = {int(i) for i in cold_items}
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            raise InputError(f"{path}: symbolic links are not allowed in an image folder")
        if not path.is_file():
            raise InputError(f"{path}: not a plain file (an image folder holds only <cold_item_id>.png files)")
        match = _NAME.match(path.name)
        if not match:
            raise InputError(f"{path}: name must be <cold_item_id>.png")
        item = int(match.group(1))
        if item not in wanted:
            raise InputError(f"{path}: {item} is not a cold item of this protocol")
        found[item] = path
    missing = sorted(wanted - set(found))
    if missing:
        raise InputError(f"{folder}: {len(missing)} cold items have no image, e.g. {missing[0]}.png")
    return np.stack([_read_png(found[int(i)], image_size) for i in cold_items])


def check_adversarial(
    images, originals: np.ndarray, *, cold_items: np.ndarray, returned_items, epsilon: int | None, source: str
) -> np.ndarray:
    """Validate an attack's output against the cooperative images: same ids in the same order, uint8,
    3 channels, the protocol's size, and for an L∞ threat model ‖x′ − x‖∞ ≤ ε (8-bit units)."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise InputError(f"{source}: adversarial images must be uint8 (8-bit), got {arr.dtype}")
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise InputError(f"{source}: adversarial images must be N×3×H×W, got shape {arr.shape}")
    if arr.shape[0] != len(cold_items):
        raise InputError(f"{source}: returned {arr.shape[0]} images for {len(cold_items)} cold items")
    if arr.shape != originals.shape:
        raise InputError(f"{source}: image size {arr.shape[2]}×{arr.shape[3]}, the protocol needs "
                         f"{originals.shape[2]}×{originals.shape[3]}")
    if not np.array_equal(np.asarray(returned_items), np.asarray(cold_items)):
        raise InputError(f"{source}: returned item ids differ from the cold items asked for")
    if epsilon is not None:
        worst = int(np.abs(arr.astype(np.int16) - originals.astype(np.int16)).max(initial=0))
        if worst > epsilon:
            raise InputError(f"{source}: L∞ distance {worst} exceeds the budget epsilon = {epsilon} (8-bit units)")
    return arr
