"""The synthetic catalog's photos at scale: rendered in ranges by worker processes (the same pixels as one
``render`` call, whatever the number of workers), and kept either raw or as JPEGs packed end to end (the
real data sets' storage: 110,636 photos at 224 px are 16.6 GB raw, about 2 GB as JPEGs)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from aipbench.data import render as _render

__all__ = ["RANGE", "photo_ranges", "render_parallel"]

RANGE = 1024  # items a worker renders at once (a multiple of the renderer's noise chunk)
_STATE: dict = {}


def _init(params: dict, image_size: int, noise_std: float, jpeg_quality: int | None) -> None:
    import torch

    torch.set_num_threads(1)  # one thread a worker: the workers are the parallelism
    _STATE.update(params=params, size=image_size, noise_std=noise_std, quality=jpeg_quality)


def _one_range(start: int) -> np.ndarray | list[bytes]:
    n = int(_STATE["params"]["category"].shape[0])
    images = _render.render_range(_STATE["params"], start, min(n, start + RANGE), image_size=_STATE["size"],
                                  noise_std=_STATE["noise_std"])
    if _STATE["quality"] is None:
        return images
    from PIL import Image

    out = []
    for img in images:  # 4:4:4, so the colours of thin stripes and dots survive
        buf = io.BytesIO()
        Image.fromarray(img.transpose(1, 2, 0)).save(buf, format="JPEG", quality=_STATE["quality"], subsampling=0)
        out.append(buf.getvalue())
    return out


def photo_ranges(params: dict, image_size: int, *, noise_std: float, jpeg_quality: int | None = None,
                 workers: int | None = None) -> Iterator[np.ndarray | list[bytes]]:
    """Each range of ``RANGE`` items' photos, in item order: uint8 arrays, or (``jpeg_quality``) their JPEG
    bytes. ``workers`` processes (default: the machine's cores, at most 16); one renders in this process."""
    n = int(params["category"].shape[0])
    workers = workers or max(1, min(16, os.cpu_count() or 1))
    starts = range(0, n, RANGE)
    if workers == 1:
        _init(params, image_size, noise_std, jpeg_quality)
        yield from (_one_range(s) for s in starts)
        return
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(params, image_size, noise_std, jpeg_quality)) as pool:
        yield from pool.map(_one_range, starts)


def render_parallel(params: dict, image_size: int, *, noise_std: float, workers: int | None = None) -> np.ndarray:
    """All photos as one uint8 N×3×S×S array (the pre-training set)."""
    return np.concatenate(list(photo_ranges(params, image_size, noise_std=noise_std, workers=workers)))
