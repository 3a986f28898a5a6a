"""A catalog kept as its distributed JPEG bytes, packed end to end with offsets, decoded on access."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["WORKERS", "PackedImages", "check_image", "decode_image", "pack_images"]

# Decoding threads: Pillow releases the GIL while it decodes and resizes, so threads decode in parallel.
WORKERS = max(1, min(16, os.cpu_count() or 1))


def decode_image(data: bytes | memoryview, size: int) -> np.ndarray:
    """Decode an image (JPEG, or any format Pillow reads), convert to RGB and resize it directly to
    ``size``×``size`` with Pillow's BICUBIC filter (aspect ratio not kept, as in the DVBPR and AIP
    reference code, which resize to 224×224). Returns a uint8 3×size×size array."""
    with Image.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)


def check_image(data: bytes | memoryview) -> None:
    """Raise if the image does not decode in full. JPEGs decode at 1/8 scale (libjpeg's DCT scaling reads
    every coefficient, so a truncated or corrupt file still fails; the pixels are not needed here)."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (img.width // 8 or 1, img.height // 8 or 1))
        img.convert("RGB")


class PackedImages:
    """Item images stored as encoded bytes in one file (``blob``), item i at ``blob[offsets[i]:offsets[i+1]]``,
    seen as a uint8 array N×3×S×S: indexing (an int, a slice, a list or array of ints) decodes just those
    images, in parallel threads. Deterministic (Pillow's decoder on the CPU); pickles as its two paths."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, blob: str | Path, offsets: str | Path, size: int) -> None:
        self.blob, self.offsets_path, self.size = Path(blob), Path(offsets), int(size)
        self.offsets = np.load(self.offsets_path)
        self._bytes = np.memmap(self.blob, dtype=np.uint8, mode="r") if self.blob.stat().st_size else np.zeros(0, np.uint8)

    def __reduce__(self):
        return (PackedImages, (str(self.blob), str(self.offsets_path), self.size))

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), 3, self.size, self.size)

    def encoded(self, i: int) -> memoryview:
        """Item ``i``'s encoded bytes."""
        return memoryview(self._bytes[self.offsets[i] : self.offsets[i + 1]])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return decode_image(self.encoded(_check(int(key), len(self))), self.size)
        if isinstance(key, slice):
            ids = np.arange(len(self))[key]
        else:
            ids = np.asarray(key)
            if ids.dtype == bool:
                ids = np.flatnonzero(ids)
            ids = ids.astype(np.int64, copy=False).reshape(-1)
        n = len(self)
        if ids.size and (ids.min() < -n or ids.max() >= n):
            raise IndexError(f"item {int(ids.min() if ids.min() < -n else ids.max())} is out of range for {n} images")
        ids = ids % n if ids.size else ids
        out = np.empty((ids.shape[0], 3, self.size, self.size), dtype=np.uint8)

        def one(k: int) -> None:
            out[k] = decode_image(self.encoded(int(ids[k])), self.size)

        if len(ids) <= 2:
            for k in range(len(ids)):
                one(k)
        else:
            with ThreadPoolExecutor(min(WORKERS, len(ids))) as pool:
                list(pool.map(one, range(len(ids))))
        return out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


def _check(i: int, n: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"item {i} is out of range for {n} images")
    return i % n


def pack_images(chunks, blob: Path, offsets: Path) -> int:
    """Write the encoded images ``chunks`` yields (bytes, in item order) to ``blob`` end to end, and their
    ``offsets`` (n + 1 int64); returns the number of bytes written."""
    ends = [0]
    with open(blob, "wb") as fh:
        for data in chunks:
            fh.write(data)
            ends.append(ends[-1] + len(data))
    with open(offsets, "wb") as fh:
        np.save(fh, np.asarray(ends, dtype=np.int64))
    return ends[-1]
