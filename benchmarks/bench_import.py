"""`aipbench data import` at Amazon Men's counts: a DVBPR-format file of 34,244 users, 110,636 items and
254,870 interactions with 224-px JPEGs of the real file's mean size (2.1 GB / 110,636 items ≈ 19 KB),
written as the distributed file was (tests/dvbpr_files.py), then imported by the CLI in a child process.

Run: ``.venv/bin/python benchmarks/bench_import.py [--items N] [--workdir DIR]``. Prints the import's wall
time, peak memory (the child's max RSS) and the cache's disk use; the decode rate of the packed JPEGs at
224 px (what every pixel-reading step pays per image); and extrapolates to Tradesy's counts.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from dvbpr_files import write_npy, write_protocol  # noqa: E402

AMAZON_MEN = (34_244, 110_636, 254_870)
TRADESY = (33_864, 326_393, 655_409)


def _photos(rng: np.random.Generator, n: int, size: int = 224) -> list[bytes]:
    """``n`` distinct product-like photos (a smooth garment-like blob on a light background, some noise)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.35)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2 < r**2)[..., None]
        colour = rng.integers(0, 256, 3)
        img = np.where(mask, colour, 235) + rng.normal(0, 9, (size, size, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def make_raw(users: int, items: int, interactions: int, seed: int = 0) -> dict:
    """A DVBPR file's objects at the given counts: one validation and one test record per user, the rest
    training records (Zipf-popular items), 1,000 items left without interactions for the cold list."""
    rng = np.random.default_rng(seed)
    warm = items - 1000
    pop = 1.0 / np.arange(1, warm + 1) ** 0.8
    pop /= pop.sum()
    extra = interactions - 3 * users  # every user: >= 1 training, 1 validation, 1 test record
    per_user = 1 + np.bincount(rng.integers(0, users, extra), minlength=users)
    picks = rng.choice(warm, size=int(per_user.sum()) + 2 * users, p=pop)
    record = lambda i: {b"productid": int(i)}  # noqa: E731
    ends = np.cumsum(per_user)
    train = [[record(i) for i in picks[e - n : e]] for e, n in zip(ends, per_user)]
    held = picks[ends[-1]:]
    photos = _photos(rng, 1024)
    # a distinct bytes object per item (as in the real file), drawn from a pool of distinct photos
    item = [{b"imgs": bytes(bytearray(photos[k])), b"asin": f"B{k:09d}".encode()} for k in rng.integers(0, 1024, items)]
    return {"user_train": train, "user_validation": [[record(i)] for i in held[:users]],
            "user_test": [[record(i)] for i in held[users:]], "Item": item, "usernum": users, "itemnum": items}


# `aipbench data import` in a child that reports its own peak resident memory (VmHWM) as it exits: a parent's
# RUSAGE_CHILDREN would also count the parent's pages the child held between fork and exec.
_IMPORT_AND_REPORT_PEAK = """
import atexit, sys
atexit.register(lambda: print("peak_kib", next(line.split()[1] for line in open("/proc/self/status")
                                                if line.startswith("VmHWM")), file=sys.stderr))
sys.argv = ["aipbench", "data", "import", "amazon-men-bench", sys.argv[1]]
from aipbench.cli import main
main()
"""


def decode_rate(data: list[bytes], size: int, threads: int) -> float:
    """Images per second decoded to ``size`` px RGB by aipbench's decoder over ``threads`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    from aipbench.data.packed import decode_image

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda b: decode_image(b, size), data))
    return len(data) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=AMAZON_MEN[1], help="items (users and interactions scale along)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the file and the cache go (default: a temp dir)")
    args = parser.parse_args()
    scale = args.items / AMAZON_MEN[1]
    users, items, interactions = (round(AMAZON_MEN[0] * scale), args.items, round(AMAZON_MEN[2] * scale))
    work = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        t = time.perf_counter()
        raw = make_raw(users, items, interactions)
        data = write_npy(work / "AmazonMenWithImgPartitioned.npy", raw)
        made = time.perf_counter() - t
        (work / "protocols").mkdir()
        write_protocol(work / "protocols", "amazon-men-bench", raw, cold=list(range(items - 1000, items)),
                       image_size=224, small=False)
        sample = [raw["Item"][i][b"imgs"] for i in range(2000)]
        del raw
        env = {**os.environ, "AIPBENCH_HOME": str(work / "home"), "AIPBENCH_PROTOCOLS": str(work / "protocols"),
               "AIPBENCH_PROGRESS": "0"}
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _IMPORT_AND_REPORT_PEAK, str(data)], env=env, check=True,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
        peak = int(done.stderr.rsplit("peak_kib", 1)[1]) / 2**20  # the child's own VmHWM, KiB -> GiB
        cache = sum(p.stat().st_size for p in (work / "home").rglob("*") if p.is_file())
        size = data.stat().st_size
        rates = {n: decode_rate(sample, 224, n) for n in (1, os.cpu_count() or 1)}
        print(f"\nfile: {users:,} users, {items:,} items, {interactions:,} interactions; {size / 1e9:.2f} GB "
              f"(written in {made:.0f} s)")
        print(f"import: {wall:.1f} s wall, {items / wall:,.0f} items/s; peak memory {peak:.2f} GiB; "
              f"cache {cache / 1e9:.2f} GB (no copy of the file)")
        for n, r in rates.items():
            print(f"decode to 224 px: {r:,.0f} img/s on {n} thread(s)")
        ratio = TRADESY[1] / items
        print(f"Tradesy ({TRADESY[1]:,} items, x{ratio:.2f}): import ~{wall * ratio:.0f} s, "
              f"peak ~{peak * ratio:.1f} GiB, cache ~{cache * ratio / 1e9:.1f} GB (linear in the items)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
