"""Make this example's images: every cold item cut out of its studio photo and placed into the hook
item's photo, as a merchant would do by hand (paper §4.3, n-SEMA). Uses only public catalog images.

    python make_images.py [--protocol NAME]    # writes images/<cold_item_id>.png (default: aipbench's default)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def cut_out(image: np.ndarray, threshold: int = 24) -> tuple[Image.Image, Image.Image]:
    """The product and its mask: pixels that differ from the studio background (the border's median)."""
    hwc = image.transpose(1, 2, 0).astype(np.int16)
    border = np.concatenate([hwc[0], hwc[-1], hwc[:, 0], hwc[:, -1]])
    mask = np.abs(hwc - np.median(border, axis=0)).max(axis=2) > threshold
    ys, xs = np.nonzero(mask) if mask.any() else (np.array([0, hwc.shape[0] - 1]), np.array([0, hwc.shape[1] - 1]))
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    product = Image.fromarray(hwc.astype(np.uint8)).crop(box)
    return product, Image.fromarray((mask * 255).astype(np.uint8)).crop(box)


def place(hook: np.ndarray, cold: np.ndarray, scale: float = 0.55) -> np.ndarray:
    """The hook photo with the cold product, scaled to ``scale`` of the image, in its lower left."""
    canvas = Image.fromarray(np.ascontiguousarray(hook.transpose(1, 2, 0)))
    product, mask = cut_out(cold)
    size = canvas.size[0]
    factor = scale * size / max(product.size)
    new = (max(1, round(product.size[0] * factor)), max(1, round(product.size[1] * factor)))
    product, mask = product.resize(new, Image.Resampling.LANCZOS), mask.resize(new, Image.Resampling.LANCZOS)
    canvas.paste(product, (1, size - new[1] - 1), mask)
    return np.asarray(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from aipbench.pipeline.loaders import load_dataset
    from aipbench.pipeline.steps import open_store
    from aipbench.protocol import DEFAULT_PROTOCOL, load_protocol

    parser.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    args = parser.parse_args()

    store = open_store(load_protocol(args.protocol))
    store.prepare(["dataset"])
    dataset = load_dataset(store)
    out = Path(__file__).resolve().parent / "images"
    out.mkdir(exist_ok=True)
    hook = np.asarray(dataset.images[dataset.hook_item])
    for item in dataset.cold_items:
        Image.fromarray(place(hook, np.asarray(dataset.images[item]))).save(out / f"{item}.png")
    print(f"wrote {len(dataset.cold_items)} images to {out}")


if __name__ == "__main__":
    main()
